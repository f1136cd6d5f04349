import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { migratePostgresToSqlite } from '../scripts/lib/migration/migrate.ts'
import { runScript } from './helpers/cli.ts'
import { tempDir } from './helpers/databases.ts'
import { filesIn, schemaSource } from './helpers/migration.ts'
import { requireJudge } from './helpers/judges.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'

const LIBRARY_SCHEMA = `
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE DOMAIN positive_amount AS numeric(12,2) CHECK (VALUE > 0);
CREATE SCHEMA elsewhere;
CREATE TABLE elsewhere.country (code text PRIMARY KEY);
INSERT INTO elsewhere.country VALUES ('FR');
CREATE TABLE author (
  id serial PRIMARY KEY,
  name varchar(80) NOT NULL UNIQUE CHECK (length(name) > 0),
  uid uuid NOT NULL,
  mood mood,
  born date,
  country text REFERENCES elsewhere.country(code)
);
CREATE TABLE book (
  isbn char(13),
  edition int2,
  author_id int4 NOT NULL REFERENCES author(id) ON DELETE CASCADE,
  title text NOT NULL,
  price positive_amount,
  ratio float8,
  rating real,
  big int8,
  published timestamptz(6),
  printed timestamp(6) without time zone,
  cover bytea,
  tags text[],
  scores int4[],
  meta jsonb,
  raw json,
  in_print boolean NOT NULL DEFAULT true,
  duration interval,
  ip inet,
  title_length int GENERATED ALWAYS AS (length(title)) STORED,
  PRIMARY KEY (isbn, edition)
);
CREATE INDEX book_title_idx ON book (title DESC);
CREATE INDEX book_lower_title_idx ON book (lower(title));
CREATE UNIQUE INDEX book_big_key ON book (big) WHERE big IS NOT NULL;
CREATE TABLE node (id bigint PRIMARY KEY, parent_id bigint REFERENCES node(id) DEFERRABLE INITIALLY DEFERRED, label text);
INSERT INTO author (name, uid, mood, born, country) VALUES
  ('Émile Zola', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'sad', '1840-04-02', 'FR'),
  ('李白 😀', '00000000-0000-0000-0000-000000000000', NULL, NULL, NULL);
INSERT INTO book VALUES
  ('9782070360024', 1, 1, 'Germinal', 12.50, -0.0, 1.1, 9223372036854775807, '2026-01-21 16:30:00.123456+01', '2026-01-21 15:30:00.000001',
   '\\x00ff10', ARRAY['roman', 'mine "de" charbon', NULL, 'NULL'], '{1,-2,NULL}', '{"b": [1, 2.50, {"c": null}], "a": "é"}', ' { "spaced" : 1 } ',
   false, '1 day 02:03:04', '192.168.0.1/24'),
  ('9782070360025', 2, 2, E'tab\\there\\nnewline \\\\ backslash', NULL, 1e308, NULL, -9223372036854775808, NULL, NULL,
   '\\x', '{}', NULL, 'null', NULL, true, NULL, NULL);
INSERT INTO node VALUES (1, NULL, 'root'), (2, 1, 'child'), (3, 2, 'grandchild');
`

function sqlite3(path: string, ...args: string[]): string {
  return execFileSync('sqlite3', [path, ...args], { encoding: 'utf8' })
}

