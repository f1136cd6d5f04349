/**
 * The CSV, SQL and JSON exports formatted in C (engines/sqlite/extension.c) against the
 * JavaScript and SQL formatting they replace: the same bytes for random doubles (every bit pattern, powers of
 * two, short decimals), integers at the limits, booleans, blobs, text with quotes, commas, line
 * breaks, NUL and invalid UTF-8, and data.json's cabinet runs grouped by any kind of value; what is left of an abandoned export does not leak into the next
 * table; and a build without a C compiler says why and exports the same bytes in JavaScript.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { tempDir } from './helpers/databases.ts'
import { collector, seededRandom } from './helpers/backup.ts'
import { nextVersionOf } from './helpers/native.ts'
import { exportCsv, exportCsvChunks } from '../scripts/lib/backup/exporters/csv.ts'
import { exportJsonDocument } from '../scripts/lib/backup/exporters/json.ts'
import { writeSqliteScript } from '../scripts/lib/backup/exporters/sql.ts'
import { sqliteFileSnapshot } from '../scripts/lib/engines/sqlite/snapshot.ts'
import { csvChunks } from '../scripts/lib/engines/sqlite/export-format.ts'
import { compileExtension, EXTENSION_LIBRARY, EXTENSION_SOURCE, loadExtension } from '../scripts/lib/engines/sqlite/extension.ts'
import { PROJECT_ROOT } from '../scripts/lib/environment.ts'

const ROWS = 60_000

function createFuzzDatabase(path: string, seed: number): void {
  const random = seededRandom(seed)
  const bits = new DataView(new ArrayBuffer(8))
  const db = new Database(path)
  db.exec(`CREATE TABLE "Fuzz" ("flag" BOOLEAN, "any" ANY, "a,""b" TEXT, "brut")`)
  const insert = db.prepare('INSERT INTO "Fuzz" VALUES (?, ?, ?, ?)')
  const insertText = db.prepare('INSERT INTO "Fuzz" VALUES (?, CAST(? AS TEXT), ?, ?)')
  // Bytes that make text hard: CSV and SQL specials, a French accent, ’, an emoji, and pieces of invalid UTF-8.
  const textBytes = [0x22, 0x2c, 0x27, 0x0d, 0x0a, 0x00, 0x41, 0xc3, 0xa9, 0xe2, 0x80, 0x99, 0xf0, 0x9f, 0x98, 0x80, 0xed, 0xa0, 0xff, 0xc0, 0xbf, 0xf4, 0x90]
  const randomDouble = (): number => {
    bits.setUint32(0, random(2 ** 32))
    bits.setUint32(4, random(2 ** 32))
    const value = bits.getFloat64(0)
    return Number.isNaN(value) ? 0.5 : value
  }
  db.transaction(() => {
    for (let i = 0; i < ROWS; i++) {
      const flag = [null, 0n, 1n, 2n, 'true', 1.0][random(6)]
      switch (i % 6) {
        case 0: insert.run(flag, randomDouble(), null, randomDouble()); break
        case 1: insert.run(flag, (random(2) ? -1 : 1) * 2 ** (random(2098) - 1074), 'plain', null); break
        case 2: insert.run(flag, Number((random(1e9) / 10 ** random(9)).toPrecision(1 + random(17))) * 10 ** (random(60) - 30), '', 2 ** (random(200) - 100)); break
        case 3: insert.run(flag, Buffer.from(Array.from({ length: random(12) }, () => random(256))), 'a"b', Buffer.alloc(0)); break
        case 4: insertText.run(flag, Buffer.from(Array.from({ length: random(14) }, () => textBytes[random(textBytes.length)]!)), 'x,y\r\nz', 'l\'as\n'); break
        default: insert.run(flag, BigInt.asIntN(64, (BigInt(random(2 ** 32)) << 32n) | BigInt(random(2 ** 32))), null, [-(2n ** 63n), 2n ** 63n - 1n, 0n][random(3)])
      }
    }
    for (const value of [0, -0, Infinity, -Infinity, 1e21, 1e20, 1e-7, 1.5e-7, 1e-6, 5e-324, Number.MAX_VALUE, 2 ** 1023, 2 ** -1022, 0.1, 100, 1e100, 123456789.12345679]) insert.run(null, value, null, -value)
  })()
  db.close()
}

/** The first line where two files differ, to say what differs rather than that they do. */
function firstDifference(actual: Buffer, expected: Buffer): string {
  const a = actual.toString('latin1').split('\n')
  const e = expected.toString('latin1').split('\n')
  const line = a.findIndex((text, i) => text !== e[i])
  return `line ${line}: ${JSON.stringify(a[line])} instead of ${JSON.stringify(e[line])}`
}

