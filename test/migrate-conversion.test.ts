import { test } from 'node:test'
import assert from 'node:assert/strict'
import { canonicalDecimal, conversionFor, converterFor, parsePostgresArray, UnconvertibleValueError } from '../scripts/lib/migration/conversion.ts'
import { copyTextRows } from '../scripts/lib/migration/_copy-text.ts'

async function rowsOf(chunks: Buffer[]): Promise<(string | null)[][]> {
  const all: (string | null)[][] = []
  async function* stream() {
    yield* chunks
  }
  for await (const batch of copyTextRows(stream())) all.push(...batch)
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
  assert.throws(() => decimal.toSqlite('9223372036854775808.5'), /cannot be held exactly/)
  assert.throws(() => decimal.toSqlite('NaN'), /NaN/)
  assert.equal(canonicalDecimal('19.9900'), canonicalDecimal('19.99'))
  assert.equal(canonicalDecimal('-0.000'), '0')
  assert.equal(canonicalDecimal('1e+21'), canonicalDecimal('1000000000000000000000'))
  assert.notEqual(canonicalDecimal('0.1'), canonicalDecimal('0.10000000000000001'))
})

test("dates: Prisma's SQLite form, microseconds kept, infinity and BC refused", () => {
  const datetime = converterFor('datetime')
  assert.equal(datetime.toSqlite('2026-01-21 15:30:00'), '2026-01-21T15:30:00.000+00:00')
  assert.equal(datetime.toSqlite('2026-01-21 15:30:00.12'), '2026-01-21T15:30:00.120+00:00')
  assert.equal(datetime.toSqlite('2026-01-21 15:30:00.123456+00'), '2026-01-21T15:30:00.123456+00:00')
  assert.equal(datetime.toSqlite('2026-01-21'), '2026-01-21T00:00:00.000+00:00')
  for (const text of ['2026-01-21 15:30:00.123456+00', '2026-01-21 15:30:00.1', '2026-01-21']) {
    assert.equal(datetime.canonicalFromSqlite(datetime.toSqlite(text) as string), datetime.canonicalFromPostgres(text))
  }
  assert.throws(() => datetime.toSqlite('infinity'), /infinity/)
  assert.throws(() => datetime.toSqlite('0044-03-15 12:00:00 BC'), /before year 1/)
  assert.throws(() => datetime.toSqlite('2026-01-21 15:30:00+01'), /expected ISO form/)
})

test('arrays of base types become JSON; ranges, composites and arrays of enums are refused with a reason', () => {
  const text = { kind: 'base', name: 'text' } as const
  assert.deepEqual(parsePostgresArray('{a,"b c",NULL,"NULL","q\\"uote",{x}}'), ['a', 'b c', null, 'NULL', 'q"uote', ['x']])
  assert.equal(converterFor('array', text).toSqlite('{a,"b c",NULL}'), '["a","b c",null]')
  assert.equal(converterFor('array', { kind: 'base', name: 'int8' }).toSqlite('{{1,2},{3,-4}}'), '[[1,2],[3,-4]]')
  assert.equal(converterFor('array', { kind: 'base', name: 'bool' }).toSqlite('{t,f,NULL}'), '[true,false,null]')
  assert.throws(() => converterFor('array', text).toSqlite('[0:1]={a,b}'), /explicit bounds/)
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

test('canonical forms tell a stored value of the wrong type from the right one', () => {
  assert.notEqual(converterFor('integer').canonicalFromSqlite(5), converterFor('integer').canonicalFromPostgres('5'))
  assert.equal(converterFor('integer').canonicalFromSqlite(5n), '5')
  assert.notEqual(converterFor('text').canonicalFromSqlite(12n), converterFor('text').canonicalFromPostgres('12'))
  assert.equal(converterFor('boolean').canonicalFromSqlite(1n), converterFor('boolean').canonicalFromPostgres('t'))
  assert.equal(converterFor('json').canonicalFromSqlite(1.5), converterFor('json').canonicalFromPostgres('1.50'))
  assert.equal(converterFor('bytes').canonicalFromSqlite(Buffer.from([0, 255])), converterFor('bytes').canonicalFromPostgres('\\x00ff'))
})