test('an arbitrary PostgreSQL schema is derived from the catalog: types, NOT NULL, keys, foreign keys, plain indexes', { skip: requireJudge('sqlite3') }, async (t) => {
  const url = await schemaSource(t, LIBRARY_SCHEMA)
  const path = join(tempDir(t), 'library.db')
  const progress: string[] = []
  const result = await migratePostgresToSqlite({ environment: resolveEnvironment(), from: url, to: path, onProgress: (e) => progress.push(`${e.label} ${e.done}/${e.total}`) })
  assert.equal(result.status, 'migrated', JSON.stringify(result.plan.problems))
  assert.equal(result.plan.schema.mode, 'derived')
  assert.deepEqual([...new Set(progress)], ['author 0/2', 'author 2/2', 'book 0/2', 'book 2/2', 'node 0/3', 'node 3/3'])
  assert.deepEqual(result.tables.map((table) => [table.table, table.targetRows, table.ok]), [['author', 2, true], ['book', 2, true], ['node', 3, true]])
  const book = result.plan.tables.find((table) => table.name === 'book')!
  assert.deepEqual(book.notCarried.sort(), ['colonne générée title_length', 'index book_big_key (un index partiel)', 'index book_lower_title_idx (un index sur expression)'])
  assert.deepEqual(result.plan.tables.find((table) => table.name === 'author')!.notCarried, ['CHECK author_name_check', 'clé étrangère (country) vers elsewhere.country, qui n’est pas copiée'])

  // The sqlite3 tool judges the schema…
  assert.equal(
    sqlite3(path, "SELECT sql || ';' FROM sqlite_master WHERE tbl_name = 'book' AND sql IS NOT NULL ORDER BY rowid"),
    `CREATE TABLE "book" (
    "isbn" TEXT NOT NULL,
    "edition" INTEGER NOT NULL,
    "author_id" INTEGER NOT NULL,
    "title" TEXT NOT NULL,
    "price" DECIMAL,
    "ratio" REAL,
    "rating" REAL,
    "big" BIGINT,
    "published" DATETIME,
    "printed" DATETIME,
    "cover" BLOB,
    "tags" JSONB,
    "scores" JSONB,
    "meta" JSONB,
    "raw" JSONB,
    "in_print" BOOLEAN NOT NULL,
    "duration" TEXT,
    "ip" TEXT,
    PRIMARY KEY ("isbn", "edition"),
    FOREIGN KEY ("author_id") REFERENCES "author" ("id") ON DELETE CASCADE ON UPDATE NO ACTION
);
CREATE INDEX "book_title_idx" ON "book"("title" DESC);
`,
  )
  assert.match(sqlite3(path, "SELECT group_concat(sql, ';\n') FROM sqlite_master WHERE tbl_name = 'author'"), /"id" INTEGER NOT NULL PRIMARY KEY,[\s\S]*CREATE UNIQUE INDEX "author_name_key" ON "author"\("name"\)$/m)
  assert.match(sqlite3(path, "SELECT sql FROM sqlite_master WHERE name = 'node'"), /FOREIGN KEY \("parent_id"\) REFERENCES "node" \("id"\) ON DELETE NO ACTION ON UPDATE NO ACTION DEFERRABLE INITIALLY DEFERRED/)
  assert.equal(sqlite3(path, 'PRAGMA integrity_check; PRAGMA foreign_key_check;'), 'ok\n')

  // …and the values, with their SQLite storage classes.
  const books = JSON.parse(
    sqlite3(
      path,
      '-json',
      `SELECT isbn, edition, typeof(edition) AS te, title, price, typeof(price) AS tp, ratio, rating, big, published, printed, hex(cover) AS cover, typeof(cover) AS tc,
              tags, scores, meta, raw, in_print, duration, ip FROM book ORDER BY isbn`,
    ),
  )
  assert.deepEqual(books, [
    {
      isbn: '9782070360024', edition: 1, te: 'integer', title: 'Germinal', price: 12.5, tp: 'real', ratio: 0, rating: 1.1, big: 9223372036854775807,
      published: '2026-01-21T15:30:00.123456+00:00', printed: '2026-01-21T15:30:00.000001+00:00', cover: '00FF10', tc: 'blob',
      tags: '["roman","mine \\"de\\" charbon",null,"NULL"]', scores: '[1,-2,null]', meta: '{"a": "é", "b": [1, 2.50, {"c": null}]}', raw: ' { "spaced" : 1 } ',
      in_print: 0, duration: '1 day 02:03:04', ip: '192.168.0.1/24',
    },
    {
      isbn: '9782070360025', edition: 2, te: 'integer', title: 'tab\there\nnewline \\ backslash', price: null, tp: 'null', ratio: 1e308, rating: null, big: -9223372036854775808,
      published: null, printed: null, cover: '', tc: 'blob', tags: '[]', scores: null, meta: 'null', raw: null, in_print: 1, duration: null, ip: null,
    },
  ])
  // Exact 64-bit integers, which JSON above cannot show: read as text by sqlite3 itself.
  assert.equal(sqlite3(path, "SELECT group_concat(big, ',') FROM (SELECT big FROM book ORDER BY isbn)"), '9223372036854775807,-9223372036854775808\n')
  assert.equal(sqlite3(path, "SELECT group_concat(id || ':' || name || ':' || uid || ':' || ifnull(mood, '-') || ':' || ifnull(born, '-') || ':' || ifnull(country, '-'), '|') FROM author"),
    '1:Émile Zola:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11:sad:1840-04-02T00:00:00.000+00:00:FR|2:李白 😀:00000000-0000-0000-0000-000000000000:-:-:-\n')
})

