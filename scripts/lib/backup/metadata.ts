/**
 * metadata.json: the one definition of a backup's description, versioned and validated when read.
 *
 * What the hashes cover:
 * - `files[]`: the SHA-256 and size of every content file (everything in the backup folder but
 *   metadata.json itself).
 * - `hash`: the SHA-256 of the manifest of those files, i.e. of the exact text `sha256sum` prints
 *   for them (`<sha256>  <path>\n` per file, sorted by path). It covers every content file's name
 *   and bytes, so one value identifies the backup's content, compressed or not.
 * - `archive` (compressed backups, in the copy outside the archive): size and SHA-256 of the
 *   `.tar.gz` file itself.
 * - `tenantIndex` (compressed backups, in the copy outside the archive): the SHA-256 of each
 *   gzip member holding data.json, which a tenant restore checks before using any of its bytes
 *   (tenant-restore/sections.ts); it is as trustworthy as this file (its seal, like `archive`).
 * - `metadataSha256`: a seal over this file — the SHA-256 of metadata.json's bytes with this
 *   field's value emptied (`"metadataSha256": ""`), so an edited metadata file is detected.
 *
 * Check by hand (needs `jq`; python3 works the same way):
 *   jq -r '.files[] | "\(.sha256)  \(.path)"' metadata.json | tee /tmp/m | sha256sum -c   # every file
 *   sha256sum < /tmp/m                                                                     # = .hash
 *   sed 's/"metadataSha256": "[0-9a-f]*"/"metadataSha256": ""/' metadata.json | sha256sum   # = .metadataSha256
 *   echo "$(jq -r .archive.sha256 backup-X.metadata.json)  backup-X.tar.gz" | sha256sum -c  # the archive
 */
import { readFile } from 'node:fs/promises'
import { ToolkitError, describeError } from '../errors.ts'
import type { EngineName } from '../db/url.ts'
import { parseWrappedKeyRecord, type WrappedKeyRecord } from '../encryption/keys.ts'
import { EXPORT_FORMATS, isBackupId, type ExportFormat } from './layout.ts'
import { sha256Hex, type FileDigest } from './manifest.ts'

/**
 * Version 2 adds `contents` (per table: rows and order-independent content checksum, what a restore
 * drill compares). Version 1 (no `contents`) is still read; incremental backups still write it.
 */
export const METADATA_FORMAT_VERSION = 2
export const READABLE_METADATA_VERSIONS: readonly number[] = [1, 2]

/** One table's content as create read it from the snapshot (tenant-restore/rows.ts: checksumRowSource). */
export interface TableContent {
  name: string
  rows: number
  /** `sum256:<hex>`: order-independent, after the migration assistant's normalisation. */
  checksum: string
}

/**
 * Where each tenant's rows are in a compressed backup (tenant-restore/sections.ts). Offsets `x` of
 * data.json are at `offset + x` of the uncompressed tar stream, in gzip member
 * `floor((offset + x) / blockSize)`; member `first` starts at byte `memberOffset` of the archive
 * file, and `members` lists the compressed length and SHA-256 of each member from `first` on.
 */
export interface TenantIndex {
  version: 1
  offset: number
  blockSize: number
  first: number
  memberOffset: number
  members: [length: number, sha256: string][]
  /** Every table of data.json with its columns as data.json declares them; `groupedBy`: the column its rows are grouped by. */
  tables: { name: string; columns: { name: string; type: string }[]; groupedBy?: string }[]
  /**
   * Per tenant (tenantKey: a hash of the backup's and the tenant's ids, never a name), per grouped
   * table: its run [start, end) of data.json. Absent from an encrypted backup's metadata, which holds
   * `sealedTenants` instead: each cabinet's size is a fact about the data.
   */
  tenants?: TenantRuns
  /** The `tenants` of an encrypted backup, sealed with its data key (encryption/sealed-value.ts, purpose `tenant-index`, context the backup id). */
  sealedTenants?: string
}

export type TenantRuns = Record<string, Record<string, [start: number, end: number]>>

