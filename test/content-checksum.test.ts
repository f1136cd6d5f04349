/**
 * The content checksum of a table (what create records in metadata `contents` and drills, cross-
 * engine restores and tenant restores compare) is one value whichever way it is computed: streamed
 * row by row, summed on one connection, or split in rowid chunks across helper threads — and
 * python3, reading the SQLite file itself, computes the same from the documented rules.
 */
import assert from 'node:assert/strict'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import Database from 'better-sqlite3'
import { checksumInC, checksumOnConnection, sqliteContentChecksum, startSqliteContentChecksums } from '../scripts/lib/engines/sqlite/content-checksum.ts'
import { loadExtension } from '../scripts/lib/engines/sqlite/extension.ts'
import { RowSetChecksum } from '../scripts/lib/tenant-restore/row-hash.ts'
import { openSqliteTableReader } from '../scripts/lib/engines/sqlite/table-reader.ts'
import { canonicalizer, checksumRows, checksumRowSource, tableChecksum } from '../scripts/lib/tenant-restore/rows.ts'
import type { RowValue } from '../scripts/lib/db/table-reader.ts'
import { python, seededRandom } from './helpers/backup.ts'
import { requireJudge } from './helpers/judges.ts'
import { tempDir } from './helpers/databases.ts'

const COLUMNS = `"id" TEXT NOT NULL PRIMARY KEY, "texte" TEXT, "entier" INTEGER, "reel" REAL, "octets" BLOB, "quand" DATETIME, "actif" BOOLEAN, "rowid" TEXT, "Émoji" TEXT`
const KINDS = { id: 'text', texte: 'text', entier: 'integer', reel: 'real', octets: 'bytes', quand: 'datetime', actif: 'boolean', rowid: 'text', Émoji: 'text' }

// [texte, entier, reel, octets, quand, actif, rowid, Émoji]: NULL against '', integers beyond 2^53, blobs
// (empty too), unicode, the escapes of a COPY line, reals of every shape, dates in several spellings, and
// SQLite's dynamic typing (an integer in a TEXT column, a text in an INTEGER one, a real in a TEXT one).
const AWKWARD: RowValue[][] = [
  [null, null, null, null, null, null, null, null],
  ['', '', 0.1, Buffer.alloc(0), '', 0n, '', ''],
  ['tab\there\nnew line\\ back\rcr\bbs\fff\vvt', 9007199254740993n, 1e20, Buffer.from([0, 255, 10, 9]), '2026-01-21T15:30:00.120+00:00', 1n, 'r', '😀 e\u0301 日本'],
  [42n, -9223372036854775808n, -0, Buffer.from('blob'), '2026-01-21 16:30:00.12+01', 2n, null, 'ß'],
  [3.0, 9223372036854775807n, 3.0, 'texte dans un BLOB', '2026-01-21T23:30:00.5-08:30', 0n, 'x', null],
  [1.5e300, 'pas un entier', 1e-7, null, '2026-01-21T15:30:00Z', null, null, '\\N'],
  [-0, 12345678901234567890n.toString(), 123.456, Buffer.from('é'), '2026-01-21', 1n, 'é', 'NULL'],
  ['5e-324', 1n, 5e-324, null, '2026-01-21T15:30', null, null, null],
  [null, null, Infinity, null, 'pas une date', null, null, null],
  [null, null, -Infinity, null, 1700000000000n, null, null, null],
  [null, null, 1e21, null, '2026-01-21T15:30:00.000000', null, null, null],
  [null, null, 0.000001, null, '2026-01-21T15:30:00.', null, null, null],
]