test('a column type SQLite cannot hold (a range, an enum array) is refused by name, before anything is written', { skip: requireJudge('sqlite3') }, async (t) => {
  const url = await schemaSource(t, `
    CREATE TYPE mood AS ENUM ('happy', 'sad');
    CREATE TABLE booking (id int PRIMARY KEY, during tstzrange, moods mood[]);
    CREATE TABLE guest (id int PRIMARY KEY, name text);
    INSERT INTO booking VALUES (1, '[2026-01-01, 2026-01-02)', '{happy}');
    INSERT INTO guest VALUES (1, 'Zoé');`)
  const dir = tempDir(t)
  const target = join(dir, 'booking.db')
  const dryRun = runScript('scripts/migrate-postgres-to-sqlite.ts', ['--from', url, '--to', target, '--dry-run'])
  assert.equal(dryRun.status, 1, dryRun.stderr)
  assert.match(dryRun.stdout, /✗ booking\.during : conversion impossible : tstzrange est un range : SQLite n’a pas de type range/)
  assert.match(dryRun.stdout, /✗ booking\.moods : conversion impossible : _mood est un tableau de type enum mood/)
  assert.match(dryRun.stderr, /^Erreur : la migration ne peut pas se faire : 2 problèmes \(listés ci-dessus\) ; rien n’a été écrit\nEssayez : .*--tables/m)
  const run = runScript('scripts/migrate-postgres-to-sqlite.ts', ['--from', url, '--to', target, '--yes'])
  assert.equal(run.status, 1)
  assert.deepEqual(filesIn(dir), [])
  // Leaving the table out is the way through.
  const subset = runScript('scripts/migrate-postgres-to-sqlite.ts', ['--from', url, '--to', target, '--yes', '--tables', 'guest'])
  assert.equal(subset.status, 0, subset.stderr)
  assert.equal(sqlite3(target, 'SELECT name FROM guest'), 'Zoé\n')
})

test('values SQLite cannot hold exactly are listed by the dry run with their keys, and refused', async (t) => {
  const url = await schemaSource(t, `
    CREATE TABLE invoice (id text PRIMARY KEY, amount numeric, due timestamp, ratio float8);
    INSERT INTO invoice VALUES ('ok', 19.99, '2026-01-21', 0.5), ('long', 12345678901234567.891, '2026-01-21', 0.5),
      ('never', 1, 'infinity', 0.5), ('nan', 1, '2026-01-21', 'NaN'), ('huge', 1e400, '2026-01-21', 1);`)
  const dir = tempDir(t)
  const result = await migratePostgresToSqlite({ environment: resolveEnvironment(), from: url, to: join(dir, 'invoice.db') })
  assert.equal(result.status, 'refused')
  assert.deepEqual(result.plan.problems.map((p) => `${p.table}.${p.column}: ${p.message}`), [
    'invoice.amount: 2 lignes avec des nombres que SQLite ne conserve pas exactement (plus de ~15 chiffres significatifs, NaN ou infini), par exemple id=huge; id=long',
    "invoice.due: 1 ligne avec des dates hors de portée du DateTime de Prisma (infini, avant l’an 1, après 9999), par exemple id=never",
    'invoice.ratio: 1 ligne avec des valeurs NaN (SQLite stocke NaN comme NULL), par exemple id=nan',
  ])
  assert.deepEqual(filesIn(dir), [])
})

test("a killed run's temporary files are removed by the next run; a live run's are left alone", async (t) => {
  const url = await schemaSource(t, `CREATE TABLE note (id int PRIMARY KEY, body text); INSERT INTO note VALUES (1, 'a');`)
  const dir = tempDir(t)
  const target = join(dir, 'notes.db')
  // A pid that no longer exists (a finished child), and this process (alive).
  const dead = spawnSync(process.execPath, ['-e', '']).pid!
  const deadFiles = [`notes.db.tmp-${dead}-abc`, `notes.db.tmp-${dead}-abc-wal`]
  const liveFile = `notes.db.tmp-${process.pid}-xyz`
  for (const name of [...deadFiles, liveFile]) writeFileSync(join(dir, name), 'half a database')
  const result = await migratePostgresToSqlite({ environment: resolveEnvironment(), from: url, to: target })
  assert.equal(result.status, 'migrated')
  assert.deepEqual(result.removedLeftovers.map((path) => basename(path)).sort(), deadFiles)
  assert.deepEqual(filesIn(dir), ['notes.db', liveFile])
})