export interface BackupMetadata {
  formatVersion: 1 | 2
  /** `backup-2026-01-21T15-30-00` */
  id: string
  /** When the snapshot was taken (ISO 8601, UTC). */
  timestamp: string
  /** The source: the SQLite file's path, or the redacted URL of a PostgreSQL / D1 database. */
  databasePath: string
  /** Bytes the backup takes on disk: the .tar.gz when compressed, else the sum of its files. */
  size: number
  /** SHA-256 of the files' manifest (see the top of this file). */
  hash: string
  compressed: boolean
  /** Part 2 (incremental backups): true when the backup stores only changes since `parentId`. */
  incremental: boolean
  parentId: string | null
  /** True only when `create` read back everything it wrote and every hash matched. */
  verified: boolean
  exportFormats: ExportFormat[]
  engine: EngineName
  /** The source URL, password masked. */
  source: string
  tool: { name: string; version: string }
  durationMs: number
  /** Sum of the content files' sizes (uncompressed). */
  contentSize: number
  /** Rows per table as read from the snapshot, the same in database.db and every export. */
  tables: { name: string; rows: number }[]
  /** Version 2, full backups: every table's row count and content checksum (what a drill compares). */
  contents?: TableContent[]
  /** What a restore checks before replacing a database. */
  schema: {
    /** SHA-256 of the Prisma schema of the source's engine in this toolkit (prisma/<engine>/schema.prisma). */
    prismaSchemaSha256: string | null
    /** The newest migration recorded in the snapshot's `_prisma_migrations`, or null. */
    newestMigration: string | null
  }
  files: FileDigest[]
  /** Compressed backups, in the metadata beside the archive: the archive file itself. */
  archive: { path: string; size: number; sha256: string } | null
  /** What the backup omits or could not guarantee (e.g. D1 reads are not one snapshot). */
  warnings: string[]
  /**
   * Encrypted backups only (absent otherwise), in the metadata beside the archive: the data key
   * wrapped under the key-encryption key (`rekey` rewrites only this), and size and SHA-256 of the
   * stored ciphertext `<id>.tar.gz.enc`, which `verify` checks without the key. `archive` then
   * describes the plaintext `.tar.gz` that decryption must give back.
   */
  encryption?: { key: WrappedKeyRecord; ciphertext: { path: string; size: number; sha256: string } }
  /** Compressed full backups of a database with tenants, in the metadata beside the archive (offsets of the plaintext `.tar.gz`). */
  tenantIndex?: TenantIndex
  /** Seal over this file (see the top of this file). */
  metadataSha256: string
}

export type MetadataDraft = Omit<BackupMetadata, 'metadataSha256'>

const SEAL_FIELD = '"metadataSha256": '

/** The bytes of metadata.json: pretty JSON, with the seal as its last field. */
export function serializeMetadata(draft: MetadataDraft): string {
  const unsealed = JSON.stringify({ ...draft, metadataSha256: '' }, null, 2) + '\n'
  const seal = sha256Hex(unsealed)
  const at = unsealed.lastIndexOf(`${SEAL_FIELD}""`)
  return unsealed.slice(0, at) + `${SEAL_FIELD}"${seal}"` + unsealed.slice(at + SEAL_FIELD.length + 2)
}

/** The SHA-256 the seal of `text` should hold, or undefined when there is no seal field. */
function expectedSeal(text: string): { found: string; expected: string } | undefined {
  // The seal is the last field: take the last match (an escaped copy inside a string cannot match).
  const match = [...text.matchAll(/"metadataSha256": "([0-9a-f]*)"/g)].at(-1)
  if (!match) return undefined
  const at = match.index!
  return { found: match[1]!, expected: sha256Hex(text.slice(0, at) + `${SEAL_FIELD}""` + text.slice(at + match[0].length)) }
}

export interface ParsedMetadata {
  metadata: BackupMetadata
  /** False when the file's bytes do not match its seal: it was edited after it was written. */
  sealValid: boolean
}

