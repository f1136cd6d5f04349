/**
 * Restore drills on every engine: the backup restored into a scratch database of its engine and
 * checked against what create recorded (counts and content checksums), the live database untouched,
 * the scratch database gone afterwards (also after a SIGKILL: the next drill removes it), the RTO in
 * history.jsonl and in `check`, and a failed drill alerting through a real webhook.
 */
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { setTimeout as delay } from 'node:timers/promises'
import pg from 'pg'
import { AdvancedBackupSystem } from '../scripts/lib/backup/backup-system.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'
import { tableContentChecksum } from '../scripts/lib/tenant-restore/checksum.ts'
import { ENGINES, POSTGRES_SERVER_URL, openTestDatabase, tempDir } from './helpers/databases.ts'
import { runScriptAsync } from './helpers/cli.ts'
import { startRecordingServer } from './helpers/http-recorder.ts'

const DAY = 86_400_000

function system(databaseUrl: string, backupDir: string, env: NodeJS.ProcessEnv = {}, now?: () => Date) {
  return new AdvancedBackupSystem({ databaseUrl, backupDir, environment: resolveEnvironment(env), ...(now ? { now } : {}) })
}

async function drillDatabases(): Promise<string[]> {
  const client = new pg.Client({ connectionString: POSTGRES_SERVER_URL })
  await client.connect()
  try {
    return (await client.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'ipm_drill_%'`)).rows.map((r) => r.datname)
  } finally {
    await client.end()
  }
}

for (const engine of ENGINES) {
  describe(`exercice de restauration (${engine})`, () => {
    test('restores into a scratch database, finds the recorded counts and checksums, leaves the live database and no scratch behind', async (t) => {
      const db = await openTestDatabase(t, engine)
      const work = tempDir(t, 'ipm-drill-')
      const backupDir = join(work, 'backups')
      const scratchRoot = join(work, 'scratch')
      const backups = system(db.url, backupDir)
      const { metadata } = await backups.create()
      assert.equal(metadata.formatVersion, 2)
      const plans = await tableContentChecksum({ db, table: 'Plan' })
      assert.deepEqual(metadata.contents!.find((c) => c.name === 'Plan'), { name: 'Plan', rows: 6, checksum: plans.checksum })
      const liveDossiers = await tableContentChecksum({ db, table: 'Dossier' })
      const before = engine === 'postgres' ? await drillDatabases() : []

      const result = await backups.drill({ scratchRoot })
      assert.equal(result.ok, true, JSON.stringify(result.checks))
      assert.equal(result.id, metadata.id)
      assert.equal(result.chosenBecause, 'newest-not-drilled')
      const expected = engine === 'postgres'
        ? ['restore', 'foreign-keys', 'amcheck', 'row-counts', 'checksums', 'migrations', 'queries']
        : ['restore', 'integrity', 'foreign-keys', 'row-counts', 'checksums', 'migrations', 'queries']
      assert.deepEqual(result.checks.map((c) => [c.name, c.status]), expected.map((name) => [name, 'ok']))
      assert.deepEqual(result.tables.map((t) => [t.name, t.actualRows, t.actualChecksum === t.expectedChecksum]), metadata.contents!.map((c) => [c.name, c.rows, true]))
      assert.deepEqual(result.queries.map((q) => q.status), ['passed', 'passed', 'passed', 'passed', 'passed', 'passed'])
      assert.ok(result.rtoMs !== null && result.rtoMs >= 0)

      assert.deepEqual(readdirSync(scratchRoot), [], 'the drill folder is removed')
      if (engine === 'postgres') assert.deepEqual(await drillDatabases(), before, 'the temporary database is dropped')
      assert.equal((await tableContentChecksum({ db, table: 'Dossier' })).checksum, liveDossiers.checksum, 'the live database is untouched')

      const history = readFileSync(join(backupDir, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { operation: string; id: string; result: string; rtoMs?: number })
      assert.deepEqual(history.map((h) => [h.operation, h.id, h.result]), [['create', metadata.id, 'success'], ['drill', metadata.id, 'success']])
      assert.equal(history[1]!.rtoMs, result.rtoMs)

      // The next drill without an id: every backup was drilled, so the newest again.
      assert.equal((await backups.drill({ scratchRoot })).chosenBecause, 'newest')
    })
  })
}

test('check: no successful drill within --max-drill-age is a problem once the folder is older than it; the last RTO is reported', async (t) => {
  const db = await openTestDatabase(t, 'sqlite')
  const backupDir = join(tempDir(t, 'ipm-drill-check-'), 'backups')
  const created = await system(db.url, backupDir).create()
  const at = (offsetMs: number) => () => new Date(Date.parse(created.metadata.timestamp) + offsetMs)
  const fresh = await system(db.url, backupDir, {}, at(3_600_000)).check({ maxAgeMs: 30 * DAY })
  assert.deepEqual(fresh.problems, [], 'a folder younger than 7 days is not late')
  assert.equal(fresh.lastDrill, null)
  const late = await system(db.url, backupDir, {}, at(8 * DAY)).check({ maxAgeMs: 30 * DAY })
  assert.deepEqual(late.problems.map((p) => p.kind), ['no-recent-drill'])
  assert.equal(late.problems[0]!.message, 'aucun exercice de restauration réussi depuis plus de --max-drill-age 168h00m (advanced-backup drill)')

  const drill = await system(db.url, backupDir).drill({ scratchRoot: tempDir(t) })
  assert.equal(drill.ok, true)
  const after = await system(db.url, backupDir).check({ maxAgeMs: 30 * DAY })
  assert.deepEqual(after.problems, [])
  assert.equal(after.lastDrill?.id, created.metadata.id)
  assert.equal(after.lastDrill?.rtoMs, drill.rtoMs)
  const text = await runScriptAsync('scripts/advanced-backup.ts', ['check', '--dir', backupDir, '--max-age', '30d'], { env: { DATABASE_URL: db.url } })
  assert.equal(text.status, 0, text.stderr)
  assert.match(text.stdout, /\n   Dernier exercice de restauration réussi: backup-\S+, il y a \S+, RTO mesuré \S+\n$/)
  // The age counts from the drill's end on the real clock: two quick spawns can take less than the 1 s limit, so wait past it.
  await delay(Math.max(0, Date.parse(after.lastDrill!.at) + 1_100 - Date.now()))
  const old = await runScriptAsync('scripts/advanced-backup.ts', ['check', '--dir', backupDir, '--max-age', '30d', '--max-drill-age', '1s'], { env: { DATABASE_URL: db.url } })
  assert.equal(old.status, 1)
  assert.match(old.stdout, /✗ le dernier exercice de restauration réussi \(backup-\S+, RTO \S+\) date de \S+, plus que --max-drill-age 1\.0s\n/)
})

test('a drill of a damaged backup fails, exits 1, records the failure and alerts the webhook once; the next good drill resolves it', async (t) => {
  const db = await openTestDatabase(t, 'sqlite')
  const backupDir = join(tempDir(t, 'ipm-drill-fail-'), 'backups')
  const hook = await startRecordingServer(t)
  const env = { ALERT_WEBHOOK_URL: hook.url }
  const good = await new AdvancedBackupSystem({ databaseUrl: db.url, backupDir, compressionEnabled: false, environment: resolveEnvironment(env) }).create()
  // One byte of the snapshot changed: its hash no longer matches, the restore's verification refuses it.
  const file = join(backupDir, good.metadata.id, 'database.db')
  const bytes = readFileSync(file)
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff
  writeFileSync(file, bytes)

  const failed = await runScriptAsync('scripts/advanced-backup.ts', ['drill', good.metadata.id, '--dir', backupDir], { env: { DATABASE_URL: db.url, ...env } })
  assert.equal(failed.status, 1, failed.stderr)
  assert.match(failed.stdout, /^🧪 Exercice de restauration de backup-\S+\n/)
  assert.match(failed.stdout, /\n✗ Restauration : la restauration a échoué : .*database\.db/)
  assert.match(failed.stdout, /\n❌ Exercice échoué \(RTO non mesuré\) : ce backup ne se restaure pas correctement\n   Alerte envoyée \(webhook\)\n$/)
  assert.equal(hook.requests.length, 1)
  const alert = JSON.parse(hook.requests[0]!.body.toString('utf8')) as { text: string }
  assert.match(alert.text, /L'exercice de restauration du backup backup-\S+ a échoué/)
  const last = readFileSync(join(backupDir, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { operation: string; result: string; error?: string }).at(-1)!
  assert.deepEqual([last.operation, last.result], ['drill', 'failure'])
  assert.match(last.error!, /^exercice de restauration échoué : /)

  rmSync(join(backupDir, good.metadata.id), { recursive: true })
  await system(db.url, backupDir, env).create()
  const ok = await system(db.url, backupDir, env).drill({ scratchRoot: tempDir(t) })
  assert.equal(ok.ok, true)
  assert.deepEqual(ok.alert.resolved, [`backup:drill:${backupDir}`])
  assert.equal(hook.requests.length, 2)
})

test('a drill killed by SIGKILL after restoring leaves its scratch database; the next drill removes it', { skip: !ENGINES.includes('postgres') && 'PostgreSQL is not in TEST_ENGINES' }, async (t) => {
  const db = await openTestDatabase(t, 'postgres')
  const work = tempDir(t, 'ipm-drill-kill-')
  const backupDir = join(work, 'backups')
  await system(db.url, backupDir).create()
  const before = await drillDatabases()
  const killed = await runScriptAsync('scripts/advanced-backup.ts', ['drill', '--dir', backupDir, '--database', db.url], { env: { IPM_BACKUP_KILL_AT: 'drill:restored', TMPDIR: work } }).catch((error: Error) => error)
  assert.match(String(killed), /killed by SIGKILL/)
  const leftovers = (await drillDatabases()).filter((name) => !before.includes(name))
  assert.equal(leftovers.length, 1, 'the killed drill left its database')
  assert.ok(existsSync(join(work, 'ipm-drills')) && readdirSync(join(work, 'ipm-drills')).length === 1, 'and its folder')

  const next = await runScriptAsync('scripts/advanced-backup.ts', ['drill', '--dir', backupDir, '--database', db.url, '--json'], { env: { TMPDIR: work } })
  assert.equal(next.status, 0, next.stderr)
  const result = JSON.parse(next.stdout) as { ok: boolean; cleaned: string[] }
  assert.equal(result.ok, true)
  assert.ok(result.cleaned.includes(leftovers[0]!), JSON.stringify(result.cleaned))
  assert.deepEqual((await drillDatabases()).filter((name) => !before.includes(name)), [])
  assert.deepEqual(readdirSync(join(work, 'ipm-drills')), [])
})
