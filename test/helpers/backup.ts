/**
 * Helpers of the backup tests: the standard tools as judges (sqlite3, tar, sha256sum, python3,
 * psql), SQLite databases full of awkward values, and what an exporter writes, collected.
 */
import { spawn } from 'node:child_process'
import { Writable } from 'node:stream'
import { createHash } from 'node:crypto'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { TestContext } from 'node:test'
import { AdvancedBackupSystem, type AdvancedBackupOptions } from '../../scripts/lib/backup/backup-system.ts'
import { blockLength } from '../../scripts/lib/backup/archive/gzip-blocks.ts'
import type { BackupMetadata } from '../../scripts/lib/backup/metadata.ts'
import { resolveEnvironment, type ToolkitEnvironment } from '../../scripts/lib/environment.ts'
import { defer, tempDir } from './databases.ts'
import { judge } from './judges.ts'

/** A stream that keeps what is written to it: what an exporter wrote, as one Buffer. */
export function collector(): { out: Writable; bytes(): Buffer } {
  const chunks: Buffer[] = []
  const out = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(Buffer.from(chunk))
      callback()
    },
  })
  return { out, bytes: () => Buffer.concat(chunks) }
}

/** A seeded generator of integers below `below` (xorshift32): a failing random test can be replayed. */
export function seededRandom(seed: number): (below: number) => number {
  let state = seed
  return (below) => {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    return (state >>> 0) % below
  }
}