test('the build compiled the C formatting into dist/, and a snapshot formats its CSV with it', (t) => {
  assert.ok(existsSync(join(PROJECT_ROOT, 'dist', EXTENSION_LIBRARY)), 'npm test builds dist/ first, with the machine’s C compiler')
  const path = join(tempDir(t), 'fuzz.db')
  createFuzzDatabase(path, 1)
  const snapshot = sqliteFileSnapshot('sqlite', path, [])
  t.after(() => snapshot.close())
  assert.notEqual(snapshot.csvChunks!({ name: 'Fuzz', columns: [{ name: 'flag', declaredType: 'BOOLEAN', nullable: true, primaryKeyPosition: 0 }], foreignKeys: [] }), undefined)
})

for (const [seed, groupBy] of [[1, undefined], [2, undefined], [3, 'any']] as const) {
  test(`CSV formatted in C is byte for byte the value codec's (seed ${seed}: ${ROWS} random rows${groupBy ? `, grouped by "${groupBy}", which no index sorts` : ''})`, async (t) => {
    const path = join(tempDir(t), 'fuzz.db')
    createFuzzDatabase(path, seed)
    const snapshot = sqliteFileSnapshot('sqlite', path, [])
    t.after(() => snapshot.close())
    const [table] = await snapshot.reader.tables()
    const inC = collector()
    const c = await exportCsvChunks(snapshot.csvChunks!(table!, { groupBy })!, table!.columns, inC.out)
    const inJs = collector()
    const js = await exportCsv(snapshot.rows(table!, { groupBy }), table!.columns, inJs.out, { valueCodec: snapshot.reader.valueCodec })
    assert.equal(c.rows, js.rows)
    assert.equal(c.rows, await snapshot.count(table!))
    assert.ok(inC.bytes().equals(inJs.bytes()), firstDifference(inC.bytes(), inJs.bytes()))
  })
}

for (const groupBy of [undefined, 'flag', 'any']) {
  test(`data.json formatted in C is byte for byte the value codec's${groupBy ? `, with the runs of "${groupBy}"` : ''}`, async (t) => {
    const path = join(tempDir(t), 'fuzz.db')
    createFuzzDatabase(path, 6)
    const snapshot = sqliteFileSnapshot('sqlite', path, [])
    t.after(() => snapshot.close())
    const tables = await snapshot.reader.tables()
    const write = async (inC: boolean) => {
      const { out, bytes } = collector()
      const options = { engine: 'sqlite' as const, valueCodec: snapshot.reader.valueCodec, backupId: 'b', timestamp: 't', ...(groupBy ? { groupBy: new Map([['Fuzz', groupBy]]) } : {}), ...(inC ? { formattedRows: snapshot.jsonChunks } : {}) }
      const { counts, runs } = await exportJsonDocument((table, column) => snapshot.rows(table, { groupBy: column }), tables, out, options)
      return { text: bytes(), counts, runs }
    }
    const inC = await write(true)
    const inJs = await write(false)
    assert.ok(inC.text.equals(inJs.text), firstDifference(inC.text, inJs.text))
    assert.deepEqual(inC.counts, inJs.counts)
    assert.deepEqual(inC.runs, inJs.runs)
    if (groupBy) assert.ok(inJs.runs.length >= 3, `several runs of ${groupBy}: ${inJs.runs.length}`)
    else assert.equal(inJs.runs.length, 0)
  })
}