function awkwardDatabase(dir: string): string {
  const path = join(dir, 'awkward.db')
  const db = new Database(path)
  db.exec(`CREATE TABLE "Awkward" (${COLUMNS}); CREATE TABLE "SansRowid" (${COLUMNS}) WITHOUT ROWID`)
  const insert = (table: string) => db.prepare(`INSERT INTO "${table}" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
  db.transaction(() => {
    AWKWARD.forEach((row, i) => {
      insert('Awkward').run(`awkward-${i}`, ...row)
      insert('SansRowid').run(`awkward-${i}`, ...row)
    })
    // Enough rows for many chunks, with gaps in the rowids.
    for (let i = 0; i < 3000; i++) insert('Awkward').run(`row-${i}`, `ligne ${i}\t${'à'.repeat(i % 5)}`, BigInt(i) * 3_000_000_000_000n, i / 7, Buffer.from([i % 256]), `2026-${String((i % 12) + 1).padStart(2, '0')}-15T12:00:00.${i % 1000}+00:00`, BigInt(i % 2), null, i % 3 === 0 ? null : '')
  })()
  db.exec(`DELETE FROM "Awkward" WHERE _rowid_ % 17 = 0`)
  db.close()
  return path
}

// The rules of canonical.ts / values.ts / migration/checksum.ts, written again in Python from their documentation.
const JUDGE = String.raw`
import base64, hashlib, json, math, re, sqlite3, sys
from datetime import datetime, timedelta
path, table, kinds = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
con = sqlite3.connect('file:' + path + '?mode=ro', uri=True)
columns = [r[1] for r in con.execute('PRAGMA table_info("%s")' % table)]
def js_number(x):
    if x != x: return 'NaN'
    if x == math.inf: return 'Infinity'
    if x == -math.inf: return '-Infinity'
    if x == 0: return '0'
    sign = '-' if x < 0 else ''
    m = re.fullmatch(r'(\d+)(?:\.(\d+))?(?:e([+-]\d+))?', repr(abs(x)))
    ip, fp, e = m.group(1), m.group(2) or '', int(m.group(3) or 0)
    lead = len(ip + fp) - len((ip + fp).lstrip('0'))
    digits = (ip + fp).lstrip('0').rstrip('0')
    n, k = len(ip) + e - lead, len(digits)
    if k <= n <= 21: s = digits + '0' * (n - k)
    elif 0 < n <= 21: s = digits[:n] + '.' + digits[n:]
    elif -6 < n <= 0: s = '0.' + '0' * (-n) + digits
    else: s = digits[0] + ('.' + digits[1:] if k > 1 else '') + 'e' + ('+' if n - 1 >= 0 else '-') + str(abs(n - 1))
    return sign + s
def real_text(x):
    if x != x: return 'NaN'
    if x == 0 and math.copysign(1, x) < 0: return '-0.0'
    s = js_number(x)
    return s + '.0' if re.fullmatch(r'-?\d+', s) else s
def export_text(v, kind):
    if v is None: return None
    if isinstance(v, int): return ('true' if v == 1 else 'false') if kind == 'boolean' and v in (0, 1) else str(v)
    if isinstance(v, float): return real_text(v)
    if isinstance(v, bytes): return base64.b64encode(v).decode()
    return v
DT = re.compile(r'(\d{4,})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:\.(\d+))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?', re.ASCII)
def canonical_datetime(t):
    m = DT.fullmatch(t)
    if m is None: return t
    y, mo, d, h, mi, s, frac, zone = m.group(1), m.group(2), m.group(3), m.group(4) or '00', m.group(5) or '00', m.group(6) or '00', m.group(7) or '', m.group(8)
    date, time = '%s-%s-%s' % (y, mo, d), '%s:%s:%s' % (h, mi, s)
    if zone is not None and zone != 'Z' and not re.fullmatch(r'[+-]00(:?00)?', zone):
        digits = zone[1:].replace(':', '')
        offset = (-1 if zone[0] == '-' else 1) * (int(digits[0:2]) * 60 + int(digits[2:4] or '0'))
        utc = datetime(int(y), int(mo), int(d)) + timedelta(hours=int(h), minutes=int(mi) - offset, seconds=int(s))
        date, time = utc.strftime('%Y-%m-%d'), utc.strftime('%H:%M:%S')
    kept = frac.rstrip('0')
    return date + ' ' + time + ('.' + kept if kept else '')
def canonical(v, kind):
    t = export_text(v, kind)
    if t is None: return None
    if kind == 'real': return js_number(float(t))
    if kind == 'datetime': return canonical_datetime(t)
    return t
def escape(t):
    for a, b in (('\\', '\\\\'), ('\b', '\\b'), ('\f', '\\f'), ('\n', '\\n'), ('\r', '\\r'), ('\t', '\\t'), ('\v', '\\v')):
        t = t.replace(a, b)
    return t
order = sorted(range(len(columns)), key=lambda i: columns[i])
header = '\t'.join(columns[i] for i in order) + '\n'
total, rows = 0, 0
for row in con.execute('SELECT %s FROM "%s"' % (', '.join('"%s"' % c for c in columns), table)):
    values = [canonical(row[i], kinds[columns[i]]) for i in order]
    line = '\t'.join('\\N' if v is None else escape(v) for v in values) + '\n'
    total = (total + int(hashlib.sha256((header + line).encode()).hexdigest(), 16)) % (1 << 256)
    rows += 1
print(json.dumps({'rows': rows, 'checksum': 'sum256:%064x' % total}))
`

test('a table’s content checksum is the same streamed, on one connection, split across threads, and by python3 reading the file (awkward values)', { skip: requireJudge('python3') }, async (t) => {
  const path = awkwardDatabase(tempDir(t))
  const reader = openSqliteTableReader(path)
  const db = new Database(path, { readonly: true })
  const judges = new Map<string, { rows: number; checksum: string }>()
  try {
    for (const table of await reader.tables()) {
      const judge = python<{ rows: number; checksum: string }>(JUDGE, [path, table.name, JSON.stringify(KINDS)])
      assert.equal(judge.rows, table.name === 'Awkward' ? AWKWARD.length + 3000 - Math.floor((AWKWARD.length + 3000) / 17) : AWKWARD.length)
      const streamed = await checksumRowSource(table.columns, 'sqlite', reader.rows(table))
      assert.deepEqual(streamed, judge, `${table.name}: streamed = python3`)
      assert.deepEqual(checksumOnConnection(db, table).result(), judge, `${table.name}: one connection`)
      assert.deepEqual(await tableChecksum(reader, table), judge, `${table.name}: the reader's own (what create records)`)
      // The tenant restore's path: canonical rows first, then the sum.
      const canonical = canonicalizer(table.columns, 'sqlite')
      const rows: RowValue[][] = []
      for await (const row of reader.rows(table)) rows.push(row)
      assert.deepEqual(checksumRows(table.columns.map((c) => c.name), rows.map(canonical)), judge, `${table.name}: canonical rows`)
      // Small chunks, many of them, taken by this thread and a helper; then by helpers alone.
      assert.deepEqual(await sqliteContentChecksum(db, path, table, { threadsFromRows: 1, chunkRows: 97 }), judge, `${table.name}: split`)
      if (availableParallelism() > 1) {
        assert.deepEqual(await sqliteContentChecksum(db, path, table, { threadsFromRows: 1, chunkRows: 97, helpersOnly: true }), judge, `${table.name}: helper threads only`)
        // One chunk for the whole table: still one helper, which takes it.
        assert.deepEqual(await sqliteContentChecksum(db, path, table, { threadsFromRows: 1, chunkRows: 1_000_000, helpersOnly: true }), judge, `${table.name}: one chunk, one helper`)
      }
      judges.set(table.name, judge)
    }
    // Every table in one run, its helpers started at once (a drill, during the restore's check), this thread joining later.
    const tables = await reader.tables()
    const run = startSqliteContentChecksums(db, path, tables, { threadsFromRows: 1, chunkRows: 97, early: true })
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.deepEqual(Object.fromEntries(await run.finish()), Object.fromEntries(judges), 'all tables in one early run')
  } finally {
    db.close()
    await reader.close()
  }
})

