/**
 * One interface for every place backups are kept: a local folder, an S3-compatible bucket, an Azure
 * Blob container. Everything above it is storage-blind.
 *
 * Invariants every implementation keeps:
 * - an object is visible (list, head, get) only once it is whole: an interrupted put leaves at most an
 *   incomplete upload, which list never shows and sweepIncompleteUploads removes;
 * - each object carries our own SHA-256 (computed while streaming, never the service's ETag), and
 *   put returns only after a HEAD confirmed the stored size and SHA-256;
 * - memory is bounded by one part (partSizeFor) per upload in flight, whatever the object's size.
 */
import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import { ToolkitError } from '../errors.ts'

export interface StoredObject {
  /** Relative to the storage's root (the URL's folder or prefix); segments separated by "/". */
  key: string
  size: number
  lastModified: Date
}

export interface ObjectHead extends StoredObject {
  /** Our SHA-256 (hex) stored with the object; undefined if the object was not written by put(). */
  sha256: string | undefined
}

export interface PutOptions {
  /** The body's size when known: chooses the part size, and put fails if the body differs. */
  size?: number
  /** The body's SHA-256 when known (e.g. a local archive already hashed): stored from the start, and put fails if the body differs. */
  sha256?: string
}

export interface PutResult {
  key: string
  size: number
  sha256: string
}

/** `length` bytes from `offset` (to the end when `length` is omitted). */
export interface ByteRange {
  offset: number
  length?: number
}

export interface ObjectStorage {
  /** Where this storage points, for messages: credentials never appear in it. */
  readonly location: string
  /**
   * Streams `body` into `key`, replacing any object there; visible only once whole and confirmed.
   * @example await storage.put('backup-2026-01-21T15-30-00.tar.gz', createReadStream(path), { size, sha256 })
   */
  put(key: string, body: AsyncIterable<Uint8Array>, options?: PutOptions): Promise<PutResult>
  /**
   * The object's bytes as a stream (a ToolkitError if it does not exist).
   * @example await pipeline(await storage.get(key), createDecryptStream(dataKey), out)
   */
  get(key: string, range?: ByteRange): Promise<Readable>
  /** Size, date and stored SHA-256, or undefined when there is no such object. */
  head(key: string): Promise<ObjectHead | undefined>
  /**
   * Whole objects whose key starts with `prefix` ("" for all), in key order.
   * @example for await (const object of storage.list('backup-')) console.log(object.key)
   */
  list(prefix: string): AsyncIterable<StoredObject>
  /** Removes an object; removing a missing object is not an error. */
  delete(key: string): Promise<void>
  /**
   * Removes the leftovers of puts that were interrupted (killed process, lost network) under `prefix`:
   * those `judge` gives up ('remove'), and those it does not know that started before `startedBefore`
   * (the storage's clock); what it keeps ('keep': a live upload of another process) is never touched.
   * @example await storage.sweepIncompleteUploads('', { startedBefore: new Date(now - 3_600_000) })
   */
  sweepIncompleteUploads(prefix: string, options: SweepOptions): Promise<{ removed: string[] }>
}

export interface SweepOptions {
  /** Leftovers `judge` does not know are removed only if they started before this date. */
  startedBefore: Date
  /** Per object key (the key the interrupted put was writing): 'keep', 'remove', or undefined for the date rule. */
  judge?: (key: string) => 'keep' | 'remove' | undefined
}

/** The sweep's decision for one leftover of `key` that started at `started`. */
export function shouldSweep(key: string, started: Date | undefined, options: SweepOptions): boolean {
  const verdict = options.judge?.(key)
  if (verdict !== undefined) return verdict === 'remove'
  return started !== undefined && started < options.startedBefore
}

const MIB = 1024 * 1024

/** S3 allows 10,000 parts; 9,000 leaves room for a size announced a little short. */
export function partSizeFor(size: number | undefined): number {
  return Math.max(8 * MIB, Math.ceil((size ?? 0) / 9000))
}

/**
 * Refuses keys that could leave the storage's root or mean different things on different backends.
 * `reservedSuffixes` are names an implementation keeps for itself.
 */
