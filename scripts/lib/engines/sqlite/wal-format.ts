/**
 * SQLite's write-ahead log, read directly (https://www.sqlite.org/fileformat2.html#walformat).
 * A WAL file is a 32-byte header then frames (24-byte header + one page). A frame is valid iff its salts
 * equal the header's and its checksum continues the running checksum of the header and every frame
 * before it; the WAL's content is the longest valid prefix, and only frames up to the last commit frame
 * (non-zero "database size after commit") belong to committed transactions.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs'

export const WAL_HEADER_SIZE = 32
export const WAL_FRAME_HEADER_SIZE = 24
const WAL_MAGIC_LITTLE_ENDIAN_CHECKSUMS = 0x377f0682
const WAL_MAGIC_BIG_ENDIAN_CHECKSUMS = 0x377f0683
const WAL_FORMAT_VERSION = 3007000

export type WalChecksum = readonly [number, number]

export interface WalHeader {
  /** Checksum words are read big-endian when the magic's low bit is set. */
  bigEndianChecksums: boolean
  pageSize: number
  checkpointSequence: number
  salt1: number
  salt2: number
  checksum: WalChecksum
}

export interface WalFrameHeader {
  pageNumber: number
  /** Database size in pages after this commit; 0 for a frame that does not end a transaction. */
  commitSize: number
  salt1: number
  salt2: number
  checksum: WalChecksum
}

/** Where a copy of one WAL incarnation stands: `frame` frames consumed (0 = only the header). */
export interface WalPosition {
  salt1: number
  salt2: number
  frame: number
  /** Running checksum after `frame` (the header's own checksum when `frame` is 0). */
  checksum: WalChecksum
}

export interface WalCommit {
  /** 1-based index of the commit frame in its WAL incarnation. */
  frame: number
  /** Database size in pages after the commit. */
  databasePages: number
}

/** SQLite's WAL checksum over `data` (length a multiple of 8), continued from `initial`. */
export function walChecksum(data: Uint8Array, bigEndian: boolean, initial: WalChecksum = [0, 0]): [number, number] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  let s0 = initial[0]
  let s1 = initial[1]
  for (let offset = 0; offset < data.byteLength; offset += 8) {
    s0 = (s0 + view.getUint32(offset, !bigEndian) + s1) >>> 0
    s1 = (s1 + view.getUint32(offset + 4, !bigEndian) + s0) >>> 0
  }
  return [s0, s1]
}

/** The header of a WAL file's first 32 bytes, or null when they are not a valid header (absent, torn, truncated). */
export function parseWalHeader(bytes: Uint8Array): WalHeader | null {
  if (bytes.byteLength < WAL_HEADER_SIZE) return null
  const view = new DataView(bytes.buffer, bytes.byteOffset, WAL_HEADER_SIZE)
  const magic = view.getUint32(0)
  if (magic !== WAL_MAGIC_LITTLE_ENDIAN_CHECKSUMS && magic !== WAL_MAGIC_BIG_ENDIAN_CHECKSUMS) return null
  if (view.getUint32(4) !== WAL_FORMAT_VERSION) return null
  const bigEndianChecksums = (magic & 1) === 1
  const checksum: WalChecksum = [view.getUint32(24), view.getUint32(28)]
  const computed = walChecksum(bytes.subarray(0, 24), bigEndianChecksums)
  if (computed[0] !== checksum[0] || computed[1] !== checksum[1]) return null
  const rawPageSize = view.getUint32(8)
  return {
    bigEndianChecksums,
    pageSize: rawPageSize === 1 ? 65536 : rawPageSize,
    checkpointSequence: view.getUint32(12),
    salt1: view.getUint32(16),
    salt2: view.getUint32(20),
    checksum,
  }
}

export function parseFrameHeader(bytes: Uint8Array): WalFrameHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, WAL_FRAME_HEADER_SIZE)
  return {
    pageNumber: view.getUint32(0),
    commitSize: view.getUint32(4),
    salt1: view.getUint32(8),
    salt2: view.getUint32(12),
    checksum: [view.getUint32(16), view.getUint32(20)],
  }
}

/** Byte offset of 1-based frame `frame` in a WAL file. */
export function frameOffset(frame: number, pageSize: number): number {
  return WAL_HEADER_SIZE + (frame - 1) * (WAL_FRAME_HEADER_SIZE + pageSize)
}

/** The start of an incarnation: nothing consumed after its header. */
export function positionAtHeader(header: WalHeader): WalPosition {
  return { salt1: header.salt1, salt2: header.salt2, frame: 0, checksum: header.checksum }
}

export interface CommittedFrames {
  /** Raw frames (header + page each) after `from`, up to and including the last valid commit frame. */
  frames: Buffer
  commits: WalCommit[]
  /** The position after the last commit (equal to `from` when nothing new was committed). */
  end: WalPosition
}

/** A run of consecutive valid frames: `bytes` holds frames `firstFrame`, `firstFrame + 1`… (header + page each). */
export interface ValidFrameBatch {
  firstFrame: number
  bytes: Buffer
  /** The commit frames in this batch, each with the running checksum after it. */
  commits: (WalCommit & { checksum: WalChecksum })[]
}

