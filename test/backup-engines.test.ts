/**
 * PostgreSQL and D1 sources: the same verbs, each engine's database artefact restorable by the
 * engine's own tools (psql for database.sql; sqlite3 for D1's database.db and export.sql), and the
 * same logical exports.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { ENGINES, createPostgresDatabase, defer, openTestDatabase, tempDir } from './helpers/databases.ts'
import { backupSystem, checksumLines, python, run, sqliteDump, sqliteLoad, steppingClock } from './helpers/backup.ts'
import { openSqliteTableReader } from '../scripts/lib/engines/sqlite/table-reader.ts'
import { D1_SNAPSHOT_WARNING } from '../scripts/lib/engines/d1/snapshot.ts'
import type { RowValue } from '../scripts/lib/db/table-reader.ts'
import { requireJudge } from './helpers/judges.ts'

const BIG = '9223372036854775807'

/** pg_dump's view of a database, minus its version banner. */
function pgDump(url: string, args: string[]): string {
  return run('pg_dump', ['--no-owner', '--no-privileges', ...args, url])
    .split('\n')
    // The version banner, and the random key of pg_dump's \restrict guard (15.14+).
    .filter((line) => !/^(-- Dumped (from|by)|\\(un)?restrict )/.test(line))
    .join('\n')
}

test('a PostgreSQL backup lists in its warnings what database.sql does not carry (grants, owners, row-level security, triggers…), by name and count, never a value; a plain database has none', { skip: !ENGINES.includes('postgres') && 'TEST_ENGINES leaves PostgreSQL out' }, async (t) => {
  const db = await openTestDatabase(t, 'postgres')
  const system = backupSystem(t, { databaseUrl: db.url, backupDir: join(tempDir(t), 'backups'), compressionEnabled: false, now: steppingClock() })
  assert.deepEqual((await system.create()).metadata.warnings, [], 'a database as Prisma made it loses nothing')

  // Roles belong to the whole server: unique names, dropped at the end with what they hold here.
  const role = `ipm_reader_${process.pid}_${Date.now().toString(36)}`
  const owner = `ipm_owner_${process.pid}_${Date.now().toString(36)}`
  defer(t, async () => {
    await db.sql.executeScript(`DROP OWNED BY ${role}, ${owner} CASCADE; DROP ROLE IF EXISTS ${role}; DROP ROLE IF EXISTS ${owner};`).catch(() => {})
  })
  await db.sql.executeScript(`
    CREATE ROLE ${role} NOLOGIN;
    CREATE ROLE ${owner} NOLOGIN;
    GRANT SELECT ON "Client" TO ${role};
    GRANT SELECT, INSERT ON "Dossier" TO ${role}, PUBLIC;
    GRANT UPDATE ("statut") ON "Dossier" TO ${role};
    GRANT USAGE ON SCHEMA public TO ${role};
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO ${role};
    ALTER TABLE "Plan" OWNER TO ${owner};
    ALTER TABLE "Client" ENABLE ROW LEVEL SECURITY;
    CREATE POLICY tenant_isolation ON "Client" USING ("tenantId" = current_setting('app.tenant', true));
    CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
    CREATE TRIGGER client_touch BEFORE UPDATE ON "Client" FOR EACH ROW EXECUTE FUNCTION touch();
    CREATE FUNCTION on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
    CREATE EVENT TRIGGER ipm_test_ddl_${process.pid} ON ddl_command_end EXECUTE FUNCTION on_ddl();
    CREATE PUBLICATION ipm_test_pub FOR TABLE "Dossier";
    CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
    COMMENT ON TABLE "Dossier" IS 'secret-comment-value';
    COMMENT ON COLUMN "Dossier"."statut" IS 'another';
  `)
  defer(t, () => db.sql.executeScript(`DROP EVENT TRIGGER IF EXISTS ipm_test_ddl_${process.pid}`).catch(() => {}))
  const { metadata } = await system.create()
  assert.deepEqual([...metadata.warnings].sort(), [
    'database.sql n’inclut pas 1 droit(s) accordé(s) sur des colonnes de la table "Dossier" (' + role + ')',
    'database.sql n’inclut pas 1 droit(s) accordé(s) sur la table "Client" (' + role + ': SELECT)',
    'database.sql n’inclut pas 1 droit(s) accordé(s) sur le schéma "public" (' + role + ': USAGE)',
    'database.sql n’inclut pas 2 commentaire(s) sur les tables, colonnes et types (COMMENT ON)',
    'database.sql n’inclut pas 4 droit(s) accordé(s) sur la table "Dossier" (PUBLIC: INSERT, SELECT; ' + role + ': INSERT, SELECT)',
    'database.sql n’inclut pas la fonction "on_ddl"',
    'database.sql n’inclut pas la fonction "touch"',
    'database.sql n’inclut pas la politique de sécurité par ligne "tenant_isolation" de la table "Client"',
    'database.sql n’inclut pas la publication "ipm_test_pub"',
    'database.sql n’inclut pas le domaine "positive"',
    'database.sql n’inclut pas le déclencheur "client_touch"',
    `database.sql n’inclut pas le déclencheur d'événement "ipm_test_ddl_${process.pid}"`,
    `database.sql n’inclut pas le propriétaire de 1 objet(s), le rôle "${owner}" (restaurés, ils appartiennent au rôle qui restaure)`,
    'database.sql n’inclut pas le réglage de sécurité par ligne (ENABLE) de la table "Client"',
    'database.sql n’inclut pas les droits par défaut (ALTER DEFAULT PRIVILEGES) du rôle "postgres" sur les tables',
  ].sort())
  assert.doesNotMatch(JSON.stringify(metadata.warnings), /secret-comment-value|app\.tenant/, 'no value, comment text or policy expression')
})

