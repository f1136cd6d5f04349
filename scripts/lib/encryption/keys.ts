/**
 * Keys: where the key-encryption key (KEK) comes from, and the per-backup data key wrapped by it.
 *
 * A backup's data key is 32 random bytes, used only by streams.ts. It is stored wrapped
 * (AES-256-GCM under the KEK) in a WrappedKeyRecord beside the backup's metadata, with the KEK's id,
 * so `rekey` re-wraps 60 bytes and never touches archive data. The KEK is a 32-byte key (a key file or
 * BACKUP_ENCRYPTION_KEY, base64) or is derived from BACKUP_PASSPHRASE by scrypt with a random salt
 * kept in the record. No key, passphrase or data key ever enters an error message.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, scrypt as scryptCallback, type ScryptOptions } from 'node:crypto'
import { closeSync, fsyncSync, linkSync, lstatSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { ToolkitError, USAGE_EXIT_CODE } from '../errors.ts'
import { fsyncPath, temporaryPathFor } from '../fs/atomic.ts'
import { STREAM_CIPHER } from './format.ts'

const KEY_SIZE = 32
const WRAP_NONCE_SIZE = 12
const TAG_SIZE = 16
const SALT_SIZE = 16
const KEY_BASE64 = /^[A-Za-z0-9+/]{43}=$/

/** scrypt's cost parameters; recorded in each passphrase record, so they can change without breaking old backups. */
export interface ScryptCost {
  N: number
  r: number
  p: number
}

/** 2^17 × 8 × 128 bytes = 128 MiB and ~0.3 s per derivation: OWASP's recommendation for scrypt. */
export const DEFAULT_SCRYPT_COST: ScryptCost = { N: 2 ** 17, r: 8, p: 1 }

/** Where the key-encryption key comes from. `origin` names it for messages (never its value). */
export type KeySource = { kind: 'key'; key: Buffer; origin: string } | { kind: 'passphrase'; passphrase: string; origin: string }

/** The wrapped data key of one backup (JSON-safe: store it in the backup's metadata). */
export interface WrappedKeyRecord {
  version: 1
  /** The data stream's format (format.ts). */
  cipher: typeof STREAM_CIPHER
  /** First 8 bytes of SHA-256(KEK), hex: tells which key opens this backup without revealing it. */
  kekId: string
  /** How the KEK was derived from a passphrase; null when the KEK is a key. */
  kdf: ({ name: 'scrypt'; salt: string } & ScryptCost) | null
  /** The data key sealed by AES-256-GCM under the KEK; base64 fields; aad = "IPMBKENC/1/" ∥ kekId. */
  wrap: { algorithm: 'aes-256-gcm'; nonce: string; ciphertext: string; tag: string }
}

/** The explicit inputs of resolveKeySource: the caller reads the environment, not this module. */
export interface KeyInputs {
  env: { BACKUP_ENCRYPTION_KEY?: string | undefined; BACKUP_PASSPHRASE?: string | undefined }
  keyFile?: string | undefined
}

/** The id of a 32-byte KEK: first 8 bytes of its SHA-256, hex. */
export function keyIdOf(kek: Buffer): string {
  return createHash('sha256').update(kek).digest('hex').slice(0, 16)
}

function parseKey(text: string, origin: string): Buffer {
  const trimmed = text.trim()
  if (!KEY_BASE64.test(trimmed)) {
    throw new ToolkitError(`${origin} ne contient pas une clé valide (32 octets en base64 attendus)`, {
      hint: 'générez une clé avec « advanced-backup keygen --key-file <chemin> » ou « openssl rand -base64 32 »',
      exitCode: USAGE_EXIT_CODE,
    })
  }
  return Buffer.from(trimmed, 'base64')
}

/**
 * Reads a key file: a regular file (not a link), readable by its owner only, holding 32 bytes in base64.
 * A key source that cannot be used is a usage error (exit 2): refused before any operation starts.
 * @example const source = readKeyFile('/etc/ipm/backup.key')
 */