const BATCH_BYTES = 4 << 20

/**
 * The valid frames after `from` in an open WAL file, in batches of about 4 MiB (memory stays bounded
 * whatever the WAL's size): stops at the end of the file and at the first frame whose salts or checksum
 * do not continue the chain (a frame left over from an earlier incarnation, or one being written).
 */
export function* validFrameBatches(fd: number, header: WalHeader, from: WalPosition): Generator<ValidFrameBatch> {
  const frameSize = WAL_FRAME_HEADER_SIZE + header.pageSize
  const fileSize = fstatSync(fd).size
  const batchFrames = Math.max(1, Math.floor(BATCH_BYTES / frameSize))
  let checksum = from.checksum
  let frame = from.frame
  while (frameOffset(frame + 1, header.pageSize) + frameSize <= fileSize) {
    const count = Math.min(batchFrames, Math.floor((fileSize - frameOffset(frame + 1, header.pageSize)) / frameSize))
    const batch = Buffer.allocUnsafe(count * frameSize)
    const whole = Math.floor(readSync(fd, batch, 0, batch.length, frameOffset(frame + 1, header.pageSize)) / frameSize)
    const firstFrame = frame + 1
    const commits: ValidFrameBatch['commits'] = []
    let kept = 0
    for (let i = 0; i < whole; i++) {
      const bytes = batch.subarray(i * frameSize, (i + 1) * frameSize)
      const frameHeader = parseFrameHeader(bytes)
      if (frameHeader.salt1 !== header.salt1 || frameHeader.salt2 !== header.salt2) break
      const next = walChecksum(bytes.subarray(WAL_FRAME_HEADER_SIZE), header.bigEndianChecksums, walChecksum(bytes.subarray(0, 8), header.bigEndianChecksums, checksum))
      if (next[0] !== frameHeader.checksum[0] || next[1] !== frameHeader.checksum[1]) break
      checksum = next
      frame += 1
      kept = i + 1
      if (frameHeader.commitSize !== 0) commits.push({ frame, databasePages: frameHeader.commitSize, checksum })
    }
    if (kept > 0) yield { firstFrame, bytes: batch.subarray(0, kept * frameSize), commits }
    if (kept < count) return
  }
}

/**
 * Reads the frames that follow `from` and keeps those of committed transactions, dropping the frames
 * after the last commit frame (a transaction still in progress, or rolled back). Stops after the first
 * commit past `maxBytes` of frames, so one call holds at most `maxBytes` plus one transaction in memory;
 * call again from `end` for the rest.
 */
export function readCommittedFrames(fd: number, header: WalHeader, from: WalPosition, maxBytes = Infinity): CommittedFrames {
  const frameSize = WAL_FRAME_HEADER_SIZE + header.pageSize
  const chunks: Buffer[] = []
  const commits: WalCommit[] = []
  let end: WalPosition = from
  let bytes = 0
  for (const batch of validFrameBatches(fd, header, from)) {
    chunks.push(batch.bytes)
    bytes += batch.bytes.length
    for (const commit of batch.commits) {
      commits.push({ frame: commit.frame, databasePages: commit.databasePages })
      end = { salt1: header.salt1, salt2: header.salt2, frame: commit.frame, checksum: commit.checksum }
      if ((commit.frame - from.frame) * frameSize >= maxBytes) break
    }
    if ((end.frame - from.frame) * frameSize >= maxBytes) break
  }
  const committedBytes = (end.frame - from.frame) * frameSize
  const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes)
  return { frames: all.subarray(0, committedBytes), commits, end }
}

/** The header of the WAL file at `path`, or null when it is absent, empty or not (yet) valid. */
export function readWalHeaderAt(path: string): WalHeader | null {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw error
  }
  try {
    const bytes = Buffer.alloc(WAL_HEADER_SIZE)
    return readSync(fd, bytes, 0, WAL_HEADER_SIZE, 0) === WAL_HEADER_SIZE ? parseWalHeader(bytes) : null
  } finally {
    closeSync(fd)
  }
}

/** The page size in a database file's header (offset 16; 1 means 65536). */
export function databasePageSize(headerBytes: Uint8Array): number {
  const raw = new DataView(headerBytes.buffer, headerBytes.byteOffset, 100).getUint16(16)
  return raw === 1 ? 65536 : raw
}

/**
 * Writes each frame's page at its place in a database file open for writing, as a checkpoint does,
 * and returns the database size (pages) after the last commit among them (null if none).
 */
export function applyFrames(fd: number, frames: Uint8Array, pageSize: number): number | null {
  const frameSize = WAL_FRAME_HEADER_SIZE + pageSize
  let databasePages: number | null = null
  for (let offset = 0; offset + frameSize <= frames.byteLength; offset += frameSize) {
    const header = parseFrameHeader(frames.subarray(offset, offset + WAL_FRAME_HEADER_SIZE))
    writeSync(fd, frames.subarray(offset + WAL_FRAME_HEADER_SIZE, offset + frameSize), 0, pageSize, (header.pageNumber - 1) * pageSize)
    if (header.commitSize !== 0) databasePages = header.commitSize
  }
  return databasePages
}
