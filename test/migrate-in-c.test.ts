/**
 * The migration's per-row work in C (extension.c's copy_text_insert and copy_text_line, through
 * migration/copy-text-in-c.ts) against the JavaScript it stands for (conversion.ts, checksum.ts):
 * random COPY lines of every kind the C converts (text with escapes, line breaks and invalid UTF-8,
 * 64-bit integers, booleans, bytea, the three date types) give the same stored values and types;
 * a line only JavaScript converts, refuses, or that breaks a constraint is left to it, not
 * inserted; and the verification's lines built in C from any stored value, of the expected type or
 * not, hash to the bytes JavaScript builds.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import Database from 'better-sqlite3'
import { seededRandom } from './helpers/backup.ts'
import { lineOffset, parseCopyText } from '../scripts/lib/migration/_copy-text.ts'
import { TableChecksum, copyTextLine } from '../scripts/lib/migration/checksum.ts'
import { converterFor, type Converter, type SqliteValue } from '../scripts/lib/migration/conversion.ts'
import { canonicalLinesReader, copyLinesInserter } from '../scripts/lib/migration/copy-text-in-c.ts'
import { TableVerifier } from '../scripts/lib/migration/verify.ts'
import { everyTextKindTable } from './helpers/migration.ts'
import { hasExtension } from '../scripts/lib/engines/sqlite/extension.ts'

const { spec: SPEC, create: CREATE } = everyTextKindTable('T')
const INSERT = 'INSERT INTO "T" ("s", "i", "b", "x", "ts", "tz", "d") VALUES (?, ?, ?, ?, ?, ?, ?)'
const converters: Converter[] = SPEC.columns.map((c) => converterFor(c.kind, c.type))

/** Random COPY lines (raw bytes, as PostgreSQL sends them, plus a few it never writes), one field per column of SPEC. */
function randomLines(seed: number, count: number): Buffer {
  const random = seededRandom(seed)
  const pick = <T>(items: readonly T[]): T => items[random(items.length)]!
  const digits = (n: number) => Array.from({ length: n }, () => String(random(10))).join('')
  // Pieces of text: COPY's escapes, accents, an emoji, U+2028, controls, and bytes of invalid UTF-8.
  const textPieces: (string | Buffer)[] = ['a', 'Dossier ', '\\t', '\\n', '\\r', '\\b', '\\f', '\\v', '\\\\', '\\\\N', 'é', '’', '😀', '\u2028', '\u0001', ' ', ',', '"', "'", Buffer.from([0xc3]), Buffer.from([0xe2, 0x80]), Buffer.from([0xff]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xf0, 0x9f, 0x98])]
  // Escapes PostgreSQL does not write (octal, hex, any letter): left to JavaScript.
  const rareTextPieces = ['\\101', '\\x41', '\\q', '\\']
  const field = (column: number): string | Buffer => {
    if (random(12) === 0) return '\\N'
    switch (column) {
      case 0: {
        if (random(40) === 0) return pick(rareTextPieces)
        const parts: Buffer[] = []
        for (let n = random(6); n > 0; n--) {
          const piece = pick(textPieces)
          parts.push(typeof piece === 'string' ? Buffer.from(piece) : piece)
        }
        return Buffer.concat(parts)
      }
      case 1:
        return pick([() => '9223372036854775807', () => '-9223372036854775808', () => '0', () => '-0', () => '00123', () => digits(1 + random(18)), () => `-${digits(1 + random(19))}`, () => digits(19), () => '1e3', () => ''])()
      case 2:
        return pick(['t', 'f', 'f', 't', 'x', '', 'true'])
      case 3: {
        if (random(30) === 0) return pick(['\\\\x0', '\\\\xzz', '\\\\x0G'])
        const bytes = Array.from({ length: random(6) }, () => random(256).toString(16).padStart(2, '0')).join('')
        return `\\\\x${random(2) === 0 ? bytes : bytes.toUpperCase()}`
      }
      default: {
        const date = `${String(1 + random(9999)).padStart(4, '0')}-${String(1 + random(12)).padStart(2, '0')}-${String(1 + random(28)).padStart(2, '0')}`
        const time = `${String(random(24)).padStart(2, '0')}:${String(random(60)).padStart(2, '0')}:${String(random(60)).padStart(2, '0')}`
        const fraction = random(2) === 0 ? '' : `.${digits(1 + random(6))}`
        const suffix = pick(['', '', '+00', '+00:00'])
        return pick([`${date}${suffix}`, `${date} ${time}${suffix}`, `${date} ${time}${fraction}${suffix}`, `${date} 00:00:00${suffix}`, `${date} ${time}.000000${suffix}`])
      }
    }
  }
  const lines: Buffer[] = []
  for (let r = 0; r < count; r++) {
    const fields = SPEC.columns.map((_, column) => field(column))
    lines.push(Buffer.concat(fields.flatMap((f, i) => [...(i > 0 ? [Buffer.from('\t')] : []), typeof f === 'string' ? Buffer.from(f) : f]).concat(Buffer.from('\n'))))
  }
  return Buffer.concat(lines)
}

/** The JavaScript of copy.ts: each row parsed and converted by conversion.ts, inserted by better-sqlite3. */
function insertInJavaScript(db: Database.Database, lines: Buffer): void {
  const insert = db.prepare(INSERT)
  for (const row of parseCopyText(lines)) insert.run(row.map((text, i) => (text === null ? null : converters[i]!.toSqlite(text))))
}

