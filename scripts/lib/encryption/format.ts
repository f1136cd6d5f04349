/**
 * The encrypted stream format (docs/ENCRYPTION_FORMAT.md is the reference; keep the two in step).
 *
 *   header (16 bytes)  = magic "IPMBKENC" ∥ version 0x01 ∥ log2(chunk size) 0x10 ∥ 0x00 0x00 ∥ nonce prefix (4 random bytes)
 *   chunk i (i = 0, 1…) = AES-256-GCM(data key, nonce = prefix ∥ uint64be(i), aad = header ∥ last) ciphertext ∥ 16-byte tag
 *
 * Every chunk but the last holds exactly CHUNK_SIZE plaintext bytes; the last holds 0..CHUNK_SIZE and
 * is the only one sealed with last = 0x01, so a stream cut at a chunk boundary, or with bytes
 * appended, fails its final tag. An empty plaintext is one last chunk of 0 bytes (the tag alone).
 */

export const MAGIC = Buffer.from('IPMBKENC', 'ascii')
export const FORMAT_VERSION = 1
export const CHUNK_SIZE_LOG2 = 16
/** Plaintext bytes per chunk (64 KiB). */
export const CHUNK_SIZE = 1 << CHUNK_SIZE_LOG2
export const TAG_SIZE = 16
export const NONCE_PREFIX_SIZE = 4
export const HEADER_SIZE = MAGIC.length + 4 + NONCE_PREFIX_SIZE
/** Ciphertext bytes of a full chunk. */
export const SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
/** The cipher's name in a wrapped-key record and in the documentation. */
export const STREAM_CIPHER = 'aes-256-gcm-chunked-64k'
/** GCM allows 2^32 invocations of a key with random-prefix nonces before the bound matters; stop far below. */
export const MAX_CHUNKS = 2 ** 32

/** The header of a new stream, with its nonce prefix. */
export function encodeHeader(noncePrefix: Buffer): Buffer {
  return Buffer.concat([MAGIC, Buffer.from([FORMAT_VERSION, CHUNK_SIZE_LOG2, 0, 0]), noncePrefix])
}

/** The header's nonce prefix, or the reason it is not a header this version reads. */
export function decodeHeader(header: Buffer): { noncePrefix: Buffer } | { problem: string } {
  if (header.length < HEADER_SIZE || !header.subarray(0, MAGIC.length).equals(MAGIC)) return { problem: 'ce fichier n’est pas une sauvegarde chiffrée par cet outil' }
  const [version, chunkLog2, reserved1, reserved2] = header.subarray(MAGIC.length, MAGIC.length + 4)
  if (version !== FORMAT_VERSION) return { problem: `version de chiffrement ${version} inconnue (cet outil lit la version ${FORMAT_VERSION})` }
  if (chunkLog2 !== CHUNK_SIZE_LOG2 || reserved1 !== 0 || reserved2 !== 0) return { problem: 'en-tête de chiffrement invalide' }
  return { noncePrefix: header.subarray(MAGIC.length + 4, HEADER_SIZE) }
}

/** The nonce of chunk `index`: the stream's prefix ∥ the index as a 64-bit big-endian counter. */
export function chunkNonce(noncePrefix: Buffer, index: number): Buffer {
  const nonce = Buffer.alloc(NONCE_PREFIX_SIZE + 8)
  noncePrefix.copy(nonce, 0)
  nonce.writeBigUInt64BE(BigInt(index), NONCE_PREFIX_SIZE)
  return nonce
}

/** The associated data of a chunk: the whole header, then 0x01 for the last chunk and 0x00 otherwise. */
export function chunkAad(header: Buffer, last: boolean): Buffer {
  return Buffer.concat([header, Buffer.from([last ? 1 : 0])])
}

/**
 * Ciphertext size of a plaintext of `plainSize` bytes (to announce an upload's size in advance).
 * @example encryptedSize(0) === 32 // header + the empty last chunk's tag
 */
export function encryptedSize(plainSize: number): number {
  const chunks = Math.max(1, Math.ceil(plainSize / CHUNK_SIZE))
  return HEADER_SIZE + chunks * TAG_SIZE + plainSize
}