test('export.sql formatted in C is byte for byte the lines rendered in SQL, and loads back to the same values', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'fuzz.db')
  createFuzzDatabase(path, 4)
  const write = async (formatInC: boolean) => {
    const { out, bytes } = collector()
    const counts = await writeSqliteScript(path, out, { formatInC })
    return { counts, text: bytes() }
  }
  const inC = await write(true)
  const inSql = await write(false)
  assert.deepEqual(inC.counts, inSql.counts)
  assert.equal(inC.counts.get('Fuzz'), ROWS + 17)
  assert.ok(inC.text.equals(inSql.text), firstDifference(inC.text, inSql.text))
  // Read back by SQLite: every value of the rows without invalid UTF-8 (which no UTF-8 script spells) has its type and bytes.
  const loaded = new Database(':memory:')
  t.after(() => loaded.close())
  loaded.exec(inC.text.toString('utf8'))
  const source = new Database(path, { readonly: true })
  t.after(() => source.close())
  const exact = `SELECT rowid, typeof("any") || hex("any") || typeof("brut") || hex("brut") || typeof("flag") || hex("flag") FROM "Fuzz" WHERE rowid % 6 <> 5 ORDER BY rowid`
  assert.deepEqual(loaded.prepare(exact).raw(true).all(), source.prepare(exact).raw(true).all())
})

test('records left by an export abandoned on a connection do not leak into the next table', async (t) => {
  const path = join(tempDir(t), 'fuzz.db')
  createFuzzDatabase(path, 5)
  const db = new Database(path, { readonly: true })
  t.after(() => db.close())
  assert.ok(loadExtension(db))
  const columns = [{ name: 'a,"b', declaredType: 'TEXT', nullable: true, primaryKeyPosition: 0 }]
  const abandoned = csvChunks(db, 'Fuzz', columns, ' ORDER BY rowid')!
  for (const chunk of abandoned.chunks) {
    assert.ok(chunk.length >= 256 * 1024)
    break
  }
  const whole = csvChunks(db, 'Fuzz', columns, ' ORDER BY rowid')!
  const bytes = Buffer.concat([...whole.chunks])
  assert.equal(whole.records(), ROWS + 17)
  const expected = (db.prepare(`SELECT "a,""b" FROM "Fuzz" ORDER BY rowid`).pluck().all() as (string | null)[]).map((v) => (v === null ? '' : v === '' ? '""' : /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v) + '\r\n').join('')
  assert.equal(bytes.toString('utf8'), expected)
})

test('without a C compiler the build says why, and a connection without the extension formats in JavaScript', (t) => {
  const dir = tempDir(t)
  assert.equal(compileExtension(PROJECT_ROOT, dir, { CC: 'no-such-compiler' }), 'compilateur C introuvable (no-such-compiler)')
  assert.match(compileExtension(PROJECT_ROOT, dir, { CC: 'false' }) ?? '', /^false a échoué/)
  assert.ok(!existsSync(join(dir, EXTENSION_LIBRARY)))
  const db = new Database(':memory:')
  t.after(() => db.close())
  assert.equal(loadExtension(db, join(dir, EXTENSION_LIBRARY)), false)
  assert.equal(csvChunks(db, 't', [{ name: 'a', declaredType: '', nullable: true, primaryKeyPosition: 0 }], ''), undefined)
})

test('a build of another extension.c (a git pull without npm run build) is left unused: the exports format in JavaScript', (t) => {
  const root = tempDir(t)
  const source = nextVersionOf(root, EXTENSION_SOURCE)
  assert.equal(compileExtension(root, root), undefined)
  const library = join(root, EXTENSION_LIBRARY)
  const stale = new Database(':memory:')
  t.after(() => stale.close())
  assert.equal(loadExtension(stale, library), false, 'built from another source than the project\'s')
  assert.equal(csvChunks(stale, 't', [{ name: 'a', declaredType: '', nullable: true, primaryKeyPosition: 0 }], ''), undefined)
  const current = new Database(':memory:')
  t.after(() => current.close())
  assert.equal(loadExtension(current, library, source), true, 'the same library against its own source')
})