export function readKeyFile(path: string): KeySource {
  const origin = `le fichier de clé ${path}`
  let stats
  try {
    stats = lstatSync(path)
  } catch (error) {
    throw new ToolkitError(`${origin} est introuvable`, { hint: 'vérifiez --key-file, ou créez la clé avec « advanced-backup keygen --key-file <chemin> »', cause: error, exitCode: USAGE_EXIT_CODE })
  }
  if (!stats.isFile()) throw new ToolkitError(`${origin} n’est pas un fichier ordinaire`, { hint: 'indiquez le fichier de clé lui-même, pas un lien ni un dossier', exitCode: USAGE_EXIT_CODE })
  if ((stats.mode & 0o077) !== 0) throw new ToolkitError(`${origin} est lisible par d’autres utilisateurs (mode ${(stats.mode & 0o777).toString(8)})`, { hint: `chmod 600 ${path}`, exitCode: USAGE_EXIT_CODE })
  return { kind: 'key', key: parseKey(readFileSync(path, 'utf8'), origin), origin }
}

/**
 * The KEK named by the inputs, or undefined when none is given. More than one source is refused
 * rather than guessed.
 * @example const source = resolveKeySource({ env: { BACKUP_ENCRYPTION_KEY: env.BACKUP_ENCRYPTION_KEY, BACKUP_PASSPHRASE: env.BACKUP_PASSPHRASE }, keyFile: options.keyFile })
 */
export function resolveKeySource(inputs: KeyInputs): KeySource | undefined {
  const given = [
    inputs.keyFile !== undefined && inputs.keyFile !== '' ? '--key-file' : undefined,
    inputs.env.BACKUP_ENCRYPTION_KEY ? 'BACKUP_ENCRYPTION_KEY' : undefined,
    inputs.env.BACKUP_PASSPHRASE ? 'BACKUP_PASSPHRASE' : undefined,
  ].filter((name) => name !== undefined)
  if (given.length > 1) throw new ToolkitError(`plusieurs clés de chiffrement sont fournies (${given.join(', ')})`, { hint: 'gardez une seule source de clé', exitCode: USAGE_EXIT_CODE })
  if (inputs.keyFile) return readKeyFile(inputs.keyFile)
  if (inputs.env.BACKUP_ENCRYPTION_KEY) return { kind: 'key', key: parseKey(inputs.env.BACKUP_ENCRYPTION_KEY, 'BACKUP_ENCRYPTION_KEY'), origin: 'BACKUP_ENCRYPTION_KEY' }
  if (inputs.env.BACKUP_PASSPHRASE) return { kind: 'passphrase', passphrase: inputs.env.BACKUP_PASSPHRASE, origin: 'BACKUP_PASSPHRASE' }
  return undefined
}

/**
 * Writes a new random key to `path` (base64 and a newline, mode 0600), atomically, refusing to
 * replace an existing file: a lost key is every backup made with it lost.
 * @example const { keyId } = generateKeyFile('/etc/ipm/backup.key')
 */
