/**
 * Encrypting and decrypting streams in the chunked format of format.ts.
 * Invariant: the decrypting stream pushes a chunk's plaintext only after that chunk's GCM tag has
 * been checked (`final()` succeeded), and it knows a chunk is the last only at the end of its
 * input, so nothing of a truncated, reordered, altered or extended stream passes unchecked.
 * Memory: one chunk (64 KiB) of buffer on each side, whatever the stream's size.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { ToolkitError } from '../errors.ts'
import { CHUNK_SIZE, HEADER_SIZE, MAX_CHUNKS, NONCE_PREFIX_SIZE, SEALED_CHUNK_SIZE, TAG_SIZE, chunkAad, chunkNonce, decodeHeader, encodeHeader } from './format.ts'

const DATA_KEY_SIZE = 32

function checkDataKey(dataKey: Buffer): void {
  if (dataKey.length !== DATA_KEY_SIZE) throw new ToolkitError('clé de données invalide (32 octets attendus)', { hint: 'la clé de données vient de unwrapDataKey() ou createDataKey()' })
}

function tooLong(): ToolkitError {
  return new ToolkitError('flux trop long pour un seul chiffrement (plus de 2^32 blocs de 64 Kio)', { hint: 'découpez la sauvegarde en plusieurs archives' })
}

function refused(index: number, why: string): ToolkitError {
  return new ToolkitError(`déchiffrement refusé au bloc ${index} : ${why}`, {
    hint: 'la sauvegarde chiffrée est tronquée, modifiée ou ne correspond pas à cette clé ; restaurez une autre copie',
  })
}

/**
 * The last chunk of the stream is marked as such, so a full chunk is handed over only once a
 * further byte proves it is not the last: this holds the chunk being filled until then.
 */
class HeldChunk {
  readonly buffer: Buffer
  fill = 0

  constructor(size: number) {
    this.buffer = Buffer.alloc(size)
  }

  /** Copies `chunk` from `offset` in; `onFull` takes (and empties) each full chunk that more bytes follow. */
  push(chunk: Buffer, offset: number, onFull: () => void): void {
    while (offset < chunk.length) {
      if (this.fill === this.buffer.length) onFull()
      const copied = chunk.copy(this.buffer, this.fill, offset)
      this.fill += copied
      offset += copied
    }
  }

  /** The bytes held so far. */
  get bytes(): Buffer {
    return this.buffer.subarray(0, this.fill)
  }
}

class EncryptStream extends Transform {
  readonly #dataKey: Buffer
  readonly #header: Buffer
  readonly #noncePrefix: Buffer
  readonly #pending = new HeldChunk(CHUNK_SIZE)
  #index = 0
  #headerSent = false

