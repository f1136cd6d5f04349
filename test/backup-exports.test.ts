/**
 * The exports of a SQLite backup, judged by other tools: the sqlite3 shell (export.sql → .dump),
 * Python's json and csv modules (exact values), PostgreSQL's COPY … CSV (NULL vs empty string).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { ENGINES, createPostgresDatabase, tempDir } from './helpers/databases.ts'
import { AWKWARD_ROWS, BEYOND_2_53, BIG, SMALL, backupSystem, createAwkwardDatabase, python, run, sqliteDump, sqliteLoad } from './helpers/backup.ts'
import { csvField } from '../scripts/lib/backup/exporters/csv.ts'
import { sqliteLiteral } from '../scripts/lib/backup/exporters/sql.ts'
import { requireJudge } from './helpers/judges.ts'
import { createBackup } from '../scripts/lib/backup/create/create.ts'
import { openDatabase } from '../scripts/lib/db/open.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'

async function awkwardBackup(t: import('node:test').TestContext) {
  const dir = tempDir(t)
  const source = join(dir, 'awkward.db')
  createAwkwardDatabase(source)
  const system = backupSystem(t, { databaseUrl: `file:${source}`, compressionEnabled: false, backupDir: join(dir, 'backups') })
  const { metadata, path } = await system.create()
  return { source, metadata, path }
}

test('export.sql loaded by the sqlite3 shell gives a database whose .dump equals the snapshot\'s', { skip: requireJudge('sqlite3') }, async (t) => {
  const { source, path } = await awkwardBackup(t)
  const loaded = join(tempDir(t), 'loaded.db')
  sqliteLoad(join(path, 'export.sql'), loaded)
  const snapshotDump = sqliteDump(join(path, 'database.db'))
  assert.equal(sqliteDump(loaded), snapshotDump)
  // The snapshot is the source at that instant (VACUUM may reorder schema entries) and a sound file.
  const lines = (dump: string) => dump.split('\n').sort()
  assert.deepEqual(lines(snapshotDump), lines(sqliteDump(source)))
  assert.equal(run('sqlite3', [join(path, 'database.db'), 'PRAGMA integrity_check']).trim(), 'ok')
  for (const object of ['CREATE VIRTUAL TABLE notes', 'CREATE VIEW edge_view', 'CREATE TRIGGER edge_touch', 'INSERT INTO sqlite_sequence', 'INSERT INTO sqlite_stat1']) {
    assert.ok(snapshotDump.includes(object), `the dump covers ${object}`)
  }
  // Every double reads back bit for bit.
  const hex = (db: string) => run('sqlite3', [db, "SELECT group_concat(hex(CAST(x AS BLOB)) || ':' || typeof(x) || ':' || quote(x), ',') FROM doubles"])
  assert.equal(hex(loaded), hex(source))
})

test('SQL literals are exact: integers at the limits, reals that need 17 digits, text with quotes and NUL, blobs', { skip: requireJudge('sqlite3') }, () => {
  assert.equal(sqliteLiteral(SMALL), '-9223372036854775808')
  assert.equal(sqliteLiteral(3), '3.0')
  assert.equal(sqliteLiteral(0.1 + 0.2), '0.30000000000000004')
  assert.equal(sqliteLiteral(-Infinity), '-1e999')
  assert.equal(sqliteLiteral("l'as"), "'l''as'")
  assert.equal(sqliteLiteral('a\0b'), "CAST(X'610062' AS TEXT)")
  assert.equal(sqliteLiteral(Buffer.from([0, 255])), "X'00ff'")
  assert.equal(run('sqlite3', [':memory:', `SELECT typeof(${sqliteLiteral(SMALL)}), ${sqliteLiteral(SMALL)} = -9223372036854775807 - 1`]).trim(), 'integer|1')
})

/** What each Edge row must read back as: [csv text or null, JSON value as [type, text]]. */
function expectedEdgeRows(): { csv: (string | null)[][]; json: [string, string][][] } {
  const I = (v: bigint | number) => ['int', String(v)] as [string, string]
  const F = (v: string) => ['float', v] as [string, string]
  const S = (v: string) => ['str', v] as [string, string]
  const B = (v: boolean) => ['bool', v ? 'True' : 'False'] as [string, string]
  const N = ['null', ''] as [string, string]
  const b64 = (bytes: number[] | string) => Buffer.from(bytes as never).toString('base64')
  const csv = [
    ['1', '', null, '0.1', b64([0, 255]), '2026-01-21T15:30:00.000+00:00', 'true', '29.99'],
    ['2', null, BIG.toString(), '-0.5', '', '2026-01-21 15:30:00', 'false', '0'],
    ['3', 'a,b "quoted"\nsecond line\r\nthird', SMALL.toString(), '1e+308', null, null, null, null],
    ['4', 'Élodie 日本語 😀 ﬁ', BEYOND_2_53.toString(), 'Infinity', b64('blob\n,"x"'), '2026-01-21', 'true', '12'],
    ['5', "O'Brien; DROP TABLE x; --", '0', '3.0', null, '2026-01-21T16:30:00.123456+01:00', 'false', '1e-7'],
    ['6', '\\N', '-1', '-Infinity', b64([0]), null, '2', null],
    ['7', '   ', '1', '123456789.12345679', null, null, null, null],
  ]
  const json = [
    [I(1), S(''), N, F('0.1'), S(b64([0, 255])), S('2026-01-21T15:30:00.000+00:00'), B(true), F('29.99')],
    [I(2), N, I(BIG), F('-0.5'), S(''), S('2026-01-21 15:30:00'), B(false), I(0)],
    [I(3), S('a,b "quoted"\nsecond line\r\nthird'), I(SMALL), F('1e+308'), N, N, N, N],
    [I(4), S('Élodie 日本語 😀 ﬁ'), I(BEYOND_2_53), S('Infinity'), S(b64('blob\n,"x"')), S('2026-01-21'), B(true), I(12)],
    [I(5), S("O'Brien; DROP TABLE x; --"), I(0), F('3.0'), N, S('2026-01-21T16:30:00.123456+01:00'), B(false), F('1e-07')],
    [I(6), S('\\N'), I(-1), S('-Infinity'), S(b64([0])), N, I(2), N],
    [I(7), S('   '), I(1), F('123456789.12345679'), N, N, N, N],
  ]
  assert.equal(csv.length, AWKWARD_ROWS.length)
  return { csv, json }
}