test('split checksums cover sparse rowids (up to 2^63 - 1) without one chunk per rowid', { skip: requireJudge('python3') }, async (t) => {
  const path = join(tempDir(t), 'sparse.db')
  const db = new Database(path)
  db.exec(`CREATE TABLE "Sparse" ("id" INTEGER PRIMARY KEY, "v" TEXT)`)
  const insert = db.prepare(`INSERT INTO "Sparse" VALUES (?, ?)`)
  for (const id of [-9223372036854775808n, -5n, 0n, 1n, 2n ** 40n, 9223372036854775806n, 9223372036854775807n]) insert.run(id, `v${id}`)
  try {
    const table = (await openSqliteTableReader(path).tables())[0]!
    const judge = python<{ rows: number; checksum: string }>(JUDGE, [path, 'Sparse', JSON.stringify({ id: 'integer', v: 'text' })])
    assert.equal(judge.rows, 7)
    assert.deepEqual(await sqliteContentChecksum(db, path, table, { threadsFromRows: 1, chunkRows: 1 }), judge)
  } finally {
    db.close()
  }
})

test('the C sum (extension.c) is the JavaScript sum on random rows, and leaves to JavaScript the values only it canonicalises', async (t) => {
  const path = join(tempDir(t), 'random.db')
  const random = seededRandom(7)
  const bits = new DataView(new ArrayBuffer(8))
  const db = new Database(path)
  db.exec(`CREATE TABLE "Clean" (${COLUMNS}); CREATE TABLE "Mixed" (${COLUMNS})`)
  const bytes = [0x5c, 0x08, 0x0c, 0x0a, 0x0d, 0x09, 0x0b, 0x41, 0xc3, 0xa9, 0xe2, 0x80, 0x99, 0xed, 0xa0, 0xff, 0x00, 0x22]
  const randomDouble = () => {
    bits.setUint32(0, random(2 ** 32))
    bits.setUint32(4, random(2 ** 32))
    const value = bits.getFloat64(0)
    return Number.isNaN(value) ? 2 ** (random(200) - 100) : value
  }
  const date = () => `2026-0${1 + random(9)}-1${random(10)}${' T'[random(2)]}1${random(10)}:3${random(10)}:0${random(10)}${['', '.5', '.120', '.000', '.123456'][random(5)]}${['', 'Z', '+00:00'][random(3)]}`
  const insertText = (table: string) => db.prepare(`INSERT INTO "${table}" VALUES (?, CAST(? AS TEXT), ?, ?, ?, ?, ?, ?, ?)`)
  db.transaction(() => {
    for (let i = 0; i < 20_000; i++) {
      const row = [
        `id-${i}`, Buffer.from(Array.from({ length: random(12) }, () => bytes[random(bytes.length)]!)),
        BigInt.asIntN(64, (BigInt(random(2 ** 32)) << 32n) | BigInt(random(2 ** 32))),
        [randomDouble(), BigInt(random(2 ** 31)) * 4_000_000_000n, null, -0, Infinity][random(5)],
        [Buffer.from(Array.from({ length: random(9) }, () => random(256))), null, 'texte'][random(3)],
        [date(), null, 1_700_000_000_000n, 1.5][random(4)],
        [0n, 1n, 2n, null][random(4)], null, i % 3 === 0 ? null : '',
      ]
      insertText('Clean').run(...row)
      insertText('Mixed').run(...row)
    }
    // What only JavaScript canonicalises: a date with an offset, a real column holding text (the column "rowid" hides that name).
    db.prepare(`UPDATE "Mixed" SET "quand" = '2026-01-21 16:30:00.12+01' WHERE _rowid_ = 5000`).run()
    db.prepare(`UPDATE "Mixed" SET "reel" = 'douze' WHERE _rowid_ = 15000`).run()
  })()
  db.close()

  const reader = openSqliteTableReader(path)
  t.after(() => reader.close())
  const tables = new Map((await reader.tables()).map((table) => [table.name, table]))
  const inJavaScript = new Database(path, { readonly: true })
  t.after(() => inJavaScript.close())
  const inC = new Database(path, { readonly: true })
  t.after(() => inC.close())
  assert.ok(loadExtension(inC), 'npm test builds dist/ with the extension')
  for (const name of ['Clean', 'Mixed']) {
    const table = tables.get(name)!
    const expected = checksumOnConnection(inJavaScript, table).result()
    assert.equal(expected.rows, 20_000)
    const whole = checksumInC(inC, table)
    if (name === 'Clean') {
      assert.ok(whole !== undefined, 'every value of Clean is summed in C')
      const sum = new RowSetChecksum(table.columns.map((c) => c.name))
      sum.merge(whole)
      assert.deepEqual(sum.result(), expected)
    } else {
      assert.equal(whole, undefined, 'Mixed holds values only JavaScript canonicalises')
      // The chunks around those rows are summed in JavaScript, the others in C, by helper threads too.
      assert.equal(checksumInC(inC, table, { alias: '_rowid_', from: 1n, to: 4000n }) !== undefined, true)
      assert.equal(checksumInC(inC, table, { alias: '_rowid_', from: 4001n, to: 6000n }), undefined)
      assert.equal(checksumInC(inC, table, { alias: '_rowid_', from: 14001n, to: 16000n }), undefined)
    }
    assert.deepEqual(checksumOnConnection(inC, table).result(), expected)
    const split = await startSqliteContentChecksums(inC, path, [table], { threadsFromRows: 1000, chunkRows: 1000 }).finish()
    assert.deepEqual(split.get(name), expected)
  }
  // The row hashes of the CPU's SHA instructions (where it has them, as here: sha_ni) and of the portable C sum alike.
  const clean = tables.get('Clean')!
  const expected = checksumOnConnection(inJavaScript, clean).result()
  for (const portable of [true, false]) {
    if (portable) process.env.TOOLKIT_PORTABLE_SHA256 = '1'
    else delete process.env.TOOLKIT_PORTABLE_SHA256
    const fresh = new Database(path, { readonly: true })
    t.after(() => fresh.close())
    assert.ok(loadExtension(fresh))
    assert.deepEqual(checksumOnConnection(fresh, clean).result(), expected, portable ? 'portable SHA-256' : 'SHA instructions')
  }
})