  constructor(dataKey: Buffer) {
    super()
    this.#dataKey = dataKey
    this.#noncePrefix = randomBytes(NONCE_PREFIX_SIZE)
    this.#header = encodeHeader(this.#noncePrefix)
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#sendHeader()
      this.#pending.push(chunk, 0, () => this.#seal(false))
      callback()
    } catch (error) {
      callback(error as Error)
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.#sendHeader()
      this.#seal(true)
      this.#pending.buffer.fill(0)
      callback()
    } catch (error) {
      callback(error as Error)
    }
  }

  #sendHeader(): void {
    if (this.#headerSent) return
    this.#headerSent = true
    this.push(Buffer.from(this.#header))
  }

  #seal(last: boolean): void {
    if (this.#index >= MAX_CHUNKS) throw tooLong()
    const cipher = createCipheriv('aes-256-gcm', this.#dataKey, chunkNonce(this.#noncePrefix, this.#index), { authTagLength: TAG_SIZE })
    cipher.setAAD(chunkAad(this.#header, last))
    const body = cipher.update(this.#pending.bytes)
    const final = cipher.final()
    this.push(Buffer.concat([body, final, cipher.getAuthTag()]))
    this.#index += 1
    this.#pending.fill = 0
  }
}

class DecryptStream extends Transform {
  readonly #dataKey: Buffer
  readonly #header = Buffer.alloc(HEADER_SIZE)
  #headerFill = 0
  #noncePrefix: Buffer | undefined
  readonly #sealed = new HeldChunk(SEALED_CHUNK_SIZE)
  #index = 0

  constructor(dataKey: Buffer) {
    super()
    this.#dataKey = dataKey
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      let offset = 0
      if (this.#noncePrefix === undefined) {
        offset = chunk.copy(this.#header, this.#headerFill, 0, HEADER_SIZE - this.#headerFill)
        this.#headerFill += offset
        if (this.#headerFill < HEADER_SIZE) return callback()
        const decoded = decodeHeader(this.#header)
        if ('problem' in decoded) throw new ToolkitError(`déchiffrement refusé : ${decoded.problem}`, { hint: 'vérifiez que ce fichier est bien l’archive chiffrée de cette sauvegarde' })
        this.#noncePrefix = decoded.noncePrefix
      }
      this.#sealed.push(chunk, offset, () => this.#open(false))
      callback()
    } catch (error) {
      callback(error as Error)
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (this.#noncePrefix === undefined) throw refused(0, 'en-tête incomplet (fichier tronqué)')
      if (this.#sealed.fill < TAG_SIZE) throw refused(this.#index, 'le dernier bloc manque (fichier tronqué)')
      this.#open(true)
      callback()
    } catch (error) {
      callback(error as Error)
    }
  }

  #open(last: boolean): void {
    this.push(openChunk(this.#dataKey, this.#header, this.#noncePrefix!, this.#index, last, this.#sealed.bytes))
    this.#index += 1
    this.#sealed.fill = 0
  }
}

/** The plaintext of sealed chunk `index` (ciphertext ∥ tag), returned only once its tag is checked. */
function openChunk(dataKey: Buffer, header: Buffer, noncePrefix: Buffer, index: number, last: boolean, sealed: Buffer): Buffer {
  if (index >= MAX_CHUNKS) throw tooLong()
  const decipher = createDecipheriv('aes-256-gcm', dataKey, chunkNonce(noncePrefix, index), { authTagLength: TAG_SIZE })
  decipher.setAAD(chunkAad(header, last))
  decipher.setAuthTag(sealed.subarray(-TAG_SIZE))
  const plaintext = decipher.update(sealed.subarray(0, -TAG_SIZE))
  try {
    decipher.final()
  } catch {
    plaintext.fill(0)
    throw refused(index, 'authentification échouée (octets modifiés, blocs déplacés, tronqués ou ajoutés, ou mauvaise clé)')
  }
  return plaintext
}

/**
 * Random access to an encrypted stream of `plainSize` plaintext bytes: `read(offset, length)` gives
 * stored (ciphertext) bytes; the reader returned gives plaintext bytes, decrypting only the chunks that
 * cover them, each tag checked (with its index and last flag) before any of its plaintext is returned.
 * @example const plain = decryptingRangeReader((o, n) => store.readArchiveRange(entry, o, n), dataKey, metadata.archive.size); await plain(5_000_000, 65_536)
 */
export function decryptingRangeReader(read: (offset: number, length: number) => Promise<Buffer>, dataKey: Buffer, plainSize: number): (offset: number, length: number) => Promise<Buffer> {
  checkDataKey(dataKey)
  const lastChunk = Math.max(0, Math.ceil(plainSize / CHUNK_SIZE) - 1)
  let opened: Promise<{ header: Buffer; noncePrefix: Buffer }> | undefined
  const open = async () => {
    const header = await read(0, HEADER_SIZE)
    const decoded = decodeHeader(header)
    if ('problem' in decoded) throw new ToolkitError(`déchiffrement refusé : ${decoded.problem}`, { hint: 'vérifiez que ce fichier est bien l’archive chiffrée de cette sauvegarde' })
    return { header, noncePrefix: decoded.noncePrefix }
  }
  return async (offset, length) => {
    if (length === 0) return Buffer.alloc(0)
    const end = Math.min(offset + length, plainSize)
    if (offset < 0 || offset >= end) throw new ToolkitError(`plage ${offset}+${length} hors de l’archive chiffrée (${plainSize} octets en clair)`)
    const { header, noncePrefix } = await (opened ??= open())
    const [first, last] = [Math.floor(offset / CHUNK_SIZE), Math.floor((end - 1) / CHUNK_SIZE)]
    const sealedEnd = Math.min(HEADER_SIZE + (last + 1) * SEALED_CHUNK_SIZE, HEADER_SIZE + plainSize + (lastChunk + 1) * TAG_SIZE)
    const sealed = await read(HEADER_SIZE + first * SEALED_CHUNK_SIZE, sealedEnd - HEADER_SIZE - first * SEALED_CHUNK_SIZE)
    const parts: Buffer[] = []
    for (let index = first; index <= last; index++) {
      const at = (index - first) * SEALED_CHUNK_SIZE
      const chunk = sealed.subarray(at, Math.min(at + SEALED_CHUNK_SIZE, sealed.length))
      if (chunk.length < TAG_SIZE) throw refused(index, 'le bloc manque (fichier tronqué)')
      parts.push(openChunk(dataKey, header, noncePrefix, index, index === lastChunk, chunk))
    }
    const plain = Buffer.concat(parts)
    return plain.subarray(offset - first * CHUNK_SIZE, end - first * CHUNK_SIZE)
  }
}

/**
 * A Transform that encrypts its input with a data key (from createDataKey) into the chunked format.
 * @example await pipeline(createReadStream('backup.tar.gz'), createEncryptStream(dataKey), createWriteStream('backup.tar.gz.enc'))
 */
export function createEncryptStream(dataKey: Buffer): Transform {
  checkDataKey(dataKey)
  return new EncryptStream(dataKey)
}

/**
 * A Transform that decrypts the chunked format and fails (a ToolkitError) on any truncation,
 * reordering, altered byte, appended byte or wrong key, before the affected chunk's plaintext is emitted.
 * @example await pipeline(await storage.get(key), createDecryptStream(dataKey), createWriteStream(target))
 */
export function createDecryptStream(dataKey: Buffer): Transform {
  checkDataKey(dataKey)
  return new DecryptStream(dataKey)
}
