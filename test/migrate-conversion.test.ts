import { test } from 'node:test'
import assert from 'node:assert/strict'
import { canonicalDecimal, conversionFor, converterFor, parsePostgresArray, UnconvertibleValueError } from '../scripts/lib/migration/conversion.ts'
import { copyTextLines, parseCopyText } from '../scripts/lib/migration/_copy-text.ts'
import Database from 'better-sqlite3'
import { TableChecksum, copyTextLine } from '../scripts/lib/migration/checksum.ts'
import { TableVerifier } from '../scripts/lib/migration/verify.ts'
import { everyTextKindTable } from './helpers/migration.ts'

async function rowsOf(chunks: Buffer[]): Promise<(string | null)[][]> {
  const all: (string | null)[][] = []
  async function* stream() {
    yield* chunks
  }
  for await (const lines of copyTextLines(stream())) all.push(...parseCopyText(lines))
  return all
}

test('COPY text rows: tabs, \\N, escapes, and chunks cut inside a row and inside a UTF-8 character', async () => {
  const text = 'a\t\\N\tline\\nbreak\\ttab\\\\slash\n\t€ emoji 😀\t\\\\N\n'
  const bytes = Buffer.from(text)
  const expected = [
    ['a', null, 'line\nbreak\ttab\\slash'],
    ['', '€ emoji 😀', '\\N'],
  ]
  assert.deepEqual(await rowsOf([bytes]), expected)
  // Every split point, including the middle of '€' (3 bytes) and '😀' (4 bytes).
  for (let cut = 1; cut < bytes.length; cut++) {
    assert.deepEqual(await rowsOf([bytes.subarray(0, cut), bytes.subarray(cut)]), expected, `cut at byte ${cut}`)
  }
})

test('decimals: exact integers up to 64 bits, exact floats, and a clear refusal of what a REAL cannot hold', () => {
  const decimal = converterFor('decimal')
  assert.equal(decimal.toSqlite('19.990000000000000000000000000000'), 19.99)
  assert.equal(decimal.toSqlite('9223372036854775807'), 9223372036854775807n)
  assert.equal(decimal.toSqlite('-9223372036854775808.000'), -9223372036854775808n)
  assert.equal(decimal.toSqlite('0.000000000000000000000000000001'), 1e-30)
  assert.equal(decimal.toSqlite('1e+30'), 1e30)
  assert.throws(() => decimal.toSqlite('12345678901234567.891'), UnconvertibleValueError)
  assert.throws(() => decimal.toSqlite('9223372036854775808.5'), /ne peut pas être conservé exactement/)
  assert.throws(() => decimal.toSqlite('NaN'), /NaN/)
  assert.equal(canonicalDecimal('19.9900'), canonicalDecimal('19.99'))
  assert.equal(canonicalDecimal('-0.000'), '0')
  assert.equal(canonicalDecimal('1e+21'), canonicalDecimal('1000000000000000000000'))
  assert.notEqual(canonicalDecimal('0.1'), canonicalDecimal('0.10000000000000001'))
})

test("dates: Prisma's SQLite form, microseconds kept, PostgreSQL's text rebuilt for the checksum, infinity and BC refused", () => {
  const timestamp = converterFor('datetime', { kind: 'base', name: 'timestamp' })
  const timestamptz = converterFor('datetime', { kind: 'base', name: 'timestamptz' })
  const date = converterFor('datetime', { kind: 'base', name: 'date' })
  assert.equal(timestamp.toSqlite('2026-01-21 15:30:00'), '2026-01-21T15:30:00.000+00:00')
  assert.equal(timestamp.toSqlite('2026-01-21 15:30:00.12'), '2026-01-21T15:30:00.120+00:00')
  assert.equal(timestamptz.toSqlite('2026-01-21 15:30:00.123456+00'), '2026-01-21T15:30:00.123456+00:00')
  assert.equal(date.toSqlite('2026-01-21'), '2026-01-21T00:00:00.000+00:00')
  for (const [converter, text] of [[timestamptz, '2026-01-21 15:30:00.123456+00'], [timestamp, '2026-01-21 15:30:00.1'], [timestamp, '0001-01-01 00:00:00'], [date, '2026-01-21']] as const) {
    assert.equal(converter.canonicalFromSqlite(converter.toSqlite(text) as string), text)
  }
  assert.notEqual(date.canonicalFromSqlite('2026-01-21T00:00:00.001+00:00'), '2026-01-21')
  assert.notEqual(timestamp.canonicalFromSqlite('2026-01-21T15:30:00.000+01:00'), '2026-01-21 15:30:00')
  assert.throws(() => timestamp.toSqlite('infinity'), /infinity/)
  assert.throws(() => timestamp.toSqlite('0044-03-15 12:00:00 BC'), /avant l’an 1/)
  assert.throws(() => timestamptz.toSqlite('2026-01-21 15:30:00+01'), /n’est pas dans la forme ISO attendue/)
})

