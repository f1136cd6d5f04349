/**
 * The replica folder, engine-independent. Invariants: a generation exists iff its generation.json does;
 * a snapshot exists iff its .json exists (written after the data file is durable); a segment is one
 * file written atomically, so it holds its transactions and their seen-times together or not at all.
 *
 *   <replicaDir>/generations/<id>/generation.json
 *   <replicaDir>/generations/<id>/snapshots/<seq>.data + <seq>.json   state after the segments before <seq>
 *   <replicaDir>/generations/<id>/segments/<seq>.segment              header (JSON) + engine payload
 *
 * `<seq>` is a 16-digit counter per generation; generation ids start with their UTC start time, so
 * they sort in the order they were started.
 */
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs'
import { join } from 'node:path'
import { ToolkitError } from '../errors.ts'
import { TEMPORARY_MARKER, fsyncPath, writeFileAtomic } from '../fs/atomic.ts'

const FORMAT_VERSION = 1
const SEGMENT_MAGIC = Buffer.from('IAPSEG1\n')

export interface GenerationInfo {
  version: 1
  id: string
  startedAt: string
  /** Why it started (first run, continuity lost, database replaced…), in French for the operator. */
  reason: string
  database: { path: string; device: number; inode: number }
}

/** One committed transaction in a segment: when the replicator saw it, and where it ends in the payload. */
export interface SegmentCommit {
  seenAt: string
  payloadEnd: number
}

export interface SegmentHeader<Position> {
  version: 1
  seq: number
  commits: SegmentCommit[]
  /** The engine's position after the segment's last commit (where copying resumes). */
  position: Position
}

export interface SnapshotInfo<Position> {
  version: 1
  /** The snapshot is the state after every segment whose seq is lower than this. */
  seq: number
  /** A time at which this state was the database's current state. */
  at: string
  bytes: number
  position: Position
}

export const generationsDir = (replicaDir: string) => join(replicaDir, 'generations')
export const generationDir = (replicaDir: string, id: string) => join(generationsDir(replicaDir), id)
const seqName = (seq: number) => String(seq).padStart(16, '0')
export const segmentPath = (replicaDir: string, id: string, seq: number) => join(generationDir(replicaDir, id), 'segments', `${seqName(seq)}.segment`)
export const snapshotDataPath = (replicaDir: string, id: string, seq: number) => join(generationDir(replicaDir, id), 'snapshots', `${seqName(seq)}.data`)
const snapshotInfoPath = (replicaDir: string, id: string, seq: number) => join(generationDir(replicaDir, id), 'snapshots', `${seqName(seq)}.json`)

/** A new generation id: its UTC start time (sortable) and 4 random bytes. */
export function newGenerationId(startedAt: Date): string {
  return `${startedAt.toISOString().replace(/[-:]/g, '').replace('.', '')}-${randomBytes(4).toString('hex')}`
}

/** Creates a generation's folders and then its generation.json. */
export function createGeneration(replicaDir: string, info: GenerationInfo): void {
  const dir = generationDir(replicaDir, info.id)
  for (const sub of ['segments', 'snapshots']) mkdirSync(join(dir, sub), { recursive: true })
  fsyncPath(generationsDir(replicaDir))
  writeFileAtomic(join(dir, 'generation.json'), JSON.stringify(info, null, 2))
}

function readJson<T>(path: string, what: string): T {
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as { version?: unknown }
    if (value.version !== FORMAT_VERSION) throw new Error(`version ${String(value.version)} inconnue`)
    return value as T
  } catch (error) {
    throw new ToolkitError(`${what} illisible: ${path}`, { cause: error, hint: 'Le réplica est peut-être abîmé ou écrit par une version plus récente de l’outil.' })
  }
}

/** The generations of a replica, oldest first (none when the folder does not exist yet). */
export function listGenerations(replicaDir: string): GenerationInfo[] {
  const dir = generationsDir(replicaDir)
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((id) => !id.includes(TEMPORARY_MARKER) && existsSync(join(dir, id, 'generation.json')))
    .sort()
    .map((id) => readJson<GenerationInfo>(join(dir, id, 'generation.json'), 'generation.json'))
}

function listSeqs(dir: string, suffix: string): number[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((name) => name.endsWith(suffix) && !name.includes(TEMPORARY_MARKER))
    .map((name) => Number(name.slice(0, -suffix.length)))
    .sort((a, b) => a - b)
}

/** The segment numbers of a generation, in order. */
export function listSegmentSeqs(replicaDir: string, id: string): number[] {
  return listSeqs(join(generationDir(replicaDir, id), 'segments'), '.segment')
}

/** Writes a segment (header then payload) as one atomic file. */
export function writeSegment<Position>(replicaDir: string, id: string, header: SegmentHeader<Position>, payload: Uint8Array): number {
  const json = Buffer.from(JSON.stringify(header))
  const length = Buffer.alloc(4)
  length.writeUInt32BE(json.length)
  const bytes = Buffer.concat([SEGMENT_MAGIC, length, json, payload])
  writeFileAtomic(segmentPath(replicaDir, id, header.seq), bytes)
  return bytes.length
}

function readSegmentFile<Position>(path: string, withPayload: boolean): { header: SegmentHeader<Position>; payload: Buffer } {
  const fd = openSync(path, 'r')
  try {
    const prefix = Buffer.alloc(SEGMENT_MAGIC.length + 4)
    readSync(fd, prefix, 0, prefix.length, 0)
    if (!prefix.subarray(0, SEGMENT_MAGIC.length).equals(SEGMENT_MAGIC)) throw new ToolkitError(`segment illisible (en-tête inconnu): ${path}`)
    const json = Buffer.alloc(prefix.readUInt32BE(SEGMENT_MAGIC.length))
    readSync(fd, json, 0, json.length, prefix.length)
    const header = JSON.parse(json.toString('utf8')) as SegmentHeader<Position>
    if (header.version !== FORMAT_VERSION) throw new ToolkitError(`segment de version inconnue: ${path}`)
    if (!withPayload) return { header, payload: Buffer.alloc(0) }
    const whole = readFileSync(path)
    return { header, payload: whole.subarray(prefix.length + json.length) }
  } finally {
    closeSync(fd)
  }
}

export function readSegmentHeader<Position>(replicaDir: string, id: string, seq: number): SegmentHeader<Position> {
  return readSegmentFile<Position>(segmentPath(replicaDir, id, seq), false).header
}

export function readSegment<Position>(replicaDir: string, id: string, seq: number): { header: SegmentHeader<Position>; payload: Buffer } {
  return readSegmentFile<Position>(segmentPath(replicaDir, id, seq), true)
}

/** Records a snapshot whose data file is already durable at snapshotDataPath(). */
export function writeSnapshotInfo<Position>(replicaDir: string, id: string, info: SnapshotInfo<Position>): void {
  writeFileAtomic(snapshotInfoPath(replicaDir, id, info.seq), JSON.stringify(info, null, 2))
}

/** The complete snapshots of a generation, oldest first. */
export function listSnapshots<Position>(replicaDir: string, id: string): SnapshotInfo<Position>[] {
  return listSeqs(join(generationDir(replicaDir, id), 'snapshots'), '.json').map((seq) =>
    readJson<SnapshotInfo<Position>>(snapshotInfoPath(replicaDir, id, seq), 'snapshot'),
  )
}

/** Paths of a snapshot's two files (the description first, so a removal never leaves a described snapshot without data). */
export function snapshotFiles(replicaDir: string, id: string, seq: number): [string, string] {
  return [snapshotInfoPath(replicaDir, id, seq), snapshotDataPath(replicaDir, id, seq)]
}