/**
 * Parses and validates metadata.json text; throws a ToolkitError naming the first bad field.
 * @example const { metadata, sealValid } = parseMetadata(await readFile(path, 'utf8'), path)
 */
export function parseMetadata(text: string, where: string): ParsedMetadata {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new ToolkitError(`${where} n’est pas du JSON valide : ${describeError(error)}`)
  }
  const metadata = validateMetadata(value, where)
  const seal = expectedSeal(text)
  return { metadata, sealValid: seal !== undefined && seal.found === seal.expected }
}

/** Reads and validates a metadata file. */
export async function readMetadata(path: string): Promise<ParsedMetadata> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new ToolkitError(`lecture de ${path} impossible : ${describeError(error)}`, { cause: error })
  }
  return parseMetadata(text, path)
}

/** A count of bytes, rows or an offset: a safe integer ≥ 0. */
const isCount = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
/** A SHA-256 in lowercase hex. */
const isHash = (v: unknown) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v)
/** A JSON object (not an array, not null). */
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function validateMetadata(value: unknown, where: string): BackupMetadata {
  const bad = (field: string, expected: string): never => {
    throw new ToolkitError(`${where} : "${field}" devrait être ${expected}`, {
      hint: 'Les métadonnées ont été modifiées ou viennent d’un autre outil ; `advanced-backup verify <id>` dit ce qui ne va pas.',
    })
  }
  if (!isRecord(value)) return bad('(racine)', 'un objet')
  const m = value
  if (!READABLE_METADATA_VERSIONS.includes(m.formatVersion as number)) {
    throw new ToolkitError(`${where} : version de format ${JSON.stringify(m.formatVersion)} non prise en charge (cet outil lit les versions ${READABLE_METADATA_VERSIONS.join(', ')})`, {
      hint: 'Utilisez la version de l’outil qui a écrit ce backup.',
    })
  }
  const isString = (v: unknown) => typeof v === 'string'
  const isSafePath = (v: unknown) => typeof v === 'string' && v !== '' && !v.startsWith('/') && !v.split('/').some((part) => part === '' || part === '.' || part === '..')
  if (!isString(m.id) || !isBackupId(m.id as string)) bad('id', 'un identifiant de backup')
  if (!isString(m.timestamp) || Number.isNaN(Date.parse(m.timestamp as string))) bad('timestamp', 'une date ISO 8601')
  if (!isString(m.databasePath)) bad('databasePath', 'une chaîne')
  if (!isCount(m.size)) bad('size', 'un nombre d’octets')
  if (!isHash(m.hash)) bad('hash', 'un SHA-256 en hexadécimal')
  for (const flag of ['compressed', 'incremental', 'verified'] as const) if (typeof m[flag] !== 'boolean') bad(flag, 'true ou false')
  if (m.parentId !== null && (!isString(m.parentId) || !isBackupId(m.parentId as string))) bad('parentId', 'null ou un identifiant de backup')
  if (!Array.isArray(m.exportFormats) || !m.exportFormats.every((f) => EXPORT_FORMATS.includes(f))) bad('exportFormats', `une liste parmi ${EXPORT_FORMATS.join(', ')}`)
  if (!['sqlite', 'postgres', 'd1'].includes(m.engine as string)) bad('engine', 'sqlite, postgres ou d1')
  if (!isString(m.source)) bad('source', 'une chaîne')
  const tool = m.tool as Record<string, unknown> | null
  if (typeof tool !== 'object' || tool === null || !isString(tool.name) || !isString(tool.version)) bad('tool', '{ name, version }')
  if (!isCount(m.durationMs)) bad('durationMs', 'un nombre de millisecondes')
  if (!isCount(m.contentSize)) bad('contentSize', 'un nombre d’octets')
  if (!Array.isArray(m.tables) || !m.tables.every((t) => typeof t === 'object' && t !== null && isString(t.name) && isCount(t.rows))) bad('tables', 'une liste de { name, rows }')
  if (m.contents !== undefined && (m.formatVersion === 1 || !Array.isArray(m.contents) || !m.contents.every((t) => typeof t === 'object' && t !== null && isString(t.name) && isCount(t.rows) && typeof t.checksum === 'string' && /^sum256:[0-9a-f]{64}$/.test(t.checksum)))) {
    bad('contents', 'absent (version 1) ou une liste de { name, rows, checksum }')
  }
  const schema = m.schema as Record<string, unknown> | null
  if (typeof schema !== 'object' || schema === null) bad('schema', 'un objet')
  if (schema!.prismaSchemaSha256 !== null && !isHash(schema!.prismaSchemaSha256)) bad('schema.prismaSchemaSha256', 'null ou un SHA-256')
  if (schema!.newestMigration !== null && !isString(schema!.newestMigration)) bad('schema.newestMigration', 'null ou une chaîne')
  if (!Array.isArray(m.files) || !m.files.every((f) => typeof f === 'object' && f !== null && isSafePath(f.path) && isCount(f.size) && isHash(f.sha256))) {
    bad('files', 'une liste de { path, size, sha256 } aux chemins relatifs')
  }
  const archive = m.archive as Record<string, unknown> | null
  if (archive !== null && (typeof archive !== 'object' || !isString(archive.path) || !isCount(archive.size) || !isHash(archive.sha256))) bad('archive', 'null ou { path, size, sha256 }')
  if (!Array.isArray(m.warnings) || !m.warnings.every(isString)) bad('warnings', 'une liste de chaînes')
  if (m.encryption !== undefined) {
    const encryption = m.encryption as Record<string, unknown> | null
    const ciphertext = encryption?.ciphertext as Record<string, unknown> | undefined
    if (typeof encryption !== 'object' || encryption === null || typeof ciphertext !== 'object' || ciphertext === null || !isString(ciphertext.path) || !isCount(ciphertext.size) || !isHash(ciphertext.sha256)) bad('encryption', '{ key, ciphertext: { path, size, sha256 } }')
    if (m.archive === null) bad('archive', 'l’archive en clair d’un backup chiffré')
    parseWrappedKeyRecord(encryption!.key)
  }
  if (m.tenantIndex !== undefined && !isTenantIndex(m.tenantIndex)) bad('tenantIndex', 'absent ou un index des cabinets { version: 1, offset, blockSize, first, memberOffset, members, tables, tenants | sealedTenants }')
  if (!isString(m.metadataSha256)) bad('metadataSha256', 'a SHA-256 in hex')
  return m as unknown as BackupMetadata
}