/** What `copy.ts` does with the extension: lines in C, and the line it leaves (and the ones after it) in JavaScript, one at a time. */
function insertInC(db: Database.Database, lines: Buffer): { inC: number; inJavaScript: number } {
  const insertLines = copyLinesInserter(db, INSERT, converters)
  assert.ok(insertLines !== undefined && hasExtension(db), 'the extension is built (npm run build) and loaded')
  let inC = 0
  let inJavaScript = 0
  let rest = lines
  while (rest.length > 0) {
    const inserted = insertLines(rest)
    inC += inserted
    rest = rest.subarray(lineOffset(rest, inserted))
    if (rest.length === 0) break
    const next = lineOffset(rest, 1)
    insertInJavaScript(db, rest.subarray(0, next))
    inJavaScript++
    rest = rest.subarray(next)
  }
  return { inC, inJavaScript }
}

/** Every stored value with its type and bytes, row by row. */
function stored(db: Database.Database): unknown[] {
  const columns = SPEC.columns.map((c) => `typeof("${c.name}") || ':' || coalesce(hex("${c.name}"), '')`).join(', ')
  return db.prepare(`SELECT ${columns} FROM "T" ORDER BY rowid`).raw(true).all()
}

/** Lines JavaScript can convert (the rows conversion.ts refuses are tested apart). */
function convertible(lines: Buffer): Buffer {
  const kept: Buffer[] = []
  let at = 0
  while (at < lines.length) {
    const end = lines.indexOf(0x0a, at) + 1
    const line = lines.subarray(at, end)
    at = end
    try {
      for (const row of parseCopyText(line)) row.forEach((text, i) => text !== null && converters[i]!.toSqlite(text))
      kept.push(line)
    } catch {}
  }
  return Buffer.concat(kept)
}

for (const seed of [1, 2, 3]) {
  test(`COPY lines inserted in C store the values and types JavaScript stores (seed ${seed})`, () => {
    const lines = convertible(randomLines(seed, 20_000))
    const inJs = new Database(':memory:')
    const inC = new Database(':memory:')
    for (const db of [inJs, inC]) db.exec(CREATE)
    insertInJavaScript(inJs, lines)
    const { inC: byC, inJavaScript } = insertInC(inC, lines)
    assert.deepEqual(stored(inC), stored(inJs))
    // The C did the work; JavaScript only the lines with escapes PostgreSQL never writes or bytea it spells oddly.
    assert.ok(byC > 18_000 && inJavaScript > 0, `${byC} lines in C, ${inJavaScript} in JavaScript`)
  })
}

test('a line JavaScript refuses, or one that breaks a constraint, is left to it and not inserted', () => {
  const db = new Database(':memory:')
  db.exec(CREATE)
  db.exec('CREATE UNIQUE INDEX "T_s" ON "T" ("s")')
  const insertLines = copyLinesInserter(db, INSERT, converters)!
  const good = (s: string) => `${s}\t1\tt\t\\\\x00\t2026-01-21 15:30:00\t2026-01-21 15:30:00+00\t2026-01-21\n`
  for (const [refused, why] of [
    [`r1\t1\tt\t\\\\x00\tinfinity\t\\N\t\\N\n`, 'an infinite timestamp'],
    [`r2\t1\tt\tnot hex\t\\N\t\\N\t\\N\n`, 'a bytea without \\x'],
    [`r3\t1\tt\n`, 'too few fields'],
    [`r4\t1\tt\t\\N\t\\N\t\\N\t\\N\textra\n`, 'too many fields'],
    [good('a'), 'a duplicate of the unique "s"'],
  ]) {
    db.exec('DELETE FROM "T"')
    db.exec(`INSERT INTO "T" ("s") VALUES ('a')`)
    const lines = Buffer.from(good('before') + refused + good('after'))
    assert.equal(insertLines(lines), 1, why)
    assert.deepEqual(db.prepare('SELECT "s" FROM "T" ORDER BY rowid').pluck().all(), ['a', 'before'], why)
  }
})

test('the verification lines built in C from any stored value hash like the JavaScript ones, step by step', () => {
  const db = new Database(':memory:')
  db.exec(CREATE)
  insertInC(db, convertible(randomLines(4, 5_000)))
  // Values no copy stores, of every type in every column: text with invalid UTF-8, reals, integers out of place, blobs, other date forms.
  const odd = ['CAST(X\'C3FF41\' AS TEXT)', '1.5', '-0.0', '1e300', '5', '2', 'X\'00FF\'', "X''", "''", "'t'", "'2026-01-21T15:30:00.123+00:00'", "'2026-01-21T00:00:00.000+00:00'", "'2026-01-21T15:30:00.123456+00:00'", "'2026-01-21 15:30:00'", "'2026-01-21T15:30:00.12+00:00'", "'\\x00'", 'CAST(X\'0009000A\' AS TEXT)']
  for (const value of odd) for (const column of SPEC.columns) db.exec(`INSERT INTO "T" ("${column.name}") VALUES (${value})`)
  const expected = new TableChecksum()
  const select = db.prepare(`SELECT ${SPEC.columns.map((c) => `"${c.name}"`).join(', ')} FROM "T" ORDER BY rowid`).raw(true).safeIntegers(true)
  for (const row of select.iterate() as IterableIterator<SqliteValue[]>) expected.addLine(copyTextLine(row.map((value, i) => (value === null ? null : converters[i]!.canonicalFromSqlite(value)))))
  assert.ok(canonicalLinesReader(db, 'T', SPEC.columns.map((c) => c.name), converters, 'rowid') !== undefined, 'the verifier builds its lines in C')
  const verifier = new TableVerifier(db, SPEC)
  // Steps that end inside a chunk and past the end, as commits come.
  for (const upTo of [1, 7, 2_000, 4_999, 5_050]) verifier.readUpTo(upTo)
  assert.deepEqual(verifier.result(), { rows: expected.rows, checksum: expected.digest() })
})