test('a PostgreSQL backup\'s database.sql restores with psql into an empty database identical in schema and data', { skip: !ENGINES.includes('postgres') && 'TEST_ENGINES leaves PostgreSQL out' || requireJudge('pg_dump', 'psql', 'python3', 'sha256sum') }, async (t) => {
  const db = await openTestDatabase(t, 'postgres')
  await db.sql.executeScript(`
    CREATE TABLE "Extra" (
      id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      n serial,
      amount numeric(12,3) CHECK (amount >= 0),
      ratio double precision,
      data bytea,
      at timestamptz DEFAULT now(),
      tags text[],
      note text COLLATE "C",
      doubled numeric GENERATED ALWAYS AS (amount * 2) STORED,
      UNIQUE (n)
    );
    CREATE INDEX extra_partial ON "Extra" (amount) WHERE amount > 10;
    CREATE SEQUENCE standalone_seq START 100;
    SELECT nextval('standalone_seq');
    INSERT INTO "Extra" (amount, ratio, data, at, tags, note) VALUES
      (12.345, 0.1, '\\x00ff', '2026-01-21 15:30:00.123456+01', '{a,"b c"}', E'tab\\tnew\\nline \\\\N'),
      (0, 'NaN', '', '2026-01-21 15:30:00+00', '{}', ''),
      (NULL, '-Infinity', NULL, NULL, NULL, NULL);
    CREATE VIEW extra_view AS SELECT id, amount FROM "Extra";
    UPDATE "Plan" SET "maxStorageBytes" = ${BIG} WHERE id = 'plan-solo';
    UPDATE "Client" SET email = '', phone = NULL WHERE id = (SELECT min(id) FROM "Client");
  `)
  const { metadata, path } = await backupSystem(t, { databaseUrl: db.url, compressionEnabled: false, now: steppingClock() }).create()
  assert.equal(metadata.engine, 'postgres')
  assert.equal(metadata.databasePath, metadata.source)
  assert.deepEqual(readdirSync(path).sort(), ['data.json', 'database.sql', 'exports', 'metadata.json'])
  assert.deepEqual(metadata.warnings, ['database.sql n’inclut pas la vue ou vue matérialisée "extra_view"'])
  assert.equal(metadata.schema.newestMigration, '20260121153000_init')
  run('sha256sum', ['-c', '--strict', '--quiet'], { cwd: path, input: checksumLines(metadata) })

  const target = await createPostgresDatabase(t)
  run('psql', ['-v', 'ON_ERROR_STOP=1', '-q', '-X', '-d', target, '-f', join(path, 'database.sql')])
  await db.sql.executeScript('DROP VIEW extra_view')
  assert.equal(pgDump(target, ['--schema-only']), pgDump(db.url, ['--schema-only']))
  assert.equal(pgDump(target, ['--data-only']), pgDump(db.url, ['--data-only']))

  // The logical exports of the same snapshot, read by Python.
  const plan = python<{ rows: Record<string, unknown>[]; big: string }>(
    'import json, sys\nd = json.load(open(sys.argv[1], encoding="utf-8"))["tables"]["Plan"]\nprint(json.dumps({"rows": d["rows"], "big": str([r for r in d["rows"] if r["id"] == "plan-solo"][0]["maxStorageBytes"])}))',
    [join(path, 'data.json')],
  )
  assert.equal(plan.big, BIG)
  assert.equal(plan.rows.length, metadata.tables.find((t) => t.name === 'Plan')!.rows)
  assert.equal(typeof plan.rows[0]!.active, 'boolean')
  assert.match(String(plan.rows[0]!.createdAt), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/)
  const extra = python<string[][]>('import csv, json, sys\nprint(json.dumps(list(csv.reader(open(sys.argv[1], newline="", encoding="utf-8")))))', [join(path, 'exports', 'Extra.csv')])
  assert.deepEqual(extra[0], ['id', 'n', 'amount', 'ratio', 'data', 'at', 'tags', 'note'])
  assert.deepEqual(extra[1], ['1', '1', '12.345', '0.1', 'AP8=', '2026-01-21T14:30:00.123456+00:00', '{a,"b c"}', 'tab\tnew\nline \\N'])
  assert.deepEqual(extra[2]!.slice(2, 6), ['0.000', 'NaN', '', '2026-01-21T15:30:00+00:00'])
})

