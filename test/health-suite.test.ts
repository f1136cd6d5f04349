import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { ENGINES, POSTGRES_SERVER_URL, tempDir } from './helpers/databases.ts'
import { databaseUrl, snapshotTables } from './helpers/health.ts'
import { PROJECT_ROOT, resolveEnvironment } from '../scripts/lib/environment.ts'
import { openDatabase } from '../scripts/lib/db/open.ts'
import type { EngineName } from '../scripts/lib/db/url.ts'
import { runHealthSuite, type RunHealthSuiteOptions } from '../scripts/lib/health/suite.ts'
import { resolveHealthTargets, type HealthTarget } from '../scripts/lib/health/targets.ts'
import { hasNoSchema } from '../scripts/lib/health/checks.ts'
import { createTemporaryRows, newMarker } from '../scripts/lib/health/_marker.ts'
import type { CheckResult, EngineResult } from '../scripts/lib/health/results.ts'

const environment = resolveEnvironment({})

function run(engine: EngineName, url: string, options: Partial<RunHealthSuiteOptions> = {}) {
  const targets: HealthTarget[] = [{ engine, kind: 'configured', url, source: 'test' }]
  return runHealthSuite({ targets, environment, cwd: process.cwd(), ...options })
}

/** check → status, the shape most assertions need. */
function statuses(result: EngineResult): Record<string, string> {
  return Object.fromEntries(result.checks.map((check) => [check.check, check.status]))
}

function check(result: EngineResult, name: CheckResult['check']): CheckResult {
  return result.checks.find((c) => c.check === name)!
}

const ALL_PASSED = {
  connect: 'passed', migrations: 'passed', 'read-plans': 'passed', 'relation-query': 'passed', 'write-read-delete': 'passed', rollback: 'passed',
}