/** Runs a command; throws with its stderr when it fails, naming the tool when it cannot start. */
export function run(command: string, args: string[], options: { cwd?: string; input?: string | Buffer } = {}): string {
  const result = judge(command, args, options)
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${result.stderr}`)
  return result.stdout
}

/** `sqlite3 <db> .dump` */
export function sqliteDump(path: string): string {
  return run('sqlite3', [path, '.dump'])
}

/** Loads a SQL script into a new database with the sqlite3 shell (stops at the first error). */
export function sqliteLoad(script: string, target: string): void {
  run('sqlite3', ['-bail', target], { input: readFileSync(script) })
}

/** Runs a Python 3 program and parses what it prints as JSON. */
export function python<T = unknown>(program: string, args: string[] = []): T {
  return JSON.parse(run('python3', ['-c', program, ...args])) as T
}

/** A quiet backup system over a folder of the test, with a fixed clock unless one is given. */
export function backupSystem(t: Pick<TestContext, 'after'>, options: Omit<AdvancedBackupOptions, 'environment'> & { databaseUrl: string; environment?: ToolkitEnvironment }): AdvancedBackupSystem {
  return new AdvancedBackupSystem({
    backupDir: options.backupDir ?? join(tempDir(t, 'ipm-backups-'), 'backups'),
    environment: { ...resolveEnvironment({}), databaseUrl: options.databaseUrl },
    ...options,
  })
}

/** A clock that starts at `start` and moves one minute per call (distinct backup ids). */
export function steppingClock(start = '2026-01-21T15:30:00.000Z', stepMs = 60_000): () => Date {
  let next = Date.parse(start)
  return () => {
    const now = new Date(next)
    next += stepMs
    return now
  }
}

/** The `sha256sum -c` input of a backup, built from its metadata alone. */
export function checksumLines(metadata: BackupMetadata): string {
  return metadata.files.map((file) => `${file.sha256}  ${file.path}\n`).join('')
}

/**
 * A SQLite database (WAL mode) with every awkward kind of value and schema object: big and
 * minimal integers, reals that need 17 digits, infinities, -0.0, empty strings and NULLs, quotes,
 * commas, CR/LF, unicode, blobs (empty and with NUL bytes), SQLite and Prisma date texts, booleans,
 * generated columns, AUTOINCREMENT, WITHOUT ROWID, an FTS5 table, views, triggers and statistics.
 */
export function createAwkwardDatabase(path: string): void {
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.exec(`
    CREATE TABLE "Edge" (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      label TEXT,
      amount INTEGER,
      ratio REAL,
      payload BLOB,
      "due date" DATETIME,
      active BOOLEAN,
      price DECIMAL,
      upper_label TEXT GENERATED ALWAYS AS (upper(label)) VIRTUAL
    );
    CREATE TABLE "Key""Value" (k TEXT PRIMARY KEY, v ANY) WITHOUT ROWID;
    CREATE TABLE doubles (x REAL);
    CREATE INDEX edge_label ON "Edge"(label);
    CREATE VIEW edge_view AS SELECT id, label FROM "Edge";
    CREATE TRIGGER edge_touch AFTER UPDATE ON "Edge" BEGIN SELECT 1; END;
    CREATE VIRTUAL TABLE notes USING fts5(body);
  `)
  const insert = db.prepare('INSERT INTO "Edge" (label, amount, ratio, payload, "due date", active, price) VALUES (?, ?, ?, ?, ?, ?, ?)')
  for (const row of AWKWARD_ROWS) insert.run(...row)
  const kv = db.prepare('INSERT INTO "Key""Value" VALUES (?, ?)')
  kv.run('int', 42n)
  kv.run('text', 'quarante-deux')
  kv.run('blob', Buffer.from([0, 1, 2]))
  kv.run('real', 4.2)
  kv.run('null', null)
  const doubles = db.prepare('INSERT INTO doubles VALUES (?)')
  let seed = 7
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  for (let i = 0; i < 200; i++) doubles.run((random() - 0.5) * 10 ** Math.floor(random() * 40 - 20))
  doubles.run(0.1 + 0.2)
  doubles.run(Number.MIN_VALUE)
  doubles.run(Number.MAX_VALUE)
  db.prepare('INSERT INTO notes VALUES (?)').run('Audience de mise en état, conclusions à déposer')
  db.exec('ANALYZE')
  db.close()
}

export const BIG = 9_223_372_036_854_775_807n
export const SMALL = -9_223_372_036_854_775_808n
export const BEYOND_2_53 = 9_007_199_254_740_993n

/** label, amount, ratio, payload, due date, active, price */
export const AWKWARD_ROWS: unknown[][] = [
  ['', null, 0.1, Buffer.from([0x00, 0xff]), '2026-01-21T15:30:00.000+00:00', 1, 29.99],
  [null, BIG, -0.5, Buffer.alloc(0), '2026-01-21 15:30:00', 0, 0],
  ['a,b "quoted"\nsecond line\r\nthird', SMALL, 1e308, null, null, null, null],
  ['Élodie 日本語 😀 ﬁ', BEYOND_2_53, Infinity, Buffer.from('blob\n,"x"'), '2026-01-21', 1, 12],
  ["O'Brien; DROP TABLE x; --", 0n, 3, null, '2026-01-21T16:30:00.123456+01:00', 0, 1e-7],
  ['\\N', -1n, -Infinity, Buffer.from([0]), null, 2, null],
  ['   ', 1n, 123456789.123456789, null, null, null, null],
]

/** Starts a process that inserts rows into a SQLite database in WAL mode until it is stopped. */
export function startWriter(t: Pick<TestContext, 'after'>, path: string, repoRoot: string): { stop(): Promise<number> } {
  const program = `
    const Database = require('better-sqlite3')
    const db = new Database(process.argv[1], { timeout: 10000 })
    db.pragma('journal_mode = WAL')
    const insert = db.prepare('INSERT INTO "Client" (id, "tenantId", "firstName", "lastName", "createdAt") VALUES (?, ?, ?, ?, ?)')
    let n = 0
    let stopping = false
    process.on('SIGTERM', () => { stopping = true })
    process.stdout.write('ready\\n')
    const tick = () => {
      if (stopping) { db.close(); process.stdout.write('inserted ' + n + '\\n'); process.exit(0) }
      db.transaction(() => { for (let i = 0; i < 5; i++) insert.run('writer-' + (n++), 'tenant-demo', 'W', 'Riter', new Date().toISOString()) })()
      setTimeout(tick, 1)
    }
    tick()
  `
  const child = spawn(process.execPath, ['-e', program, path], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise<number>((resolve) => child.on('exit', () => resolve(Number(/inserted (\d+)/.exec(output)?.[1] ?? -1))))
  defer(t, () => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  return {
    async stop() {
      child.kill('SIGTERM')
      return exited
    },
  }
}

/** How many rows `sqlite3` counts in a table. */
export function sqliteCount(path: string, table: string): number {
  return Number(run('sqlite3', [path, `SELECT count(*) FROM "${table}"`]).trim())
}

/** What a database holds, read by the engine's own standard tool: per table, its row count and an order-independent checksum of its rows. */
export interface DatabaseContents {
  tables: Record<string, { rows: number; checksum: string }>
  /** Tables named by the toolkit for its own work (`_ipm_…`, e.g. a killed D1 restore's staging tables): not in `tables`. */
  toolkitTables: string[]
}

/**
 * The contents of a live database, judged without the toolkit: `psql` for PostgreSQL, the
 * `sqlite3` shell for a SQLite file and for a local D1 (Miniflare keeps it in a SQLite file of its
 * state folder; D1's own `_cf_` tables left out). A SQLite file must also pass `integrity_check`.
 * Each row is hashed (`md5(row::text)`, `sha3(quote(col)||…)`), the hashes sorted, then hashed.
 */
export function databaseContents(url: string): DatabaseContents {
  if (/^postgres(ql)?:/.test(url)) {
    const psql = (sql: string) => run('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql]).split('\n').filter((line) => line !== '')
    const tables: DatabaseContents['tables'] = {}
    const names = psql(`SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1`)
    for (const name of names.filter((n) => !n.startsWith('_ipm_'))) {
      tables[name] = rowHashes(psql(`SELECT md5(t::text) FROM "${name.replaceAll('"', '""')}" t`))
    }
    return { tables, toolkitTables: names.filter((n) => n.startsWith('_ipm_')) }
  }
  let path = url.replace(/^file:/, '')
  if (url.startsWith('d1://local/')) {
    const state = join(url.slice('d1://local/'.length), 'miniflare-D1DatabaseObject')
    const files = readdirSync(state).filter((name) => name.endsWith('.sqlite') && name !== 'metadata.sqlite')
    if (files.length !== 1) throw new Error(`expected one D1 database in ${state}, found ${files.join(', ')}`)
    path = join(state, files[0]!)
  }
  // A busy timeout: a local D1's workerd that a SIGKILLed toolkit left running may still be ending a
  // transaction on the file (the next open kills it); without one the judge fails at once with SQLITE_BUSY.
  const sqlite = (sql: string) => run('sqlite3', ['-readonly', '-cmd', '.timeout 10000', path, sql]).split('\n').filter((line) => line !== '')
  const integrity = sqlite('PRAGMA integrity_check').join('; ')
  if (integrity !== 'ok') throw new Error(`${path}: integrity_check: ${integrity}`)
  const tables: DatabaseContents['tables'] = {}
  const names = sqlite(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY 1`)
  for (const name of names.filter((n) => !n.startsWith('_ipm_'))) {
    const quoted = `"${name.replaceAll('"', '""')}"`
    const columns = sqlite(`SELECT name FROM pragma_table_info('${name.replaceAll("'", "''")}')`).map((c) => `quote("${c.replaceAll('"', '""')}")`)
    tables[name] = rowHashes(sqlite(`SELECT hex(sha3(${columns.join(" || ',' || ")})) FROM ${quoted}`))
  }
  return { tables, toolkitTables: names.filter((n) => n.startsWith('_ipm_')) }
}

function rowHashes(hashes: string[]): { rows: number; checksum: string } {
  return { rows: hashes.length, checksum: createHash('sha256').update(hashes.sort().join('\n')).digest('hex') }
}

/** Where each gzip member of one of our archives starts (our members carry their length in their header). */
export function gzipMemberStarts(archive: string): number[] {
  const bytes = readFileSync(archive)
  const starts: number[] = []
  for (let at = 0; at < bytes.length; at += blockLength(bytes, at)!) starts.push(at)
  return starts
}
