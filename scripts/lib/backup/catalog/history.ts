/**
 * history.jsonl: one JSON line per backup operation (create, verify, restore, prune, drill), success or
 * failure, in `<backupDir>/history.jsonl` — what `advanced-backup check` reads.
 *
 * Each line is appended with one write() on a file opened O_APPEND, then fsynced: concurrent runs
 * never interleave inside a line, and a line is either there whole or (after a crash or a power
 * loss in the middle of it) cut short at the very end of the file. Reading skips such a torn line
 * with a warning; the next append starts on a fresh line, so it never glues itself to the torn one.
 *
 * One versioned type (HistoryRecord), validated when read; a line of an unknown version or shape is
 * skipped with a warning, never fatal.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describeError } from '../../errors.ts'
import { isBackupId } from '../layout.ts'

export const HISTORY_FILE = 'history.jsonl'
export const HISTORY_FORMAT_VERSION = 1

export const HISTORY_OPERATIONS = ['create', 'verify', 'restore', 'prune', 'drill', 'rekey'] as const
export type HistoryOperation = (typeof HISTORY_OPERATIONS)[number]

export interface HistoryRecord {
  version: typeof HISTORY_FORMAT_VERSION
  operation: HistoryOperation
  /** The backup the operation was about (absent when a create failed before it had an id, and for prune). */
  id?: string
  /** ISO 8601, UTC. */
  start: string
  end: string
  durationMs: number
  /** Bytes of the backup created, verified or restored (0 when unknown or not applicable). */
  bytes: number
  result: 'success' | 'failure'
  /** The error's one-line message (failures only). */
  error?: string
  /** Drills: the measured time to restore (the restore alone, without the drill's checks). */
  rtoMs?: number
}

export interface HistoryRead {
  records: HistoryRecord[]
  /** Lines skipped (torn by a crash, unknown version, not JSON), one message each. */
  warnings: string[]
}

/** Longest error message kept in a line (a line stays one small write). */
const MAX_ERROR_LENGTH = 1000

/** The history file of a backup folder. */
export function historyPath(backupDir: string): string {
  return join(backupDir, HISTORY_FILE)
}

/**
 * Appends one record as one line: a single write on an O_APPEND descriptor, then fsync.
 * @example appendHistory('backups', { version: 1, operation: 'verify', id, start, end, durationMs: 12, bytes: 2048, result: 'success' })
 */
export function appendHistory(backupDir: string, record: HistoryRecord): void {
  const clean: HistoryRecord = { ...record, ...(record.error !== undefined ? { error: oneLine(record.error) } : {}) }
  let line = JSON.stringify(clean) + '\n'
  const fd = openSync(historyPath(backupDir), 'a+')
  try {
    // A line torn by a crash has no newline: start on a fresh line so this one stays readable.
    if (!endsWithNewline(fd)) line = '\n' + line
    const bytes = Buffer.from(line, 'utf8')
    const written = writeSync(fd, bytes)
    if (written !== bytes.length) throw new Error(`écriture incomplète dans ${HISTORY_FILE} (${written} octets sur ${bytes.length})`)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

function endsWithNewline(fd: number): boolean {
  const size = fstatSync(fd).size
  if (size === 0) return true
  const last = Buffer.alloc(1)
  readSync(fd, last, 0, 1, size - 1)
  return last[0] === 0x0a
}

function oneLine(message: string): string {
  const line = message.replace(/\s*[\r\n]+\s*/g, ' ').trim()
  return line.length > MAX_ERROR_LENGTH ? `${line.slice(0, MAX_ERROR_LENGTH - 1)}…` : line
}

/**
 * Reads every valid record, oldest first; a missing file is an empty history.
 * @example const { records, warnings } = await readHistory('backups'); const last = records.at(-1)
 */
export async function readHistory(backupDir: string): Promise<HistoryRead> {
  let text: string
  try {
    text = await readFile(historyPath(backupDir), 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], warnings: [] }
    return { records: [], warnings: [`${HISTORY_FILE} est illisible : ${describeError(error)}`] }
  }
  return parseHistory(text)
}

/** Parses history.jsonl text (see readHistory). */
export function parseHistory(text: string): HistoryRead {
  const records: HistoryRecord[] = []
  const warnings: string[] = []
  const lines = text.split('\n')
  // The text after the last newline is a line cut by a crash (or nothing).
  const tail = lines.pop()!
  if (tail.trim() !== '') warnings.push(`${HISTORY_FILE} : dernière ligne incomplète (une exécution a été coupée en l’écrivant) ; ignorée`)
  lines.forEach((line, index) => {
    if (line.trim() === '') return
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch {
      warnings.push(`${HISTORY_FILE} ligne ${index + 1} : pas du JSON (coupée par un arrêt brutal ?) ; ignorée`)
      return
    }
    const problem = historyRecordProblem(value)
    if (problem !== undefined) warnings.push(`${HISTORY_FILE} ligne ${index + 1} : ${problem} ; ignorée`)
    else records.push(value as HistoryRecord)
  })
  return { records, warnings }
}

/** Why a parsed line is not a HistoryRecord of this version, or undefined when it is one. */
export function historyRecordProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'pas un objet'
  const r = value as Record<string, unknown>
  if (r.version !== HISTORY_FORMAT_VERSION) return `version ${JSON.stringify(r.version)} non prise en charge (cet outil lit la version ${HISTORY_FORMAT_VERSION})`
  const isDate = (v: unknown) => typeof v === 'string' && !Number.isNaN(Date.parse(v))
  const isCount = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
  if (!HISTORY_OPERATIONS.includes(r.operation as HistoryOperation)) return `"operation" devrait valoir ${HISTORY_OPERATIONS.join(', ')}`
  if (r.id !== undefined && (typeof r.id !== 'string' || !isBackupId(r.id))) return '"id" devrait être un identifiant de backup'
  if (!isDate(r.start)) return '"start" devrait être une date ISO 8601'
  if (!isDate(r.end)) return '"end" devrait être une date ISO 8601'
  if (!isCount(r.durationMs)) return '"durationMs" devrait être un nombre de millisecondes'
  if (!isCount(r.bytes)) return '"bytes" devrait être un nombre d’octets'
  if (r.result !== 'success' && r.result !== 'failure') return '"result" devrait valoir success ou failure'
  if (r.error !== undefined && typeof r.error !== 'string') return '"error" devrait être une chaîne'
  if (r.rtoMs !== undefined && !isCount(r.rtoMs)) return '"rtoMs" devrait être un nombre de millisecondes'
  if (r.result === 'failure' && r.error === undefined) return 'un échec devrait porter "error"'
  return undefined
}
