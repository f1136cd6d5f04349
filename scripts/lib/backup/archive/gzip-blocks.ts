/**
 * Gzip on every core: the stream is cut into blocks of BLOCK_SIZE bytes, each compressed by a
 * worker thread into its own gzip member, and the members are written in order. A file of
 * concatenated members is plain gzip (RFC 1952 §2.2): `gzip -d`, `tar -xzf` and zlib read it as one
 * stream. Each member's header carries an extra field (FEXTRA, subfield "IP", like BGZF's "BC")
 * holding the member's total length, so our own reader can find the members without inflating
 * and inflate them in parallel too; anything without it is read as ordinary gzip, in one thread.
 * A block is (de)compressed by libdeflate where the build and the machine have it (libdeflate.ts:
 * 30 % less CPU to compress, 45 % less to inflate, same format), by zlib otherwise.
 *
 * Memory: gigabytes stream through here, so nothing is allocated per block on our side but the
 * output — input buffers travel to the worker and back (transferred, never copied) to be reused,
 * and the output moves to the caller without a copy. Measured on the 1M-dossier backup, allocating per
 * block instead cost ~60 MB of RSS per thread (dead buffers waiting for V8 and glibc arenas).
 */
import { createReadStream } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import zlib, { createGunzip, gunzip, gzip } from 'node:zlib'
import { libdeflateBinding, type LibdeflateChoice, type LibdeflateCodec } from './libdeflate.ts'

export const BLOCK_SIZE = 1 << 20
export const COMPRESSION_LEVEL = 6
/**
 * zlib's hash table at its largest (memLevel 9: 256 KiB per stream, default 8): at level 6, 8 % less
 * CPU on the 1M-dossier database and slightly smaller output, measured on 64 blocks; readers never see it.
 */
const MEMORY_LEVEL = 9
/** Room for one block's compressed output in one piece (deflate can grow incompressible data a little). */
const OUTPUT_ROOM = BLOCK_SIZE + (64 << 10)
/** Largest member our writer makes: one block's deflate output plus the headers. */
export const MAX_MEMBER_SIZE = OUTPUT_ROOM + 64
/**
 * A block of fewer bytes than this (uncompressed), while no worker has started, is done without one
 * (by libdeflate on this thread, else on libuv's zlib threads): a worker costs more to start than such a block costs to (de)compress — the
 * whole archive of a small backup, its verification, its restore (bench/startup.ts).
 */
const WORKER_FROM_BYTES = 256 << 10

/**
 * One block gzipped (into one member) or one member gunzipped: by libdeflate (`native`,
 * libdeflate.ts) when the pool has it, else by zlib. It is also the worker's code (WORKER_SOURCE, from
 * its text), so it uses nothing but its arguments and `inflatedSize` (whose text goes there too), and
 * has no inner function.
 */
function codeBlock(native: LibdeflateCodec | undefined, zlib: typeof import('node:zlib'), op: 'gzip' | 'gunzip', input: Buffer, level: number, memLevel: number, room: number): Buffer {
  if (op === 'gzip') {
    if (native !== undefined) {
      const output = Buffer.allocUnsafeSlow(room)
      const written = native.gzip(input, level, output)
      if (written > 0) return output.subarray(0, written)
    }
    // One output chunk as large as the result: zlib returns it without concatenating copies.
    return zlib.gzipSync(input, { level, memLevel, chunkSize: room })
  }
  // Our members hold one block at most; anything announcing more is zlib's to refuse or stream.
  const size = inflatedSize(op, input)
  if (native !== undefined && size <= room) {
    const output = Buffer.allocUnsafeSlow(size)
    return output.subarray(0, native.gunzip(input, output))
  }
  return zlib.gunzipSync(input, { chunkSize: room })
}

