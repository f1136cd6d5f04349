/**
 * Reads a backup's data.json table by table, streamed (never loaded whole), hashing the bytes on the
 * way so a file changed since verification is caught before anything is written. It relies on the
 * layout the exporter writes (backup/exporters/json.ts: one row object per line), which the
 * verified SHA-256 guarantees; numbers are kept as their exact text (integers beyond 2^53, numerics).
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { StringDecoder } from 'node:string_decoder'
import { ToolkitError } from '../errors.ts'
import { extractBackupFile } from '../backup/archive/extract.ts'
import type { BackupEntry } from '../backup/catalog/catalog.ts'
import { JSON_EXPORT_FILE } from '../backup/layout.ts'
import type { BackupMetadata } from '../backup/metadata.ts'

export interface DataJsonColumn {
  name: string
  type: string
}

/** Called at each table; returns what to do with its row lines (undefined: skip them unparsed). */
export type TableVisitor = (table: string, columns: DataJsonColumn[]) => ((line: string) => void) | undefined

export interface DataJsonScan {
  engine: string
  tables: Map<string, DataJsonColumn[]>
}

const TABLE_LINE = /^ {4}("(?:[^"\\]|\\.)*"): \{$/
const COLUMNS_PREFIX = '      "columns": '
const ROWS_OPEN = '      "rows": ['
const ROWS_EMPTY = '      "rows": [],'
const ROWS_CLOSE = '      ],'

async function* lines(path: string, hash: ReturnType<typeof createHash>): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8')
  let rest = ''
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    hash.update(chunk)
    const text = rest + decoder.write(chunk)
    let start = 0
    for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n', start)) {
      yield text.slice(start, end)
      start = end + 1
    }
    rest = text.slice(start)
  }
  rest += decoder.end()
  if (rest !== '') yield rest
}

/** A verified backup's data.json on disk, its expected SHA-256, and how to let go of it. */
export interface BackupDataJson {
  path: string
  sha256: string
  release(): Promise<void>
}

/**
 * The data.json of a verified backup that has one: read in place from a folder backup, extracted
 * (hash-checked) into a temporary folder inside `workDir` from an archive.
 * @example const source = await backupDataJson(entry, metadata, tmpdir()); try { await scanDataJson(source.path, source.sha256, visit) } finally { await source.release() }
 */
export async function backupDataJson(entry: BackupEntry, metadata: BackupMetadata, workDir: string): Promise<BackupDataJson> {
  const digest = metadata.files.find((f) => f.path === JSON_EXPORT_FILE)
  if (digest === undefined) throw new ToolkitError(`le backup ${metadata.id} n'a pas de ${JSON_EXPORT_FILE}`)
  if (entry.form === 'directory') return { path: join(entry.paths.directory, JSON_EXPORT_FILE), sha256: digest.sha256, release: async () => {} }
  const dir = await mkdtemp(join(workDir, 'ipm-data-json-'))
  const path = join(dir, JSON_EXPORT_FILE)
  try {
    await extractBackupFile(entry, metadata, JSON_EXPORT_FILE, path)
  } catch (error) {
    await rm(dir, { recursive: true, force: true })
    throw error
  }
  return { path, sha256: digest.sha256, release: () => rm(dir, { recursive: true, force: true }) }
}

/**
 * Streams data.json once, calling `visit` at each table and its row handler on each row line.
 * Throws unless the bytes read have `expectedSha256`.
 */
export async function scanDataJson(path: string, expectedSha256: string, visit: TableVisitor): Promise<DataJsonScan> {
  const hash = createHash('sha256')
  const scan: DataJsonScan = { engine: '', tables: new Map() }
  let table: string | undefined
  let onRow: ((line: string) => void) | undefined
  let inRows = false
  for await (const line of lines(path, hash)) {
    if (inRows) {
      if (line === ROWS_CLOSE) inRows = false
      else onRow?.(line)
      continue
    }
    const tableMatch = TABLE_LINE.exec(line)
    if (tableMatch) {
      table = JSON.parse(tableMatch[1]!) as string
      continue
    }
    if (line.startsWith('  "engine": ')) scan.engine = JSON.parse(line.slice('  "engine": '.length).replace(/,$/, '')) as string
    else if (table !== undefined && line.startsWith(COLUMNS_PREFIX)) {
      const columns = JSON.parse(line.slice(COLUMNS_PREFIX.length).replace(/,$/, '')) as DataJsonColumn[]
      scan.tables.set(table, columns)
      onRow = visit(table, columns)
    } else if (line === ROWS_OPEN) inRows = true
    else if (line === ROWS_EMPTY) inRows = false
  }
  const actual = hash.digest('hex')
  if (actual !== expectedSha256) {
    throw new ToolkitError(`data.json a changé depuis la vérification de la sauvegarde (SHA-256 ${actual.slice(0, 12)}… au lieu de ${expectedSha256.slice(0, 12)}…) : rien n'a été écrit`, {
      hint: 'Relancez `advanced-backup verify <id>` ; restaurez depuis une autre sauvegarde.',
    })
  }
  return scan
}

/**
 * The values of one row line (`{"id": "a", "n": 12345678901234567890, "ok": true, "x": null},`) in
 * key order, as export text: strings decoded, numbers as written, booleans `true`/`false`, null.
 */
export function parseRowLine(line: string): (string | null)[] {
  const values: (string | null)[] = []
  let i = line.indexOf('{') + 1
  const n = line.length
  const skipSpace = () => {
    while (i < n && (line.charCodeAt(i) === 0x20 || line.charCodeAt(i) === 0x09)) i++
  }
  const readString = (): string => {
    const start = i
    i++
    let escaped = false
    while (i < n) {
      const c = line.charCodeAt(i)
      if (c === 0x5c) {
        escaped = true
        i += 2
        continue
      }
      if (c === 0x22) break
      i++
    }
    i++
    const raw = line.slice(start, i)
    return escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1)
  }
  for (;;) {
    skipSpace()
    if (i >= n) throw new ToolkitError(`ligne de data.json illisible : ${line.slice(0, 60)}…`)
    if (line.charCodeAt(i) === 0x7d) return values
    readString()
    skipSpace()
    i++ // ':'
    skipSpace()
    const c = line[i]
    if (c === '"') values.push(readString())
    else if (c === 'n') {
      values.push(null)
      i += 4
    } else if (c === 't') {
      values.push('true')
      i += 4
    } else if (c === 'f') {
      values.push('false')
      i += 5
    } else {
      const start = i
      while (i < n && /[-+0-9.eE]/.test(line[i]!)) i++
      values.push(line.slice(start, i))
    }
    skipSpace()
    if (line[i] === ',') i++
  }
}