test('arrays of base types become JSON; ranges, composites and arrays of enums are refused with a reason', () => {
  const text = { kind: 'base', name: 'text' } as const
  const arrayOf = (name: string) => ({ kind: 'array', name: `_${name}`, element: { kind: 'base', name }, delimiter: ',' }) as const
  assert.deepEqual(parsePostgresArray('{a,"b c",NULL,"NULL","q\\"uote",{x}}'), ['a', 'b c', null, 'NULL', 'q"uote', ['x']])
  assert.equal(converterFor('array', arrayOf('text')).toSqlite('{a,"b c",NULL}'), '["a","b c",null]')
  assert.equal(converterFor('array', arrayOf('int8')).toSqlite('{{1,2},{3,-4}}'), '[[1,2],[3,-4]]')
  assert.equal(converterFor('array', arrayOf('bool')).toSqlite('{t,f,NULL}'), '[true,false,null]')
  assert.throws(() => converterFor('array', arrayOf('text')).toSqlite('[0:1]={a,b}'), /bornes explicites/)
  assert.deepEqual(conversionFor({ kind: 'array', name: '_text', element: text, delimiter: ',' }), { kind: 'array', sqliteType: 'JSONB' })
  const refusals = [
    conversionFor({ kind: 'range', name: 'int4range' }),
    conversionFor({ kind: 'composite', name: 'address' }),
    conversionFor({ kind: 'array', name: '_Mood', element: { kind: 'enum', name: 'Mood' }, delimiter: ',' }),
  ]
  for (const refusal of refusals) assert.ok('unsupported' in refusal && refusal.unsupported.length > 20, JSON.stringify(refusal))
  assert.deepEqual(conversionFor({ kind: 'enum', name: 'Role' }), { kind: 'text', sqliteType: 'TEXT' })
  assert.deepEqual(conversionFor({ kind: 'base', name: 'timestamptz', domain: 'moment' }), { kind: 'datetime', sqliteType: 'DATETIME' })
})

test('checksum lines escape values exactly as COPY does', () => {
  assert.equal(copyTextLine(['a\tb', null, 'back\\slash', 'nl\n\r', '\u0001raw', '']), 'a\\tb\t\\N\tback\\\\slash\tnl\\n\\r\t\u0001raw\t\n')
})

test('canonical forms tell a stored value of the wrong type from the right one', () => {
  assert.notEqual(converterFor('integer').canonicalFromSqlite(5), converterFor('integer').canonicalFromPostgres('5'))
  assert.equal(converterFor('integer').canonicalFromSqlite(5n), '5')
  assert.notEqual(converterFor('text').canonicalFromSqlite(12n), converterFor('text').canonicalFromPostgres('12'))
  assert.equal(converterFor('boolean').canonicalFromSqlite(1n), 't')
  assert.notEqual(converterFor('boolean').canonicalFromSqlite(1), 't')
  assert.equal(converterFor('json').canonicalFromSqlite(1.5), converterFor('json').canonicalFromPostgres('1.50'))
  assert.equal(converterFor('bytes').canonicalFromSqlite(Buffer.from([0, 255])), '\\x00ff')
})

test("the target's checksum, rebuilt from what SQLite holds, equals the source's COPY lines; a wrong type or form breaks it", () => {
  const db = new Database(':memory:')
  const { spec, create } = everyTextKindTable('t')
  db.exec(create)
  // PostgreSQL's text of each row, and what the copy stores for it.
  const rows: (string | null)[][] = [
    ['plain', '9223372036854775807', 't', '\\x00ff', '2026-01-21 15:30:00.12', '2026-01-21 15:30:00.123456+00', '2026-01-21'],
    ['tab\there\nnl\\back\r\b\f\v\u0001 😀', '-9223372036854775808', 'f', '\\x', '0001-01-01 00:00:00', '9999-12-31 23:59:59.999+00', '1900-02-28'],
    [null, null, null, null, null, null, null],
    ['', '0', 't', '\\x5c', '2026-01-21 15:30:00.000001', '2026-01-21 15:30:00+00', '2000-01-01'],
  ]
  const converters = spec.columns.map((c) => converterFor(c.kind, c.type))
  const insert = db.prepare('INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)')
  const expected = new TableChecksum()
  for (const row of rows) {
    insert.run(row.map((text, i) => (text === null ? null : converters[i]!.toSqlite(text))))
    expected.addLine(copyTextLine(row))
  }
  const verified = new TableVerifier(db, spec).result()
  assert.deepEqual(verified, { rows: 4, checksum: expected.digest() })
  // A value of the wrong type, or a date not in the stored form, breaks it.
  for (const change of [`UPDATE t SET i = '5' WHERE rowid = 1`, `UPDATE t SET b = 2 WHERE rowid = 1`, `UPDATE t SET ts = '2026-01-21 15:30:00.120' WHERE rowid = 1`, `UPDATE t SET x = 'text' WHERE rowid = 4`]) {
    const copy = new Database(db.serialize())
    copy.exec(change)
    assert.notEqual(new TableVerifier(copy, spec).result().checksum, verified.checksum, change)
  }
})