for (const engine of ENGINES) {
  describe(`health suite on ${engine}`, () => {
    test('every check passes on a migrated, seeded database, which is left exactly as it was', async (t) => {
      const url = await databaseUrl(t, engine)
      const before = await snapshotTables(url)
      const report = await run(engine, url)
      const [result] = report.engines
      assert.ok(result)
      assert.deepEqual(statuses(result), ALL_PASSED, JSON.stringify(result.checks, null, 2))
      assert.equal(result.status, 'passed')
      assert.deepEqual(report.summary, { passed: 6, failed: 0, skipped: 0, ok: true })
      assert.deepEqual(result.notes, [])
      assert.match(result.serverVersion ?? '', { sqlite: /^SQLite 3\.\d+\.\d+$/, postgres: /^PostgreSQL \d+\.\d+/, d1: /^workerd 1\.\d+\.\d+ \(Miniflare 4\.\d+\.\d+\)$/ }[engine])
      assert.equal(check(result, 'migrations').detail, '1 migration appliquée, aucune en attente (dernière : 20260121153000_init)')
      assert.equal(check(result, 'read-plans').detail, '6 plans: business, cabinet, decouverte, entreprise, pro, solo')
      assert.equal(check(result, 'relation-query').detail, '6 cabinets avec plan et compteurs (8 utilisateurs), 9 dossiers avec client et cabinet')
      if (engine === 'd1') {
        assert.match(check(result, 'write-read-delete').detail!, /en instructions séparées \(D1 n’a pas de transactions interactives\)$/)
        assert.match(check(result, 'rollback').detail!, /vérifié avec batch\(\)/)
      } else {
        assert.equal(check(result, 'write-read-delete').detail, '5 lignes liées écrites, relues, supprimées, en une transaction')
        assert.equal(check(result, 'rollback').detail, 'une transaction annulée ne laisse rien derrière elle')
      }
      for (const c of result.checks) assert.ok(c.ms > 0 && Number.isFinite(c.ms), `${c.check} took ${c.ms} ms`)
      assert.deepEqual(await snapshotTables(url), before, 'every row of every table is as it was')
    })

    test('an unmigrated database fails the migration check, is not migrated, and gets no test rows', async (t) => {
      const url = await databaseUrl(t, engine, { migrate: false })
      const report = await run(engine, url, { prepareLocalD1: false })
      const [result] = report.engines
      assert.ok(result)
      assert.deepEqual(statuses(result), {
        connect: 'passed', migrations: 'failed', 'read-plans': 'failed', 'relation-query': 'failed', 'write-read-delete': 'skipped', rollback: 'skipped',
      })
      assert.equal(report.summary.ok, false)
      const migrations = check(result, 'migrations')
      assert.equal(migrations.error, 'aucune migration appliquée ; 1 en attente (20260121153000_init)')
      assert.match(migrations.hint!, /^Appliquez les migrations du dépôt.*npm run db:migrate -- --database "/)
      assert.match(check(result, 'read-plans').error!, /La table `[a-z]+\.Plan` n’existe pas dans la base\. \(P2021\)$/)
      assert.equal(check(result, 'rollback').detail, 'non lancé : le schéma n’est pas à jour (voir migrations), aucune ligne de test n’est écrite')
      const db = await openDatabase(url, { environment: resolveEnvironment() })
      try {
        assert.equal(await hasNoSchema(db.sql), true, 'the health check created nothing')
      } finally {
        await db.close()
      }
    })
  })
}

test('a fresh local D1 is given the schema and the demo data once; a later run only checks it', { skip: !ENGINES.includes('d1') }, async (t) => {
  const url = `d1://local/${join(tempDir(t), 'state')}`
  const first = (await run('d1', url)).engines[0]!
  assert.deepEqual(statuses(first), ALL_PASSED, JSON.stringify(first.checks, null, 2))
  assert.equal(first.notes.length, 1)
  assert.match(first.notes[0]!, /^le D1 local de .*state n’avait pas de schéma : 1 migration appliquée et données de démo chargées \(6 plans, 6 cabinets, 9 dossiers\)$/)
  const second = (await run('d1', url)).engines[0]!
  assert.deepEqual(statuses(second), ALL_PASSED)
  assert.deepEqual(second.notes, [])
})

test('a dossier whose client belongs to another cabinet fails the relation query', async (t) => {
  const url = await databaseUrl(t, 'sqlite')
  const db = await openDatabase(url, { environment: resolveEnvironment() })
  await db.sql.query(`INSERT INTO "Client" (id, "tenantId", "firstName", "lastName") VALUES ('client-martin-x', 'tenant-martin', 'Paul', 'Autre')`)
  await db.sql.query(`UPDATE "Dossier" SET "clientId" = 'client-martin-x' WHERE id = 'dossier-demo-1'`)
  await db.close()
  const result = (await run('sqlite', url)).engines[0]!
  assert.equal(check(result, 'relation-query').status, 'failed')
  assert.equal(check(result, 'relation-query').error, 'le dossier dossier-demo-1 appartient au cabinet tenant-demo mais son client client-martin-x au cabinet tenant-martin')
  assert.equal(result.status, 'failed')
})

test('a migrated database without plans fails "read plans" with a hint', async (t) => {
  const url = await databaseUrl(t, 'sqlite', { seed: false })
  const result = (await run('sqlite', url)).engines[0]!
  assert.deepEqual(statuses(result), { ...ALL_PASSED, 'read-plans': 'failed' })
  assert.equal(check(result, 'read-plans').error, 'aucun plan : la table Plan est vide')
  assert.match(check(result, 'read-plans').hint!, /npm run db:seed -- --database "file:/)
})

test('read-only: the write checks are skipped and the file is not written to', async (t) => {
  const url = await databaseUrl(t, 'sqlite')
  const before = await snapshotTables(url)
  const report = await run('sqlite', url, { readOnly: true })
  const result = report.engines[0]!
  assert.deepEqual(statuses(result), { ...ALL_PASSED, 'write-read-delete': 'skipped', rollback: 'skipped' })
  assert.equal(check(result, 'rollback').detail, 'non lancé : lecture seule (--read-only)')
  assert.deepEqual(report.summary, { passed: 4, failed: 0, skipped: 2, ok: true })
  assert.deepEqual(await snapshotTables(url), before)
})

test('the rows of a run killed more than 10 minutes ago are removed; a recent run’s are left alone', async (t) => {
  const url = await databaseUrl(t, 'sqlite')
  const now = new Date('2026-01-21T15:30:00Z')
  const old = newMarker(new Date(now.getTime() - 11 * 60_000))
  const recent = newMarker(new Date(now.getTime() - 60_000))
  const db = await openDatabase(url, { environment: resolveEnvironment() })
  await createTemporaryRows(db.prisma, old)
  await createTemporaryRows(db.prisma, recent)
  await db.close()
  const result = (await run('sqlite', url, { now: () => now })).engines[0]!
  assert.equal(check(result, 'write-read-delete').status, 'passed')
  assert.match(check(result, 'write-read-delete').detail!, /; 5 lignes restées d’une exécution interrompue supprimée\(s\)$/)
  const after = await snapshotTables(url)
  const ids = (table: string) => after[table]!.map((row) => String(row[0])).filter((id) => id.startsWith('__healthcheck__'))
  for (const table of ['Plan', 'Tenant', 'User', 'Client', 'Dossier']) assert.deepEqual(ids(table), [recent], table)
})

test('a configured PostgreSQL that is unreachable fails its connect check, and so does one that refuses us', { skip: !ENGINES.includes('postgres') }, async () => {
  const unreachable = (await run('postgres', 'postgresql://someone:topsecret@127.0.0.1:1/app')).engines[0]!
  assert.equal(unreachable.status, 'failed')
  assert.deepEqual(statuses(unreachable), {
    connect: 'failed', migrations: 'skipped', 'read-plans': 'skipped', 'relation-query': 'skipped', 'write-read-delete': 'skipped', rollback: 'skipped',
  })
  assert.match(check(unreachable, 'connect').error!, /^injoignable : PostgreSQL postgresql:\/\/someone:\*\*\*\*@127\.0\.0\.1:1\/app : connexion impossible : .*ECONNREFUSED/)
  assert.doesNotMatch(JSON.stringify(unreachable), /topsecret/)

  const missing = new URL(POSTGRES_SERVER_URL)
  missing.pathname = '/ipm_no_such_database'
  const refused = (await run('postgres', missing.toString())).engines[0]!
  assert.equal(refused.status, 'failed')
  assert.deepEqual(statuses(refused), {
    connect: 'failed', migrations: 'skipped', 'read-plans': 'skipped', 'relation-query': 'skipped', 'write-read-delete': 'skipped', rollback: 'skipped',
  })
  assert.match(check(refused, 'connect').error!, /la base "ipm_no_such_database" n’existe pas/)
})

describe('which databases are checked', () => {
  const cwd = '/app'
  const targets = (env: NodeJS.ProcessEnv, options: Parameters<typeof resolveHealthTargets>[0] extends infer O ? Partial<O> : never = {}) =>
    resolveHealthTargets({ environment: resolveEnvironment(env), cwd, ...options })

  test('by default: SQLite prisma/dev.db, the local D1, and PostgreSQL skipped as not configured', () => {
    assert.deepEqual(targets({}), [
      { engine: 'sqlite', kind: 'configured', url: `file:${join(PROJECT_ROOT, 'prisma', 'dev.db')}`, source: 'default' },
      { engine: 'postgres', kind: 'not-configured', reason: 'non configuré : POSTGRES_URL n’est pas défini', hint: 'Définissez POSTGRES_URL (ou passez --postgres <url>) pour contrôler une base PostgreSQL.' },
      { engine: 'd1', kind: 'configured', url: 'd1://local', source: 'default' },
    ])
  })

  test('DATABASE_URL, POSTGRES_URL, D1_URL and the flags choose the databases; --only keeps the canonical order', () => {
    assert.deepEqual(targets({ DATABASE_URL: 'postgresql://app@db/app' }).map((target) => [target.engine, target.kind, 'url' in target ? target.url : target.kind === 'not-configured' ? target.reason : '']), [
      ['sqlite', 'not-configured', 'non configuré : DATABASE_URL désigne PostgreSQL, pas un fichier SQLite'],
      ['postgres', 'configured', 'postgresql://app@db/app'],
      ['d1', 'configured', 'd1://local'],
    ])
    assert.deepEqual(
      targets({ POSTGRES_URL: 'postgresql://a@b/c', D1_URL: 'd1://local/x' }, { only: ['d1', 'postgres'], postgres: 'postgresql://flag@host/db' }),
      [
        { engine: 'postgres', kind: 'configured', url: 'postgresql://flag@host/db', source: '--postgres' },
        { engine: 'd1', kind: 'configured', url: 'd1://local/x', source: 'D1_URL' },
      ],
    )
  })

  test('a remote D1 needs its token; a URL of the wrong engine fails the connect check', async () => {
    const [remote] = targets({ D1_URL: 'd1://account-1/database-1' }, { only: ['d1'] })
    assert.deepEqual(remote, {
      engine: 'd1', kind: 'not-configured',
      reason: 'D1 distant d1://account-1/database-1 (D1_URL) : jeton d’API requis : CLOUDFLARE_D1_TOKEN n’est pas défini',
      hint: 'Définissez CLOUDFLARE_D1_TOKEN, ou vérifiez le D1 local avec --d1 d1://local.',
    })
    assert.deepEqual(targets({ D1_URL: 'd1://account-1/database-1', CLOUDFLARE_D1_TOKEN: 't' }, { only: ['d1'] })[0]!.kind, 'configured')

    const wrong = targets({ POSTGRES_URL: 'file:./other.db' }, { only: ['postgres'] })
    assert.deepEqual(wrong, [{ engine: 'postgres', kind: 'invalid', source: 'POSTGRES_URL', error: 'POSTGRES_URL n’est pas une URL PostgreSQL : file:./other.db', hint: 'Utilisez postgresql://user@host:5432/db.' }])
    const report = await runHealthSuite({ targets: [...wrong, ...targets({}, { only: ['postgres'] }), remote!], environment, cwd })
    assert.deepEqual(report.engines.map((engine) => [engine.label, engine.status, check(engine, 'connect').status]), [
      ['PostgreSQL', 'failed', 'failed'],
      ['PostgreSQL', 'skipped', 'skipped'],
      ['D1', 'skipped', 'skipped'],
    ])
    assert.equal(report.engines[1]!.reason, 'non configuré : POSTGRES_URL n’est pas défini')
    assert.deepEqual(report.summary, { passed: 0, failed: 1, skipped: 17, ok: false })
  })
})
