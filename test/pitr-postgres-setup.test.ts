/**
 * `pitr setup --apply` on a private cluster that does not archive yet: the managed block lands at the end
 * of postgresql.conf (owner kept), pgbackrest.conf gets the stanza, and after the restart it asks for,
 * pgBackRest's own `check` passes and the first backup is a full one.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import pg from 'pg'
import { pitrBackup, pitrSetup } from '../scripts/lib/engines/postgres/pitr.ts'
import { CLUSTER_OS_USER, chownToClusterUser, PG_BIN_DIR, privateClusterUnavailable, runAsClusterUser, startPrivateCluster } from './helpers/pg-private-cluster.ts'

const PGBACKREST = '/usr/bin/pgbackrest'
const missing = privateClusterUnavailable() ?? (existsSync(PGBACKREST) ? undefined : 'pgbackrest absent (apt-get install pgbackrest)')
if (missing !== undefined && process.env.TEST_REQUIRE_ALL === '1') throw new Error(`TEST_REQUIRE_ALL=1 mais ${missing}`)

test('pitrSetup --apply writes postgresql.conf and pgbackrest.conf; after a restart archiving works and the first backup is full', { skip: missing }, async () => {
  const cluster = await startPrivateCluster(undefined, { config: ['wal_level = minimal', 'max_wal_senders = 0'] })
  const workDir = mkdtempSync(join(tmpdir(), 'ipm-pitr-setup-'))
  chownToClusterUser(workDir)
  after(() => {
    cluster.stop()
    rmSync(workDir, { recursive: true, force: true })
  })
  const configPath = join(workDir, 'pgbackrest.conf')
  const setup = (apply: boolean) => pitrSetup({
    databaseUrl: cluster.url, repoPath: join(workDir, 'repo'), stanza: 'main', configPath, searchPath: '/usr/local/bin:/usr/bin', apply,
    globalOptions: [`log-path=${workDir}`, `lock-path=${workDir}/lock`, 'log-level-file=off'],
  })
  const command = `${PGBACKREST} --config=${configPath} --stanza=main archive-push %p`
  const plan = await setup(true)
  assert.deepEqual(plan.changes, [
    { name: 'archive_mode', current: 'off', wanted: 'on' },
    { name: 'archive_command', current: '(disabled)', wanted: command },
    { name: 'wal_level', current: 'minimal', wanted: 'replica' },
  ])
  assert.equal(plan.restartNeeded, true)
  const confFile = join(cluster.dataDir, 'postgresql.conf')
  assert.deepEqual(plan.written, [confFile, configPath])
  assert.ok(readFileSync(confFile, 'utf8').endsWith([
    '# BEGIN ia-poste-manager pitr (géré par advanced-backup pitr setup)',
    "archive_mode = 'on'",
    `archive_command = '${command}'`,
    "wal_level = 'replica'",
    '# END ia-poste-manager pitr',
    '',
  ].join('\n')))
  assert.equal(statSync(confFile).uid, statSync(cluster.dataDir).uid, 'postgresql.conf keeps its owner')
  assert.equal(readFileSync(configPath, 'utf8'), plan.pgbackrestConf)
  chownToClusterUser(configPath)

  runAsClusterUser(join(PG_BIN_DIR, 'pg_ctl'), ['-D', cluster.dataDir, '-l', cluster.logFile, '-w', 'restart'])
  const afterRestart = await setup(false)
  assert.deepEqual(afterRestart.changes, [])
  const client = new pg.Client({ connectionString: cluster.url })
  await client.connect()
  assert.equal((await client.query('SHOW archive_command')).rows[0].archive_command, command)
  await client.end()

  // A second apply changes nothing in postgresql.conf (one block, not two).
  await setup(true)
  assert.equal(readFileSync(confFile, 'utf8').split('# BEGIN ia-poste-manager pitr').length, 2)

  const tools = { pgbackrestPath: PGBACKREST, configPath, stanza: 'main', runAs: CLUSTER_OS_USER }
  const backup = await pitrBackup(tools)
  assert.equal(backup.type, 'full')
  runAsClusterUser(PGBACKREST, [`--config=${configPath}`, '--stanza=main', 'check'])
})
