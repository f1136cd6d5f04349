/**
 * Date texts in the exports: what the database stores is what data.json, the CSV files and the
 * SQL carry, byte for byte; only PostgreSQL's own timestamp types are written as ISO 8601.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { ENGINES, openTestDatabase, tempDir } from './helpers/databases.ts'
import { backupSystem, python } from './helpers/backup.ts'
import { requireJudge } from './helpers/judges.ts'

/** Naive, invalid and offset date texts; every one must come out exactly as stored. */
const TEXTS = ['2021-01-01 00:00:00', '2021-13-45 99:99:99', '2021-01-01T10:00:00+02:00', '2021-01-01 10:00:00.5-05:30', '2021-01-01', '2026-01-21T15:30:00.000+00:00', 'demain']

/** The CSV of a table as Python's csv module reads it, header first. */
const csvRows = (path: string) => python<string[][]>('import csv, json, sys\nprint(json.dumps(list(csv.reader(open(sys.argv[1], newline="", encoding="utf-8")))))', [path])

/** The rows of a table in data.json. */
const jsonRows = (path: string, table: string) => (JSON.parse(readFileSync(join(path, 'data.json'), 'utf8')) as { tables: Record<string, { rows: Record<string, unknown>[] }> }).tables[table]!.rows

test('SQLite: DATETIME, DATE and TEXT columns are exported as stored (naive, invalid, with offsets), in CSV, JSON and SQL', { skip: requireJudge('python3') }, async (t) => {
  const dir = tempDir(t)
  const source = join(dir, 'dates.db')
  const db = new Database(source)
  db.exec('CREATE TABLE "Dates" (id INTEGER PRIMARY KEY, dt DATETIME, d DATE, txt TEXT)')
  const insert = db.prepare('INSERT INTO "Dates" (id, dt, d, txt) VALUES (?, ?, ?, ?)')
  TEXTS.forEach((text, i) => insert.run(i + 1, text, text, text))
  insert.run(TEXTS.length + 1, 1609459200000, 20210101, null) // numbers in date columns stay numbers
  db.close()
  const { path } = await backupSystem(t, { databaseUrl: `file:${source}`, compressionEnabled: false, backupDir: join(dir, 'backups') }).create()

  const csv = csvRows(join(path, 'exports', 'Dates.csv'))
  assert.deepEqual(csv[0], ['id', 'dt', 'd', 'txt'])
  assert.deepEqual(csv.slice(1), [...TEXTS.map((text, i) => [String(i + 1), text, text, text]), [String(TEXTS.length + 1), '1609459200000', '20210101', '']])
  assert.deepEqual(jsonRows(path, 'Dates'), [...TEXTS.map((text, i) => ({ id: i + 1, dt: text, d: text, txt: text })), { id: TEXTS.length + 1, dt: 1609459200000, d: 20210101, txt: null }])
  const sql = readFileSync(join(path, 'export.sql'), 'utf8')
  for (const text of TEXTS) assert.ok(sql.includes(`'${text}','${text}','${text}'`), text)
})

test('PostgreSQL: text and date columns are exported as stored; timestamp and timestamptz, the engine\'s own date types, as ISO 8601', { skip: !ENGINES.includes('postgres') && 'TEST_ENGINES leaves PostgreSQL out' || requireJudge('python3') }, async (t) => {
  const db = await openTestDatabase(t, 'postgres', { seed: false })
  await db.sql.executeScript(`
    CREATE TABLE "Dates" (id integer PRIMARY KEY, ts timestamp(3), tstz timestamptz, d date, txt text);
    INSERT INTO "Dates" VALUES
      (1, '2021-01-01 00:00:00', '2021-01-01 10:00:00+02', '2021-01-01', '2021-01-01 00:00:00'),
      (2, '2021-01-01 10:00:00.5', '2021-01-01 10:00:00.123456-05:30', '2021-12-31', '2021-13-45 99:99:99'),
      (3, 'infinity', '-infinity', '0044-03-15 BC', '2021-01-01T10:00:00+02:00'),
      (4, '0044-03-15 12:00:00 BC', '1900-01-01 00:00:00+00:09:21', NULL, '2021-01-01 10:00:00.5-05:30');
  `)
  const dir = tempDir(t)
  const { path } = await backupSystem(t, { databaseUrl: db.url, compressionEnabled: false, backupDir: join(dir, 'backups') }).create()

  const expected = [
    ['1', '2021-01-01T00:00:00Z', '2021-01-01T08:00:00+00:00', '2021-01-01', '2021-01-01 00:00:00'],
    ['2', '2021-01-01T10:00:00.5Z', '2021-01-01T15:30:00.123456+00:00', '2021-12-31', '2021-13-45 99:99:99'],
    // Not a date ISO 8601 can write: kept as the server printed it.
    ['3', 'infinity', '-infinity', '0044-03-15 BC', '2021-01-01T10:00:00+02:00'],
    ['4', '0044-03-15 12:00:00 BC', '1899-12-31T23:50:39+00:00', '', '2021-01-01 10:00:00.5-05:30'],
  ]
  const csv = csvRows(join(path, 'exports', 'Dates.csv'))
  assert.deepEqual(csv[0], ['id', 'ts', 'tstz', 'd', 'txt'])
  assert.deepEqual(csv.slice(1), expected)
  assert.deepEqual(jsonRows(path, 'Dates'), expected.map(([id, ts, tstz, d, txt]) => ({ id: Number(id), ts, tstz, d: d === '' ? null : d, txt })))
  const sql = readFileSync(join(path, 'database.sql'), 'utf8')
  assert.ok(sql.includes('2021-13-45 99:99:99'))
  assert.ok(sql.includes('2021-01-01 10:00:00.5-05:30'))
})