test('a D1 backup rebuilds database.db from D1 with exact values; export.sql and the exports agree with it', { skip: !ENGINES.includes('d1') && 'TEST_ENGINES leaves D1 out' || requireJudge('sqlite3', 'tar') }, async (t) => {
  const db = await openTestDatabase(t, 'd1')
  await db.sql.query('UPDATE "Plan" SET "maxStorageBytes" = ? WHERE id = ?', [BigInt(BIG), 'plan-solo'])
  await db.sql.query('UPDATE "Client" SET email = ?, phone = NULL WHERE "lastName" = ?', ['', 'Martin'])
  const expected = new Map<string, RowValue[][]>()
  const d1Reader = await db.openTableReader()
  for (const table of await d1Reader.tables()) {
    const rows: RowValue[][] = []
    for await (const row of d1Reader.rows(table)) rows.push(row)
    expected.set(table.name, rows)
  }
  await d1Reader.close()

  const system = backupSystem(t, { databaseUrl: db.url, now: steppingClock() })
  const { metadata } = await system.create()
  assert.equal(metadata.engine, 'd1')
  assert.deepEqual(metadata.warnings, [D1_SNAPSHOT_WARNING])
  assert.equal((await system.verify(metadata.id)).ok, true)

  const out = tempDir(t)
  run('tar', ['-xzf', join(system.backupDir, `${metadata.id}.tar.gz`), '-C', out])
  const folder = join(out, metadata.id)
  const file = join(folder, 'database.db')
  assert.equal(run('sqlite3', [file, 'PRAGMA integrity_check']).trim(), 'ok')
  const reader = openSqliteTableReader(file)
  defer(t, () => reader.close())
  const tables = await reader.tables()
  assert.deepEqual(tables.map((table) => table.name), [...expected.keys()])
  for (const table of tables) {
    const rows: RowValue[][] = []
    for await (const row of reader.rows(table)) rows.push(row)
    assert.deepEqual(rows, expected.get(table.name), table.name)
    assert.equal(metadata.tables.find((m) => m.name === table.name)!.rows, rows.length)
  }
  const loaded = join(tempDir(t), 'loaded.db')
  sqliteLoad(join(folder, 'export.sql'), loaded)
  assert.equal(sqliteDump(loaded), sqliteDump(file))
  assert.match(readFileSync(join(folder, 'data.json'), 'utf8'), new RegExp(`"maxStorageBytes": ${BIG}\\b`))
})
