/**
 * A small JSON value kept secret in the plaintext metadata of an encrypted backup (the sidecar a
 * tenant restore reads before any archive byte): AES-256-GCM under a key derived from the backup's
 * data key for one `purpose` (HKDF-SHA-256, so it never shares a nonce space with the archive's
 * chunks), bound to `context` (the backup id: a sealed value moved to another backup does not open).
 * Text form: base64 of nonce (12 bytes) ‖ tag (16) ‖ ciphertext.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { ToolkitError } from '../errors.ts'

const NONCE_SIZE = 12
const TAG_SIZE = 16

function purposeKey(dataKey: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', dataKey, Buffer.alloc(0), `ipm-backup ${purpose}`, 32))
}

/** @example metadata.tenantIndex.sealedTenants = sealValue(tenants, dataKey, 'tenant-index', id) */
export function sealValue(value: unknown, dataKey: Buffer, purpose: string, context: string): string {
  const key = purposeKey(dataKey, purpose)
  const nonce = randomBytes(NONCE_SIZE)
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  cipher.setAAD(Buffer.from(context, 'utf8'))
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()])
  key.fill(0)
  return Buffer.concat([nonce, cipher.getAuthTag(), ciphertext]).toString('base64')
}

/**
 * The value `sealValue` sealed, once its tag is checked; a `ToolkitError` (naming `what`, never a
 * key) when it was changed, moved from another backup or sealed under another key.
 * @example const tenants = openSealedValue(index.sealedTenants, dataKey, 'tenant-index', metadata.id, "l'index des cabinets")
 */
export function openSealedValue(sealed: string, dataKey: Buffer, purpose: string, context: string, what: string): unknown {
  const bytes = Buffer.from(sealed, 'base64')
  if (bytes.length < NONCE_SIZE + TAG_SIZE) throw new ToolkitError(`${what} chiffré est tronqué (${bytes.length} octets)`, { hint: 'Les métadonnées du backup ont été modifiées : lancez `advanced-backup verify <id>`.' })
  const key = purposeKey(dataKey, purpose)
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, NONCE_SIZE))
    decipher.setAAD(Buffer.from(context, 'utf8'))
    decipher.setAuthTag(bytes.subarray(NONCE_SIZE, NONCE_SIZE + TAG_SIZE))
    const plain = Buffer.concat([decipher.update(bytes.subarray(NONCE_SIZE + TAG_SIZE)), decipher.final()])
    return JSON.parse(plain.toString('utf8'))
  } catch (error) {
    throw new ToolkitError(`${what} chiffré ne s’ouvre pas : authentification échouée (modifié, venu d’un autre backup, ou autre clé)`, { hint: 'Lancez `advanced-backup verify <id>` ; restaurez depuis une autre sauvegarde.', cause: error })
  } finally {
    key.fill(0)
  }
}
