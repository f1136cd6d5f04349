/**
 * A file being written and hashed in the same pass: exporters stream into it, and the SHA-256 is
 * ready the moment the last byte is on disk (no second read of the file).
 */
import { createHash, type Hash } from 'node:crypto'
import { open, type FileHandle } from 'node:fs/promises'
import { Writable } from 'node:stream'

export interface WrittenFile {
  size: number
  sha256: string
}

const encoder = new TextEncoder()

/** Bytes a durable HashedFile writes between two write-behind syncs. */
const SYNC_BEHIND_BYTES = 64 * 1024 * 1024

export class HashedFile extends Writable {
  readonly path: string
  #handle: FileHandle
  #hash: Hash = createHash('sha256')
  #size = 0
  // Text is encoded into this one buffer (no buffer allocated per write: see gzip-blocks.ts on memory).
  #scratch = Buffer.allocUnsafeSlow(512 * 1024)
  #fill = 0
  readonly #durable: boolean
  /** Bytes written since the last write-behind sync started, that sync (it never rejects), and what made one fail (see #output). */
  #unsynced = 0
  #syncing: Promise<void> | undefined
  #syncFailure: Error | undefined

  private constructor(path: string, handle: FileHandle, durable: boolean) {
    // Exporters batch their text into ~16 Ki-character chunks; the scratch buffer gathers them into large writes.
    super({ highWaterMark: 256 * 1024, decodeStrings: false })
    this.path = path
    this.#handle = handle
    this.#durable = durable
    // Failures surface through `errored`, TextSink.flush() and commit(), not as an uncaught event.
    this.on('error', () => {})
  }