// Plain JavaScript, evaluated as the worker: no TypeScript loader is needed inside the thread.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const zlib = require('node:zlib')
const native = workerData.libdeflate === undefined ? undefined : require(workerData.libdeflate)
// A declaration, so that it keeps the name codeBlock's text calls it by (which a bundler may have changed).
${inflatedSize.toString()}
const codeBlock = ${codeBlock.toString()}
// Moves a buffer to the other thread when it owns its memory (never a slice of Node's shared pool).
const movable = (b) => b.byteLength > 0 && b.buffer.byteLength > Buffer.poolSize
parentPort.on('message', ({ id, op, data, level, memLevel, room }) => {
  try {
    const output = codeBlock(native, zlib, op, Buffer.from(data.buffer, data.byteOffset, data.byteLength), level, memLevel, room)
    const transfer = [output, data].filter(movable).map((b) => b.buffer)
    parentPort.postMessage({ id, data: output, input: data }, [...new Set(transfer)])
  } catch (error) {
    parentPort.postMessage({ id, error: String((error && error.message) || error), input: data }, movable(data) ? [data.buffer] : [])
  }
})
`

export interface BlockResult {
  /** zlib's output. */
  data: Buffer
  /** The input buffer, back from the worker, to be reused. */
  input: Buffer
}

interface Pending {
  resolve(result: BlockResult): void
  reject(error: Error): void
}

const movable = (buffer: Buffer) => buffer.byteLength > 0 && buffer.buffer.byteLength > Buffer.poolSize

/** Up to `threads` worker threads that gzip or gunzip whole blocks, started as blocks arrive (a small backup starts none: WORKER_FROM_BYTES). */
export class GzipPool {
  #workers: Worker[] = []
  #idle: Worker[] = []
  #queue: { op: 'gzip' | 'gunzip'; data: Buffer; pending: Pending }[] = []
  #pending = new Map<number, Pending>()
  #nextId = 0
  #failure: Error | undefined
  /** Blocks at a time (`limit`): fewer than `size` while other threads of the process need cores. */
  #cap = Infinity
  readonly size: number
  readonly level: number
  /** What codes the blocks: libdeflate's binding, or why zlib does. */
  readonly codec: LibdeflateChoice

  constructor(options: { threads?: number; level?: number; codec?: LibdeflateChoice } = {}) {
    this.size = Math.max(1, options.threads ?? availableParallelism())
    this.level = options.level ?? COMPRESSION_LEVEL
    this.codec = options.codec ?? libdeflateBinding()
  }

  /** One more worker, idle. Each costs ~30 ms of CPU and ~10 MB to start: started when a block waits for one. */
  #start(): void {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { libdeflate: 'path' in this.codec ? this.codec.path : undefined } })
    worker.on('message', (message: { id: number; data?: Uint8Array; input: Uint8Array; error?: string }) => this.#settle(worker, message))
    worker.on('error', (error) => this.#fail(error))
    // Idle workers do not keep the process alive; busy ones do (see #dispatch / #settle).
    worker.unref()
    this.#workers.push(worker)
    this.#idle.push(worker)
  }

  /** Gzips one block (at most BLOCK_SIZE bytes) into one member, without our FEXTRA (see `memberHeader`). */
  gzip(data: Buffer): Promise<BlockResult> {
    return this.#submit('gzip', data)
  }

  /** The bytes of one gzip member (at most BLOCK_SIZE of them, as our writer makes). */
  gunzip(data: Buffer): Promise<BlockResult> {
    return this.#submit('gunzip', data)
  }

  #submit(op: 'gzip' | 'gunzip', data: Buffer): Promise<BlockResult> {
    if (this.#failure) return Promise.reject(this.#failure)
    if (this.#workers.length === 0 && inflatedSize(op, data) < WORKER_FROM_BYTES) return this.#withoutWorker(op, data)
    return new Promise((resolve, reject) => {
      this.#queue.push({ op, data, pending: { resolve, reject } })
      this.#dispatch()
    })
  }

  #withoutWorker(op: 'gzip' | 'gunzip', data: Buffer): Promise<BlockResult> {
    if ('path' in this.codec) {
      // libdeflate takes less than a millisecond for such a block: on this thread, as zlib's threads would cost more.
      try {
        return Promise.resolve({ data: codeBlock(this.codec.binding, zlib, op, data, this.level, MEMORY_LEVEL, OUTPUT_ROOM), input: data })
      } catch (error) {
        return Promise.reject(error as Error)
      }
    }
    return new Promise((resolve, reject) => {
      const done = (error: Error | null, output: Buffer) => (error ? reject(error) : resolve({ data: output, input: data }))
      if (op === 'gzip') gzip(data, { level: this.level, memLevel: MEMORY_LEVEL }, done)
      else gunzip(data, done)
    })
  }

  /** At most `threads` blocks at a time from now on (at least one); `size` again lifts it. */
  limit(threads: number): void {
    this.#cap = Math.max(1, threads)
    this.#dispatch()
  }

  #dispatch(): void {
    while (this.#queue.length > this.#idle.length && this.#workers.length < this.size) this.#start()
    while (this.#idle.length > 0 && this.#queue.length > 0 && this.#pending.size < this.#cap) {
      const worker = this.#idle.pop()!
      const job = this.#queue.shift()!
      const id = this.#nextId++
      this.#pending.set(id, job.pending)
      worker.ref()
      worker.postMessage({ id, op: job.op, data: job.data, level: this.level, memLevel: MEMORY_LEVEL, room: OUTPUT_ROOM }, movable(job.data) ? [job.data.buffer as ArrayBuffer] : [])
    }
  }

  #settle(worker: Worker, message: { id: number; data?: Uint8Array; input: Uint8Array; error?: string }): void {
    const pending = this.#pending.get(message.id)
    this.#pending.delete(message.id)
    worker.unref()
    this.#idle.push(worker)
    const view = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength)
    if (message.error !== undefined || message.data === undefined) pending?.reject(new Error(message.error ?? 'aucune donnée'))
    else pending?.resolve({ data: view(message.data), input: view(message.input) })
    this.#dispatch()
  }

  #fail(error: Error): void {
    this.#failure ??= error
    for (const pending of this.#pending.values()) pending.reject(error)
    for (const job of this.#queue) job.pending.reject(error)
    this.#pending.clear()
    this.#queue = []
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.terminate()))
  }
}

/** A block's uncompressed size: a gzip member records it (mod 2^32) in its last 4 bytes, ISIZE. */
function inflatedSize(op: 'gzip' | 'gunzip', data: Buffer): number {
  if (op === 'gzip') return data.byteLength
  return data.byteLength >= 18 ? data.readUInt32LE(data.byteLength - 4) : Infinity
}

/**
 * The first 20 bytes of our member for zlib's gzip output `z`: its 10-byte header with FEXTRA set,
 * then XLEN=8, SI1='I', SI2='P', LEN=4 and the member's total length; `z` from byte 10 follows.
 */
export function memberHeader(z: Buffer): Buffer {
  const header = Buffer.alloc(20)
  z.copy(header, 0, 0, 10)
  header[3] = header[3]! | 4
  header.writeUInt16LE(8, 10)
  header[12] = 0x49
  header[13] = 0x50
  header.writeUInt16LE(4, 14)
  header.writeUInt32LE(z.length + 10, 16)
  return header
}

/** The length of the gzip member starting at `data[offset]` when it carries our FEXTRA; else undefined. */
export function blockLength(data: Buffer, offset: number): number | undefined {
  if (data.length - offset < 20) return undefined
  if (data[offset] !== 0x1f || data[offset + 1] !== 0x8b || data[offset + 2] !== 8 || (data[offset + 3]! & 4) === 0) return undefined
  if (data.readUInt16LE(offset + 10) !== 8 || data[offset + 12] !== 0x49 || data[offset + 13] !== 0x50 || data.readUInt16LE(offset + 14) !== 4) return undefined
  const length = data.readUInt32LE(offset + 16)
  return length >= 38 && length <= MAX_MEMBER_SIZE ? length : undefined
}

/** Reusable buffers of one size. */
export class BufferPool {
  #free: Buffer[] = []
  readonly size: number
  readonly keep: number

  constructor(size: number, keep: number) {
    this.size = size
    this.keep = keep
  }

  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.size)
  }

  /** Gives back a buffer (or a view of one) of this pool's size. */
  give(view: Buffer): void {
    if (view.buffer.byteLength !== this.size || this.#free.length >= this.keep) return
    this.#free.push(Buffer.from(view.buffer, 0, this.size))
  }
}

/** Where the gzip data of a file stops being readable. */
export type GzipDamage =
  /** One of our members is cut short (the file ends inside it). */
  | { kind: 'truncated'; offset: number; member: number; got: number; length: number }
  /** One of our members does not inflate. */
  | { kind: 'member'; offset: number; member: number; error: unknown }
  /** The ordinary gzip stream read from `start` fails near `offset`. */
  | { kind: 'stream'; start: number; offset: number; error: Error }

export interface InflateFileOptions {
  pool: GzipPool
  /** Every compressed byte read, in order, with the file position after it. */
  onRead?: (chunk: Buffer, position: number) => void
  /** The inflated bytes, in order; what it throws stops the reading and is thrown. */
  onData: (data: Buffer) => void | Promise<void>
  /**
   * Asked before each of our members is inflated: once it answers true, that member and every byte
   * after it are only read (`onRead`), never inflated. Another tool's gzip stream is always inflated.
   */
  enough?: () => boolean
}

export interface InflatedFile {
  /** The file's size. */
  size: number
  /** How far the file was read: its size, unless the gzip data is damaged. */
  end: number
  damage?: GzipDamage
  /** `enough` stopped the inflating: the rest of the file was only read. */
  partial?: true
}

/**
 * The one loop over a gzip file's members: ours (found by their FEXTRA length, without inflating)
 * are inflated in parallel on the pool and handed on in order; from the first byte that is not
 * one of ours (another tool's gzip), the rest is read as one ordinary gzip stream.
 * @example const { damage } = await inflateFile('backup-x.tar.gz', { pool, onData: (data) => tar.write(data) })
 */
export async function inflateFile(path: string, options: InflateFileOptions): Promise<InflatedFile> {
  const { pool, onRead, onData, enough } = options
  const members = new BufferPool(MAX_MEMBER_SIZE, pool.size * 2 + 2)
  // Each member in flight with where it starts, so a data error can say which one and where.
  const inflight: { result: Promise<BlockResult>; member: number; offset: number }[] = []
  let position = 0
  let count = 0
  const handle = await open(path, 'r')
  try {
    const size = (await handle.stat()).size
    const drain = async (limit: number): Promise<GzipDamage | undefined> => {
      while (inflight.length > limit) {
        const next = inflight.shift()!
        let result: BlockResult
        try {
          result = await next.result
        } catch (error) {
          return { kind: 'member', offset: next.offset, member: next.member, error }
        }
        members.give(result.input)
        await onData(result.data)
      }
      return undefined
    }
    const head = Buffer.alloc(20)
    // Our members, one by one: the length in each header says where the next one starts.
    while (position < size) {
      if (enough?.()) {
        const damage = await drain(0)
        if (damage) return { size, end: position, damage }
        position = await readRest(handle, position, size, onRead)
        return { size, end: position, partial: true }
      }
      const { bytesRead } = await handle.read(head, 0, 20, position)
      const length = blockLength(head.subarray(0, bytesRead), 0)
      if (length === undefined) break
      const member = members.take()
      const { bytesRead: got } = await handle.read(member, 0, Math.min(length, size - position), position)
      const start = position
      position += got
      count += 1
      onRead?.(member.subarray(0, got), position)
      if (got < length) {
        members.give(member)
        const earlier = await drain(0)
        return { size, end: position, damage: earlier ?? { kind: 'truncated', offset: start, member: count, got, length } }
      }
      const inflated = pool.gunzip(member.subarray(0, length))
      inflated.catch(() => {})
      inflight.push({ result: inflated, member: count, offset: start })
      const damage = await drain(pool.size * 2)
      if (damage) return { size, end: position, damage }
    }
    const damage = await drain(0)
    if (damage) return { size, end: position, damage }
    if (position === size) return { size, end: position }
    return { size, ...(await inflateStream(path, position, onRead, onData)) }
  } finally {
    await Promise.allSettled(inflight.map((entry) => entry.result))
    await handle.close()
  }
}

/** Reads bytes [start, size) of an open file, handing each chunk to `onRead`; returns where it stopped (the end, unless the file shrank). */
async function readRest(handle: FileHandle, start: number, size: number, onRead: InflateFileOptions['onRead']): Promise<number> {
  const chunk = Buffer.allocUnsafeSlow(1 << 20)
  let position = start
  while (position < size) {
    const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, size - position), position)
    if (bytesRead === 0) break
    position += bytesRead
    onRead?.(chunk.subarray(0, bytesRead), position)
  }
  return position
}

/** Reads `path` from `start` as one ordinary gzip stream, with backpressure from `onData`. */
async function inflateStream(path: string, start: number, onRead: InflateFileOptions['onRead'], onData: InflateFileOptions['onData']): Promise<Omit<InflatedFile, 'size'>> {
  const gunzip = createGunzip()
  let position = start
  let stopped = false
  let readError: unknown
  const pump = (async () => {
    for await (const chunk of createReadStream(path, { start, highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      if (stopped) return
      position += chunk.length
      onRead?.(chunk, position)
      if (!gunzip.write(chunk)) await drained(gunzip)
    }
    if (!stopped) gunzip.end()
  })().catch((error: unknown) => {
    readError = error
    gunzip.destroy(error as Error)
  })
  const output = gunzip[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  let damage: GzipDamage | undefined
  try {
    for (;;) {
      let next: IteratorResult<Buffer>
      try {
        next = await output.next()
      } catch (error) {
        // bytesWritten: the compressed bytes zlib had consumed when it failed.
        damage = { kind: 'stream', start, offset: start + gunzip.bytesWritten, error: error as Error }
        break
      }
      if (next.done) break
      await onData(next.value)
    }
  } finally {
    stopped = true
    await output.return?.()
    await pump
  }
  if (readError !== undefined) throw readError
  return { end: position, ...(damage ? { damage } : {}) }
}

/** Waits until a stream can take more, or has failed (its error is reported elsewhere). */
function drained(stream: NodeJS.WritableStream & NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done)
      stream.off('error', done)
      stream.off('close', done)
      resolve()
    }
    stream.on('drain', done)
    stream.on('error', done)
    stream.on('close', done)
  })
}
