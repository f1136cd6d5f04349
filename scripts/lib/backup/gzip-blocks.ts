/**
 * Gzip on every core: the stream is cut into blocks of BLOCK_SIZE bytes, each compressed by a
 * worker thread into its own gzip member, and the members are written in order. A file of
 * concatenated members is plain gzip (RFC 1952 §2.2): `gzip -d`, `tar -xzf` and zlib read it as one
 * stream. Each member's header carries an extra field (FEXTRA, subfield "IP", like BGZF's "BC")
 * holding the member's total length, so our own reader can find the members without inflating
 * and inflate them in parallel too; anything without it is read as ordinary gzip, in one thread.
 */
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'

export const BLOCK_SIZE = 4 << 20
export const COMPRESSION_LEVEL = 6

// Plain JavaScript, evaluated as the worker: no TypeScript loader is needed inside the thread.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const zlib = require('node:zlib')
parentPort.on('message', ({ id, op, data, level }) => {
  try {
    const input = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    let output
    if (op === 'gzip') {
      const z = zlib.gzipSync(input, { level })
      // Insert FEXTRA after the 10-byte header: XLEN=8, SI1='I', SI2='P', LEN=4, u32 member length.
      output = Buffer.allocUnsafeSlow(z.length + 10)
      z.copy(output, 0, 0, 10)
      output[3] |= 4
      output.writeUInt16LE(8, 10)
      output[12] = 0x49
      output[13] = 0x50
      output.writeUInt16LE(4, 14)
      output.writeUInt32LE(z.length + 10, 16)
      z.copy(output, 20, 10)
    } else {
      output = zlib.gunzipSync(input)
    }
    // Transfer only a buffer that owns its whole memory (never a slice of a shared pool).
    const own = output.byteOffset === 0 && output.byteLength === output.buffer.byteLength
    parentPort.postMessage({ id, data: output }, own ? [output.buffer] : [])
  } catch (error) {
    parentPort.postMessage({ id, error: String(error && error.message || error) })
  }
})
`

interface Pending {
  resolve(data: Buffer): void
  reject(error: Error): void
}

/** A fixed set of worker threads that gzip or gunzip whole blocks. */
export class GzipPool {
  #workers: Worker[] = []
  #idle: Worker[] = []
  #queue: { op: 'gzip' | 'gunzip'; data: Buffer; pending: Pending }[] = []
  #pending = new Map<number, Pending>()
  #busy = new Map<Worker, number>()
  #nextId = 0
  #failure: Error | undefined
  readonly size: number
  readonly level: number

  constructor(options: { threads?: number; level?: number } = {}) {
    this.size = Math.max(1, options.threads ?? availableParallelism())
    this.level = options.level ?? COMPRESSION_LEVEL
    for (let i = 0; i < this.size; i++) {
      const worker = new Worker(WORKER_SOURCE, { eval: true })
      worker.on('message', (message: { id: number; data?: Uint8Array; error?: string }) => this.#settle(worker, message))
      worker.on('error', (error) => this.#fail(error))
      // Idle workers do not keep the process alive; busy ones do (see #dispatch / #settle).
      worker.unref()
      this.#workers.push(worker)
      this.#idle.push(worker)
    }
  }

  /** One gzip member (with its length in FEXTRA) of `data`. */
  gzip(data: Buffer): Promise<Buffer> {
    return this.#submit('gzip', data)
  }

  /** The bytes of one gzip member. */
  gunzip(data: Buffer): Promise<Buffer> {
    return this.#submit('gunzip', data)
  }

  #submit(op: 'gzip' | 'gunzip', data: Buffer): Promise<Buffer> {
    if (this.#failure) return Promise.reject(this.#failure)
    return new Promise((resolve, reject) => {
      this.#queue.push({ op, data, pending: { resolve, reject } })
      this.#dispatch()
    })
  }

  #dispatch(): void {
    while (this.#idle.length > 0 && this.#queue.length > 0) {
      const worker = this.#idle.pop()!
      const job = this.#queue.shift()!
      const id = this.#nextId++
      this.#pending.set(id, job.pending)
      this.#busy.set(worker, id)
      worker.ref()
      // A block that owns its memory moves to the worker without a copy (the caller drops it).
      const own = job.data.byteOffset === 0 && job.data.byteLength === job.data.buffer.byteLength
      worker.postMessage({ id, op: job.op, data: job.data, level: this.level }, own ? [job.data.buffer as ArrayBuffer] : [])
    }
  }

  #settle(worker: Worker, message: { id: number; data?: Uint8Array; error?: string }): void {
    const pending = this.#pending.get(message.id)
    this.#pending.delete(message.id)
    this.#busy.delete(worker)
    worker.unref()
    this.#idle.push(worker)
    if (message.error !== undefined || message.data === undefined) pending?.reject(new Error(message.error ?? 'no data'))
    else pending?.resolve(Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength))
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

/** The length of the gzip member starting at `data[offset]` when it carries our FEXTRA; else undefined. */
export function blockLength(data: Buffer, offset: number): number | undefined {
  if (data.length - offset < 20) return undefined
  if (data[offset] !== 0x1f || data[offset + 1] !== 0x8b || data[offset + 2] !== 8 || (data[offset + 3]! & 4) === 0) return undefined
  if (data.readUInt16LE(offset + 10) !== 8 || data[offset + 12] !== 0x49 || data[offset + 13] !== 0x50 || data.readUInt16LE(offset + 14) !== 4) return undefined
  const length = data.readUInt32LE(offset + 16)
  return length >= 38 ? length : undefined
}