  /**
   * Creates the file (it must not exist); `durable` (default true): `commit` returns once it is on disk.
   * @example const out = await HashedFile.create(path); out.write('…'); const { sha256 } = await out.commit()
   */
  static async create(path: string, options: { durable?: boolean } = {}): Promise<HashedFile> {
    return new HashedFile(path, await open(path, 'wx'), options.durable ?? true)
  }

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#append([chunk]).then(() => callback(), callback)
  }

  override _writev(chunks: { chunk: Buffer | string }[], callback: (error?: Error | null) => void): void {
    this.#append(chunks.map((c) => c.chunk)).then(() => callback(), callback)
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#flushScratch().then(() => callback(), callback)
  }

  /** Text is encoded into the scratch buffer, which goes to disk (and the hash) when full and at the end: few large writes. */
  async #append(chunks: (Buffer | string)[]): Promise<void> {
    for (const chunk of chunks) {
      if (typeof chunk !== 'string') {
        await this.#flushScratch()
        await this.#output(chunk)
        continue
      }
      let text = chunk
      while (text.length > 0) {
        const { read, written } = encoder.encodeInto(text, this.#scratch.subarray(this.#fill))
        this.#fill += written
        text = text.slice(read)
        if (text.length > 0) await this.#flushScratch()
      }
    }
  }

  async #flushScratch(): Promise<void> {
    if (this.#fill === 0) return
    const data = this.#scratch.subarray(0, this.#fill)
    this.#fill = 0
    await this.#output(data)
  }

  async #output(data: Buffer): Promise<void> {
    if (this.#syncFailure !== undefined) throw this.#syncFailure
    this.#hash.update(data)
    this.#size += data.length
    let offset = 0
    while (offset < data.length) {
      const { bytesWritten } = await this.#handle.write(data, offset, data.length - offset, null)
      offset += bytesWritten
    }
    // A durable file is flushed to disk as it grows, while the writing goes on, so that commit's
    // fsync only waits for the last part (export.sql of 1M dossiers: 0.5 s of fsync at the end).
    this.#unsynced += data.length
    if (this.#durable && this.#unsynced >= SYNC_BEHIND_BYTES && this.#syncing === undefined) {
      this.#unsynced = 0
      // Its failure is kept: the kernel reports a write-back error to one sync only, so commit's fsync may not see it.
      this.#syncing = this.#handle.datasync().then(
        () => {
          this.#syncing = undefined
        },
        (error: Error) => {
          this.#syncFailure ??= error
          this.#syncing = undefined
        },
      )
    }
  }

  get bytesWritten(): number {
    return this.#size
  }

  /** Ends the stream, fsyncs (when durable) and closes the file; returns its size and SHA-256. */
  async commit(): Promise<WrittenFile> {
    if (this.errored) throw this.errored
    await new Promise<void>((resolve, reject) => {
      this.end((error?: Error | null) => (error ? reject(error) : resolve()))
    })
    if (this.errored) throw this.errored
    await this.#syncing
    if (this.#syncFailure !== undefined) throw this.#syncFailure
    if (this.#durable) await this.#handle.sync()
    await this.#handle.close()
    return { size: this.#size, sha256: this.#hash.digest('hex') }
  }

  /** Closes the file after a failure (the caller removes it). */
  async abort(): Promise<void> {
    this.destroy()
    await this.#syncing
    await this.#handle.close().catch(() => {})
  }
}

/** Characters per batch a TextSink hands to its stream (see `full`). */
export const BATCH_CHARACTERS = 16 * 1024

/**
 * Writes text to a stream in batches of ~16 Ki characters, waiting when the stream asks to (backpressure):
 * what lets a synchronous row source share the event loop with the archive writer.
 */
export class TextSink {
  #out: Writable
  #pending: string[] = []
  #pendingLength = 0
  #counting: boolean
  #flushedBytes = 0
  /** How many of the pending strings `bytes` has measured already, and their UTF-8 bytes: each string is measured once. */
  #measuredCount = 0
  #measuredBytes = 0

  /** `countBytes`: keep `bytes` (costs the UTF-8 length of every string pushed, so only for who asks). */
  constructor(out: Writable, options: { countBytes?: boolean } = {}) {
    this.#out = out
    this.#counting = options.countBytes ?? false
  }

  /** UTF-8 bytes pushed so far: the file offset where the next push starts (needs `countBytes`). */
  get bytes(): number {
    if (!this.#counting) throw new Error('TextSink built without countBytes')
    for (; this.#measuredCount < this.#pending.length; this.#measuredCount++) this.#measuredBytes += Buffer.byteLength(this.#pending[this.#measuredCount]!)
    return this.#flushedBytes + this.#measuredBytes
  }

  /** Queues text; await `flush()` whenever `full`. */
  push(text: string): void {
    this.#pending.push(text)
    this.#pendingLength += text.length
  }

  /**
   * A batch ends once it holds BATCH_CHARACTERS: it is joined into one string, and text with a character
   * past U+00FF (’, common in French) makes it a two-byte string; past 128 KB V8 maps each such string
   * in its own memory and unmaps it on the next GC, a munmap that stops every thread of the process.
   * Measured with 64 Ki batches on 1M dossiers (28 % with a ’): 17,162 munmaps, 4.2 s of system time,
   * data.json export 12.0 s; with 16 Ki: 177 munmaps in the whole export, 7.0 s.
   */
  get full(): boolean {
    return this.#pendingLength >= BATCH_CHARACTERS
  }

  async flush(): Promise<void> {
    if (this.#out.errored) throw this.#out.errored
    if (this.#pending.length === 0) return
    if (this.#counting) {
      this.#flushedBytes = this.bytes
      this.#measuredCount = 0
      this.#measuredBytes = 0
    }
    const text = this.#pending.join('')
    this.#pending = []
    this.#pendingLength = 0
    await this.#write(text)
  }

  /** Writes `bytes` after the text pushed so far (already UTF-8, such as the chunks SQLite formats: engines/sqlite/export-format.ts). */
  async writeBytes(bytes: Buffer): Promise<void> {
    await this.flush()
    if (this.#counting) this.#flushedBytes += bytes.length
    await this.#write(bytes)
  }

  async #write(data: string | Buffer): Promise<void> {
    if (!this.#out.write(data)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => (this.#out.off('error', onError), resolve())
        const onError = (error: Error) => (this.#out.off('drain', onDrain), reject(error))
        this.#out.once('drain', onDrain)
        this.#out.once('error', onError)
      })
    }
    if (this.#out.errored) throw this.#out.errored
  }
}