export function generateKeyFile(path: string): { path: string; keyId: string } {
  const key = randomBytes(KEY_SIZE)
  const temporary = temporaryPathFor(path)
  try {
    const fd = openSync(temporary, 'wx', 0o600)
    try {
      writeSync(fd, `${key.toString('base64')}\n`)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    // link() fails when the target exists, where rename() would silently replace it.
    linkSync(temporary, path)
    fsyncPath(dirname(path))
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EEXIST') throw new ToolkitError(`le fichier de clé ${path} existe déjà`, { hint: 'choisissez un autre chemin ; remplacer une clé rendrait illisibles les sauvegardes faites avec elle' })
    throw new ToolkitError(`impossible d’écrire le fichier de clé ${path}`, { hint: 'vérifiez que le dossier existe et est accessible en écriture', cause: error })
  } finally {
    rmSync(temporary, { force: true })
  }
  return { path, keyId: keyIdOf(key) }
}

function scrypt(passphrase: string, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
  const options: ScryptOptions = { ...cost, maxmem: 256 * cost.N * cost.r + 1024 * 1024 }
  return new Promise((resolve, reject) =>
    scryptCallback(passphrase.normalize('NFC'), salt, KEY_SIZE, options, (error, key) =>
      error ? reject(new ToolkitError('dérivation de la phrase de passe impossible (paramètres scrypt refusés)', { hint: 'la fiche de clé de cette sauvegarde est peut-être altérée' })) : resolve(key),
    ),
  )
}

function wrapAad(kekId: string): Buffer {
  return Buffer.from(`IPMBKENC/1/${kekId}`, 'ascii')
}

function seal(dataKey: Buffer, kek: Buffer, kdf: WrappedKeyRecord['kdf']): WrappedKeyRecord {
  const kekId = keyIdOf(kek)
  const nonce = randomBytes(WRAP_NONCE_SIZE)
  const cipher = createCipheriv('aes-256-gcm', kek, nonce, { authTagLength: TAG_SIZE })
  cipher.setAAD(wrapAad(kekId))
  const ciphertext = Buffer.concat([cipher.update(dataKey), cipher.final()])
  return {
    version: 1,
    cipher: STREAM_CIPHER,
    kekId,
    kdf,
    wrap: { algorithm: 'aes-256-gcm', nonce: nonce.toString('base64'), ciphertext: ciphertext.toString('base64'), tag: cipher.getAuthTag().toString('base64') },
  }
}

/** The KEK of `source` for a new record (a fresh salt for a passphrase). */
async function newKek(source: KeySource, cost: ScryptCost): Promise<{ kek: Buffer; kdf: WrappedKeyRecord['kdf'] }> {
  if (source.kind === 'key') return { kek: source.key, kdf: null }
  const salt = randomBytes(SALT_SIZE)
  return { kek: await scrypt(source.passphrase, salt, cost), kdf: { name: 'scrypt', salt: salt.toString('base64'), ...cost } }
}

/**
 * A fresh random data key for one backup, and its record wrapped under `source`.
 * @example const { dataKey, record } = await createDataKey(source); metadata.encryption = record
 */
export async function createDataKey(source: KeySource, options: { scryptCost?: ScryptCost } = {}): Promise<{ dataKey: Buffer; record: WrappedKeyRecord }> {
  const dataKey = randomBytes(KEY_SIZE)
  const { kek, kdf } = await newKek(source, options.scryptCost ?? DEFAULT_SCRYPT_COST)
  return { dataKey, record: seal(dataKey, kek, kdf) }
}

/** Checks that a value read from metadata is a WrappedKeyRecord this version understands. */
export function parseWrappedKeyRecord(value: unknown): WrappedKeyRecord {
  const bad = (why: string) => new ToolkitError(`fiche de clé de la sauvegarde invalide : ${why}`, { hint: 'la métadonnée de chiffrement est altérée ou vient d’une autre version de l’outil' })
  if (typeof value !== 'object' || value === null) throw bad('objet attendu')
  const record = value as Partial<WrappedKeyRecord>
  if (record.version !== 1) throw bad(`version ${String(record.version)} inconnue`)
  if (record.cipher !== STREAM_CIPHER) throw bad(`chiffrement ${String(record.cipher)} inconnu`)
  if (typeof record.kekId !== 'string' || !/^[0-9a-f]{16}$/.test(record.kekId)) throw bad('identifiant de clé invalide')
  const wrap = record.wrap
  const isBase64 = (text: unknown, bytes: number) => typeof text === 'string' && Buffer.from(text, 'base64').length === bytes && Buffer.from(text, 'base64').toString('base64') === text
  if (!wrap || wrap.algorithm !== 'aes-256-gcm' || !isBase64(wrap.nonce, WRAP_NONCE_SIZE) || !isBase64(wrap.ciphertext, KEY_SIZE) || !isBase64(wrap.tag, TAG_SIZE)) throw bad('clé enveloppée invalide')
  const kdf = record.kdf
  if (kdf !== null) {
    const integer = (n: unknown, max: number) => Number.isSafeInteger(n) && (n as number) >= 1 && (n as number) <= max
    if (!kdf || kdf.name !== 'scrypt' || !isBase64(kdf.salt, SALT_SIZE) || !integer(kdf.N, 2 ** 20) || !integer(kdf.r, 32) || !integer(kdf.p, 16)) throw bad('paramètres scrypt invalides')
  }
  return { version: 1, cipher: STREAM_CIPHER, kekId: record.kekId, kdf: kdf === null ? null : { name: 'scrypt', salt: kdf.salt, N: kdf.N, r: kdf.r, p: kdf.p }, wrap: { algorithm: 'aes-256-gcm', nonce: wrap.nonce, ciphertext: wrap.ciphertext, tag: wrap.tag } }
}

/**
 * The data key of a backup, unwrapped with `source`; a ToolkitError naming the expected key id when
 * `source` is not the backup's key.
 * @example const dataKey = await unwrapDataKey(metadata.encryption, source)
 */
export async function unwrapDataKey(recordValue: unknown, source: KeySource): Promise<Buffer> {
  const record = parseWrappedKeyRecord(recordValue)
  if (record.kdf === null && source.kind === 'passphrase') throw new ToolkitError('cette sauvegarde est chiffrée par une clé, pas par une phrase de passe', { hint: `fournissez la clé d’identifiant ${record.kekId} (--key-file ou BACKUP_ENCRYPTION_KEY)` })
  if (record.kdf !== null && source.kind === 'key') throw new ToolkitError('cette sauvegarde est chiffrée par une phrase de passe, pas par une clé', { hint: 'définissez BACKUP_PASSPHRASE' })
  const kek = source.kind === 'key' ? source.key : await scrypt(source.passphrase, Buffer.from(record.kdf!.salt, 'base64'), record.kdf!)
  const kekId = keyIdOf(kek)
  if (kekId !== record.kekId) {
    if (source.kind === 'passphrase') throw new ToolkitError('phrase de passe incorrecte pour cette sauvegarde', { hint: 'vérifiez BACKUP_PASSPHRASE' })
    throw new ToolkitError(`mauvaise clé : ${source.origin} a l’identifiant ${kekId}, cette sauvegarde demande ${record.kekId}`, { hint: `fournissez la clé d’identifiant ${record.kekId} (--key-file ou BACKUP_ENCRYPTION_KEY)` })
  }
  const decipher = createDecipheriv('aes-256-gcm', kek, Buffer.from(record.wrap.nonce, 'base64'), { authTagLength: TAG_SIZE })
  decipher.setAAD(wrapAad(record.kekId))
  decipher.setAuthTag(Buffer.from(record.wrap.tag, 'base64'))
  const dataKey = decipher.update(Buffer.from(record.wrap.ciphertext, 'base64'))
  try {
    decipher.final()
  } catch {
    dataKey.fill(0)
    throw new ToolkitError('la clé enveloppée de cette sauvegarde ne s’ouvre pas avec la bonne clé : fiche de clé altérée', { hint: 'restaurez une autre copie de la métadonnée de cette sauvegarde' })
  }
  return dataKey
}

/**
 * The same data key wrapped under `newSource` (for `rekey`): archive data is untouched.
 * @example metadata.encryption = await rewrapDataKey(metadata.encryption, oldSource, newSource)
 */
export async function rewrapDataKey(record: unknown, oldSource: KeySource, newSource: KeySource, options: { scryptCost?: ScryptCost } = {}): Promise<WrappedKeyRecord> {
  const dataKey = await unwrapDataKey(record, oldSource)
  try {
    const { kek, kdf } = await newKek(newSource, options.scryptCost ?? DEFAULT_SCRYPT_COST)
    return seal(dataKey, kek, kdf)
  } finally {
    dataKey.fill(0)
  }
}