function isTenantIndex(value: unknown): value is TenantIndex {
  if (!isRecord(value) || value.version !== 1) return false
  if (![value.offset, value.blockSize, value.first, value.memberOffset].every(isCount) || (value.blockSize as number) === 0) return false
  if (!Array.isArray(value.members) || !value.members.every((m) => Array.isArray(m) && m.length === 2 && isCount(m[0]) && isHash(m[1]))) return false
  const column = (c: unknown) => isRecord(c) && typeof c.name === 'string' && typeof c.type === 'string'
  if (!Array.isArray(value.tables) || !value.tables.every((t) => isRecord(t) && typeof t.name === 'string' && Array.isArray(t.columns) && t.columns.every(column) && (t.groupedBy === undefined || typeof t.groupedBy === 'string'))) return false
  if (value.sealedTenants !== undefined) return value.tenants === undefined && typeof value.sealedTenants === 'string'
  return isTenantRuns(value.tenants)
}

/** The per-tenant runs of an index, as stored or once unsealed. */
export function isTenantRuns(value: unknown): value is TenantRuns {
  if (!isRecord(value)) return false
  return Object.entries(value).every(([key, runs]) => /^[0-9a-f]{32}$/.test(key) && isRecord(runs) && Object.values(runs).every((r) => Array.isArray(r) && r.length === 2 && isCount(r[0]) && isCount(r[1]) && (r[0] as number) <= (r[1] as number)))
}