export function checkKey(key: string, location: string, reservedSuffixes: string[] = []): void {
  const segments = key.split('/')
  const bad =
    key === '' ||
    key.length > 1024 ||
    /[\\\u0000-\u001f\u007f]/.test(key) ||
    segments.some((segment) => segment === '' || segment === '.' || segment === '..') ||
    reservedSuffixes.some((suffix) => key.endsWith(suffix))
  if (bad) throw new ToolkitError(`nom d’objet invalide « ${key.replace(/[\u0000-\u001f\u007f]/g, '?')} » sur ${location}`, { hint: 'un nom d’objet est fait de segments non vides séparés par « / », sans « . », « .. », « \\ » ni caractère de contrôle' })
}

export function notFound(key: string, location: string): ToolkitError {
  return new ToolkitError(`objet « ${key} » introuvable sur ${location}`, { hint: 'vérifiez le nom de la sauvegarde avec « list »' })
}

/** Body and announced size/hash disagree: the put must not become visible. */
export function contentMismatch(key: string, what: string): ToolkitError {
  return new ToolkitError(`envoi de « ${key} » refusé : ${what}`, { hint: 'le fichier source a changé pendant l’envoi ; relancez la commande' })
}

/**
 * Passes `body` through, hashing and counting it; when the body ends, checks it against the announced
 * size and SHA-256 and fails *before* ending (so the upload is aborted, not completed).
 */
export async function* hashedBody(key: string, body: AsyncIterable<Uint8Array>, options: PutOptions, result: { size: number; sha256: string }): AsyncGenerator<Buffer> {
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of body) {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    hash.update(bytes)
    size += bytes.length
    if (options.size !== undefined && size > options.size) throw contentMismatch(key, `plus de ${options.size} octets reçus`)
    yield bytes
  }
  const sha256 = hash.digest('hex')
  if (options.size !== undefined && size !== options.size) throw contentMismatch(key, `${size} octets reçus, ${options.size} annoncés`)
  if (options.sha256 !== undefined && sha256 !== options.sha256) throw contentMismatch(key, 'SHA-256 différent de celui annoncé')
  result.size = size
  result.sha256 = sha256
}

/** Reads `body` in pieces of exactly `partSize` bytes (the last one shorter); one part in memory at a time. */
export async function* parts(body: AsyncIterable<Buffer>, partSize: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = []
  let fill = 0
  for await (const chunk of body) {
    let offset = 0
    while (offset < chunk.length) {
      const take = Math.min(partSize - fill, chunk.length - offset)
      pending.push(chunk.subarray(offset, offset + take))
      fill += take
      offset += take
      if (fill === partSize) {
        yield Buffer.concat(pending, fill)
        pending = []
        fill = 0
      }
    }
  }
  if (fill > 0) yield Buffer.concat(pending, fill)
}

/** After an upload: the HEAD must show the size and SHA-256 we streamed. */
export function confirmHead(key: string, location: string, head: ObjectHead | undefined, expected: { size: number; sha256: string }): PutResult {
  if (head === undefined || head.size !== expected.size || head.sha256 !== expected.sha256) {
    const seen = head === undefined ? 'objet absent' : `${head.size} octets, SHA-256 ${head.sha256 === undefined ? 'absent' : head.sha256 === expected.sha256 ? 'identique' : 'différent'}`
    throw new ToolkitError(`envoi de « ${key} » vers ${location} non confirmé : ${expected.size} octets envoyés, le stockage montre ${seen}`, { hint: 'relancez la commande ; si cela se répète, le service de stockage altère les objets' })
  }
  return { key, size: expected.size, sha256: expected.sha256 }
}

export interface ObjectCheck {
  key: string
  /** Bytes actually read. */
  size: number
  /** SHA-256 of the bytes actually read. */
  sha256: string
  /** What the storage says the object is (head). */
  expected: { size: number; sha256: string | undefined }
  ok: boolean
}

/**
 * Reads a whole object and compares its bytes with its stored size and SHA-256 (verify without a key).
 * @example const { ok } = await checkObject(storage, 'backup-x.tar.gz.enc')
 */
export async function checkObject(storage: ObjectStorage, key: string): Promise<ObjectCheck> {
  const head = await storage.head(key)
  if (head === undefined) throw notFound(key, storage.location)
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of await storage.get(key)) {
    hash.update(chunk as Buffer)
    size += (chunk as Buffer).length
  }
  const sha256 = hash.digest('hex')
  return { key, size, sha256, expected: { size: head.size, sha256: head.sha256 }, ok: size === head.size && sha256 === head.sha256 }
}
