/**
 * data.json rows rendered by SQLite (engines/sqlite/rendered-rows.ts) against the value codec's
 * JavaScript formatting (exporters/json.ts): the same bytes and the same tenant runs, for every
 * kind of value the codec has a rule for; and export.sql's INSERT lines rendered in SQL against
 * `sqliteLiteral` (exporters/sql.ts).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { tempDir } from './helpers/databases.ts'
import { BEYOND_2_53, BIG, SMALL, collector, createAwkwardDatabase } from './helpers/backup.ts'
import { exportJsonDocument, jsonDocument, jsonRowLayout } from '../scripts/lib/backup/exporters/json.ts'
import { sqliteFileSnapshot } from '../scripts/lib/engines/sqlite/snapshot.ts'
import { MAX_RENDERED_COLUMNS } from '../scripts/lib/engines/sqlite/rendered-rows.ts'
import { exportSqlInserts, writeSqliteScript } from '../scripts/lib/backup/exporters/sql.ts'
import type { RowValue } from '../scripts/lib/db/table-reader.ts'

/** Values each codec rule has to get right, in a BOOLEAN column and in an untyped one. */
const TRICKY_VALUES: unknown[] = [
  null, 0n, 1n, 2n, -1n, BIG, SMALL, BEYOND_2_53,
  0, -0, 1, 1.5, 0.1 + 0.2, 1e21, 1e-7, 123e-20, 5e-324, Number.MAX_VALUE, Infinity, -Infinity,
  '', '0', '1', 'true', 'a\0b', '\u0001\u001f\u007f', '\u2028\u2029', 'Élodie 日本語 😀', '"\\/', "l'as\r\n", '\t\b\f',
  Buffer.alloc(0), Buffer.from([0, 255, 1]), Buffer.from('blob\n,"x"'),
]

function createTrickyDatabase(path: string): void {
  createAwkwardDatabase(path)
  const db = new Database(path)
  // Every affinity: TEXT, NUMERIC (BOOLEAN, ANY), REAL, and none ("brut", declared without a type).
  db.exec(`CREATE TABLE "Tricky" ("tenant" TEXT, "flag" BOOLEAN, "any" ANY, "réel" REAL, "Quote""d" TEXT, "brut")`)
  const insert = db.prepare('INSERT INTO "Tricky" VALUES (?, ?, ?, ?, ?, ?)')
  TRICKY_VALUES.forEach((value, i) => insert.run(i % 3 === 0 ? null : `t${i % 4}`, value, value, typeof value === 'number' ? value : null, typeof value === 'string' ? value : null, value))
  // Text that is not valid UTF-8 (a truncated sequence, one before a quote, a lone 0xff): decoded once per value or once per row, the same bytes.
  db.exec(`INSERT INTO "Tricky" VALUES ('t1', NULL, CAST(x'61c3' AS TEXT), NULL, CAST(x'e2822262' AS TEXT), NULL), ('t2', CAST(x'ff' AS TEXT), CAST(x'c30a' AS TEXT), NULL, NULL, CAST(x'ff' AS TEXT))`)
  const columns = Array.from({ length: MAX_RENDERED_COLUMNS + 1 }, (_, i) => `c${i}`)
  db.exec(`CREATE TABLE "Wide" (${columns.join(', ')})`)
  db.prepare(`INSERT INTO "Wide" VALUES (${columns.map(() => '?').join(', ')})`).run(...columns.map((_, i) => (i % 2 ? i : `v${i}`)))
  db.close()
}

test('data.json rendered by SQLite is byte for byte what the value codec writes, tenant runs included', async (t) => {
  const path = join(tempDir(t), 'tricky.db')
  createTrickyDatabase(path)
  const snapshot = sqliteFileSnapshot('sqlite', path, [])
  t.after(() => snapshot.close())
  const tables = await snapshot.reader.tables()
  const groupBy = new Map([['Tricky', 'tenant'], ['Edge', 'active']])
  const write = async (rendered: boolean) => {
    const { out, bytes } = collector()
    const options = { engine: 'sqlite' as const, valueCodec: snapshot.reader.valueCodec, backupId: 'b', timestamp: 't', groupBy, ...(rendered ? { renderedRows: snapshot.jsonRows } : {}) }
    const { counts, runs } = await exportJsonDocument((table, column) => snapshot.rows(table, { groupBy: column }), tables, out, options)
    return { text: bytes(), counts, runs }
  }
  const byCodec = await write(false)
  const bySqlite = await write(true)
  assert.equal(bySqlite.text.toString('utf8'), byCodec.text.toString('utf8'))
  assert.ok(bySqlite.text.equals(byCodec.text))
  assert.deepEqual(bySqlite.counts, byCodec.counts)
  assert.deepEqual(bySqlite.runs, byCodec.runs)
  assert.ok(byCodec.runs.filter((run) => run.table === 'Tricky').length === 4, 'Tricky has a run per tenant')
  assert.equal(byCodec.counts.get('Tricky'), TRICKY_VALUES.length + 2)
  // Every table but the one too wide for an SQL expression was rendered by SQLite.
  for (const table of tables) {
    const rendered = snapshot.jsonRows!(table, jsonRowLayout(table.columns, jsonDocument.indent))
    assert.equal(rendered === undefined, table.name === 'Wide', table.name)
    ;(rendered as IterableIterator<unknown> | undefined)?.return?.()
  }
})

test('export.sql rendered by SQLite reads back to every kind of value exactly, as sqliteLiteral’s lines do', async (t) => {
  const path = join(tempDir(t), 'tricky.db')
  createTrickyDatabase(path)
  const { out, bytes } = collector()
  await writeSqliteScript(path, out)
  const rendered = bytes().toString('utf8').split('\n').filter((line) => line.startsWith('INSERT INTO "Tricky" '))
  const source = new Database(path, { readonly: true })
  t.after(() => source.close())
  const byCodec = collector()
  await exportSqlInserts(source.prepare('SELECT * FROM "Tricky" ORDER BY rowid').raw(true).safeIntegers(true).iterate() as IterableIterator<RowValue[]>, { name: 'Tricky' }, byCodec.out)
  // Each value as its type and bytes: what a literal must give back exactly.
  const exactRows = `SELECT concat(${['tenant', 'flag', 'any', 'réel', 'Quote"d', 'brut'].map((c) => `typeof("${c.replaceAll('"', '""')}") || ':' || hex("${c.replaceAll('"', '""')}")`).join(", '|', ")}) FROM "Tricky" ORDER BY rowid`
  const loaded = (lines: string) => {
    const db = new Database(':memory:')
    db.exec(`${source.prepare(`SELECT sql FROM sqlite_schema WHERE name = 'Tricky'`).pluck().get() as string};\n${lines}`)
    const rows = db.prepare(exactRows).pluck().all()
    db.close()
    return rows
  }
  const expected = source.prepare(exactRows).pluck().all()
  assert.equal(rendered.length, expected.length)
  // The last two rows hold text that is not valid UTF-8, which a UTF-8 script cannot spell: compared up to them.
  const valid = TRICKY_VALUES.length
  assert.deepEqual(loaded(rendered.join('\n')).slice(0, valid), expected.slice(0, valid))
  assert.deepEqual(loaded(byCodec.bytes().toString('utf8')).slice(0, valid), expected.slice(0, valid))
  // A blob holding a zero byte stays a blob literal; text holding NUL is spelled as bytes.
  assert.ok(rendered.some((line) => /,X'00FF01',/i.test(line)), 'the blob 00 ff 01')
  assert.ok(rendered.some((line) => line.includes("CAST(X'610062' AS TEXT)")), "the text 'a\\0b'")
})