test('data.json is valid JSON with every row of every table and exact values (read by Python)', { skip: requireJudge('python3') }, async (t) => {
  const { path, metadata } = await awkwardBackup(t)
  const typed = python<{ tables: Record<string, { rows: [string, string][][]; rowCount: number; columns: string[] }>; engine: string; backupId: string }>(
    `
import json, sys
def typed(v):
    if v is None: return ['null', '']
    if isinstance(v, bool): return ['bool', str(v)]
    if isinstance(v, int): return ['int', str(v)]
    if isinstance(v, float): return ['float', repr(v)]
    return ['str', v]
with open(sys.argv[1], encoding='utf-8') as f:
    data = json.load(f)
print(json.dumps({'engine': data['engine'], 'backupId': data['backupId'], 'tables': {name: {
    'columns': [c['name'] for c in t['columns']],
    'rowCount': t['rowCount'],
    'rows': [[typed(row[c['name']]) for c in t['columns']] for row in t['rows']]} for name, t in data['tables'].items()}}))
`,
    [join(path, 'data.json')],
  )
  assert.equal(typed.engine, 'sqlite')
  assert.equal(typed.backupId, metadata.id)
  assert.deepEqual(Object.keys(typed.tables).sort(), metadata.tables.map((table) => table.name).sort())
  for (const table of metadata.tables) assert.equal(typed.tables[table.name]!.rows.length, table.rows, table.name)
  assert.deepEqual(typed.tables.Edge!.columns, ['id', 'label', 'amount', 'ratio', 'payload', 'due date', 'active', 'price'])
  assert.deepEqual(typed.tables.Edge!.rows, expectedEdgeRows().json)
  assert.deepEqual(typed.tables['Key"Value']!.rows, [
    [['str', 'blob'], ['str', 'AAEC']],
    [['str', 'int'], ['int', '42']],
    [['str', 'null'], ['null', '']],
    [['str', 'real'], ['float', '4.2']],
    [['str', 'text'], ['str', 'quarante-deux']],
  ])
})

test('each CSV is RFC 4180 with a header and exact values, read back by Python\'s csv module', { skip: requireJudge('python3') }, async (t) => {
  const { path, metadata } = await awkwardBackup(t)
  const read = (file: string) =>
    python<string[][]>(`import csv, json, sys\nwith open(sys.argv[1], newline='', encoding='utf-8') as f: print(json.dumps(list(csv.reader(f, strict=True))))`, [file])
  const edge = read(join(path, 'exports', 'Edge.csv'))
  assert.deepEqual(edge[0], ['id', 'label', 'amount', 'ratio', 'payload', 'due date', 'active', 'price'])
  // Python's reader (before 3.13) reads NULL and '' alike: compare with NULL as ''.
  assert.deepEqual(edge.slice(1), expectedEdgeRows().csv.map((row) => row.map((v) => v ?? '')))
  for (const table of metadata.tables) {
    const file = join(path, 'exports', `${encodeURIComponent(table.name).replaceAll('.', '%2E')}.csv`)
    assert.equal(read(file).length, table.rows + 1, table.name)
  }
  // The raw bytes: CRLF records, NULL unquoted and empty, '' quoted.
  const raw = readFileSync(join(path, 'exports', 'Edge.csv'), 'utf8')
  assert.ok(raw.startsWith('id,label,amount,ratio,payload,due date,active,price\r\n1,"",,0.1,AP8=,'), raw.slice(0, 80))
  assert.equal(csvField(null), '')
  assert.equal(csvField(''), '""')
})

test('CSV files tell NULL from the empty string the way PostgreSQL COPY … CSV reads them', { skip: !ENGINES.includes('postgres') && 'TEST_ENGINES leaves PostgreSQL out' || requireJudge('psql') }, async (t) => {
  const { path } = await awkwardBackup(t)
  const url = await createPostgresDatabase(t)
  const columns = ['id', 'label', 'amount', 'ratio', 'payload', 'due date', 'active', 'price']
  run('psql', ['-v', 'ON_ERROR_STOP=1', '-q', '-d', url, '-c', `CREATE TABLE edge (${columns.map((c) => `"${c}" text`).join(', ')})`])
  run('psql', ['-v', 'ON_ERROR_STOP=1', '-q', '-d', url, '-c', `\\copy edge FROM '${join(path, 'exports', 'Edge.csv')}' CSV HEADER`])
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query({ text: `SELECT ${columns.map((c) => `"${c}"`).join(', ')} FROM edge ORDER BY id::int`, rowMode: 'array' })
    assert.deepEqual(rows, expectedEdgeRows().csv)
  } finally {
    await client.end()
  }
  // Python 3.13+ reads the same convention with QUOTE_NOTNULL, when one is installed.
  const modern = ['python3.13', '/root/.pyenv/versions/3.13.0/bin/python3'].find((p) => p.includes('/') ? existsSync(p) : false)
  if (modern) {
    const rows = JSON.parse(run(modern, ['-c', `import csv, json, sys\nwith open(sys.argv[1], newline='') as f: print(json.dumps(list(csv.reader(f, quoting=csv.QUOTE_NOTNULL))[1:]))`, join(path, 'exports', 'Edge.csv')]))
    assert.deepEqual(rows, expectedEdgeRows().csv)
  }
})

test('a SQLite file\'s exports are the same written by the helper thread (large files) or by this thread (small ones)', async (t) => {
  const dir = tempDir(t)
  const source = join(dir, 'awkward.db')
  createAwkwardDatabase(source)
  const db = await openDatabase(`file:${source}`, { environment: resolveEnvironment() })
  t.after(() => db.close())
  const files = async (exportThreadFromBytes: number) => {
    const backupDir = join(dir, exportThreadFromBytes === 0 ? 'thread' : 'here')
    const tool = { name: 'ia-poste-manager-test', version: '0.0.0' }
    const { metadata } = await createBackup({ db, backupDir, formats: ['sql', 'json', 'csv'], compress: false, verify: true, tool, prismaSchemaSha256: null, now: () => new Date('2026-01-21T15:30:00Z'), exportThreadFromBytes })
    return metadata.files
  }
  const onThread = await files(0)
  assert.deepEqual(onThread.filter((f) => !f.path.startsWith('exports/')).map((f) => f.path).sort(), ['data.json', 'database.db', 'export.sql'])
  assert.ok(onThread.some((f) => f.path.startsWith('exports/')))
  assert.deepEqual(await files(Number.POSITIVE_INFINITY), onThread)
})
