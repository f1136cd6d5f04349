/**
 * PostgreSQL point-in-time recovery through pgBackRest, on a private cluster archiving to a posix
 * repository in a temp folder. Proof: a writer commits numbered transactions (commit times from the
 * server's own commit timestamps); for random instants T the restored cluster holds exactly the
 * transactions committed at or before T.
 */
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { pitrBackup, pitrSetup, readPitrRange, restoreClusterAt, type PgBackRestTools, type PitrRange } from '../scripts/lib/engines/postgres/pitr.ts'
import { CLUSTER_OS_USER, chownToClusterUser, PG_BIN_DIR, privateClusterUnavailable, runAsClusterUser, startPrivateCluster, type PrivateCluster } from './helpers/pg-private-cluster.ts'
import { REPO_ROOT, runScriptAsync } from './helpers/cli.ts'
import { everyTenantChecksumAt } from './helpers/tenants.ts'
import { openDatabase } from '../scripts/lib/db/open.ts'
import { applyMigrations } from '../scripts/lib/db/migrations.ts'
import { seedDemo } from '../scripts/lib/seed/demo.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'

const PGBACKREST = '/usr/bin/pgbackrest'
const STANZA = 'test'
const RESTORE_COUNT = Number(process.env.TEST_PITR_RESTORES ?? 5)

function missingJudge(): string | undefined {
  const cluster = privateClusterUnavailable()
  if (cluster !== undefined) return cluster
  if (!existsSync(PGBACKREST)) return 'pgbackrest absent (apt-get install pgbackrest)'
  return undefined
}
const missing = missingJudge()
if (missing !== undefined && process.env.TEST_REQUIRE_ALL === '1') throw new Error(`TEST_REQUIRE_ALL=1 mais ${missing}`)

interface Commit {
  n: number
  /** Commit time in microseconds since the epoch, from pg_xact_commit_timestamp. */
  micros: bigint
}

function directorySize(path: string): number {
  let total = 0
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const full = join(path, entry.name)
    total += entry.isDirectory() ? directorySize(full) : statSync(full).size
  }
  return total
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  // A connection the server drops while the client is idle (the postmaster resets every backend after
  // the archiver's SIGKILL) is reported as an 'error' event: without a listener it is an uncaught
  // exception; with one, the next query on the client rejects and its caller decides.
  client.on('error', () => {})
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end()
  }
}

describe('PostgreSQL PITR with pgBackRest', { skip: missing }, () => {
  let cluster: PrivateCluster
  let workDir: string
  let tools: PgBackRestTools
  let commits: Commit[] = []
  let range: PitrRange
  const measures: Record<string, number> = {}

  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'ipm-pitr-'))
    chownToClusterUser(workDir)
    const configPath = join(workDir, 'pgbackrest.conf')
    cluster = await startPrivateCluster(undefined, {
      config: ['archive_mode = on', `archive_command = '${PGBACKREST} --config=${configPath} --stanza=${STANZA} archive-push %p'`, 'wal_level = replica', 'track_commit_timestamp = on'],
    })
    const plan = await pitrSetup({
      databaseUrl: cluster.url,
      repoPath: join(workDir, 'repo'),
      stanza: STANZA,
      configPath,
      searchPath: '/usr/bin',
      apply: false,
      globalOptions: [`log-path=${workDir}`, `lock-path=${workDir}/lock`, 'log-level-file=off'],
    })
    // Only the pgbackrest.conf is written here: the cluster already archives with the right command.
    writeFileSync(configPath, plan.pgbackrestConf)
    chownToClusterUser(configPath)
    tools = { pgbackrestPath: PGBACKREST, configPath, stanza: STANZA, runAs: CLUSTER_OS_USER }
  })

  after(() => {
    cluster?.stop()
    if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true })
  })

  test('pitrSetup finds nothing to change on a cluster that already archives to this stanza, and gives the stanza text', async () => {
    const plan = await pitrSetup({ databaseUrl: cluster.url, repoPath: join(workDir, 'repo'), stanza: STANZA, configPath: tools.configPath, searchPath: '/usr/bin', apply: false })
    assert.deepEqual(plan.changes, [])
    assert.equal(plan.restartNeeded, false)
    assert.equal(plan.pgbackrestPath, PGBACKREST)
    assert.match(plan.pgbackrestConf, new RegExp(`\\[${STANZA}\\]\\npg1-path=${cluster.dataDir}\\npg1-port=${cluster.port}\\npg1-socket-path=${cluster.baseDir}\\n`))
  })

  test('pitrSetup for another stanza changes only archive_command (a reload, no restart) and says how to install pgBackRest when missing', async () => {
    const plan = await pitrSetup({ databaseUrl: cluster.url, repoPath: '/srv/pgbackrest', stanza: 'autre', configPath: '/etc/pgbackrest.conf', searchPath: join(workDir, 'nothing-here'), apply: false })
    assert.deepEqual(plan.changes.map((c) => c.name), ['archive_command'])
    assert.deepEqual(plan.postgresqlConfLines, ["archive_command = 'pgbackrest --config=/etc/pgbackrest.conf --stanza=autre archive-push %p'"])
    assert.equal(plan.restartNeeded, false)
    assert.equal(plan.installHint, 'Installez pgBackRest : apt-get install pgbackrest')
    await assert.rejects(
      pitrSetup({ databaseUrl: cluster.url, repoPath: '/srv/pgbackrest', stanza: 'autre', configPath: join(workDir, 'x.conf'), searchPath: join(workDir, 'nothing-here'), apply: true }),
      (error: unknown) => error instanceof ToolkitError && /pgBackRest est introuvable/.test(error.message) && error.hint === 'Installez pgBackRest : apt-get install pgbackrest',
    )
  })

  test('a full backup, then numbered commits for some seconds across a SIGKILL of the archiver and a crash of the server; the next backup is incremental', async () => {
    const full = await pitrBackup(tools)
    assert.equal(full.type, 'full')
    assert.match(full.label, /^\d{8}-\d{6}F$/)
    assert.ok(full.databaseSizeBytes > 0 && full.repositorySizeBytes > 0)

    const repoArchive = join(workDir, 'repo', 'archive')
    const archiveBefore = directorySize(repoArchive)
    const lsnBefore = await withClient(cluster.url, async (client) => {
      await client.query('CREATE TABLE ledger (n integer PRIMARY KEY, note text NOT NULL)')
      return (await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn() AS lsn')).rows[0]!.lsn
    })
    const startedAt = performance.now()
    const durationMs = Number(process.env.TEST_PITR_WRITE_MS ?? 6000)
    let n = 0
    // ~50 tx/s: one row per transaction, paced by a 20 ms sleep between commits, until `untilMs`.
    const writeUntil = (untilMs: number) => withClient(cluster.url, async (client) => {
      while (performance.now() - startedAt < untilMs) {
        await client.query('INSERT INTO ledger (n, note) VALUES ($1, $2)', [n + 1, `dossier ${n + 1}`])
        n++
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    })
    await writeUntil(durationMs / 3)
    // A third of the way, the archiver (the process that runs archive_command) is killed by SIGKILL;
    // the postmaster restarts it (after resetting the other server processes). Writes go on once it
    // accepts connections again.
    const archiver = await withClient(cluster.url, async (client) => (await client.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE backend_type = 'archiver'`)).rows[0]!.pid)
    process.kill(archiver, 'SIGKILL')
    for (;;) {
      const restarted = await withClient(cluster.url, async (client) => (await client.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE backend_type = 'archiver'`)).rows[0]?.pid).catch(() => undefined)
      if (restarted !== undefined && restarted !== archiver) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    assert.match(readFileSync(cluster.logFile, 'utf8'), new RegExp(`archiver process \\(PID ${archiver}\\) was terminated by signal 9`))
    await writeUntil((durationMs * 2) / 3)
    // Two thirds of the way the server crashes: an immediate stop (SIGQUIT to every server process, no checkpoint,
    // crash recovery at the next start, as after a kill), then a restart. Archiving must go on with
    // no gap: the restores below cross this instant.
    runAsClusterUser(join(PG_BIN_DIR, 'pg_ctl'), ['-D', cluster.dataDir, '-m', 'immediate', '-w', 'stop'], { cwd: cluster.baseDir })
    runAsClusterUser(join(PG_BIN_DIR, 'pg_ctl'), ['-D', cluster.dataDir, '-l', cluster.logFile, '-w', '-t', '120', 'start'], { cwd: cluster.baseDir })
    assert.match(readFileSync(cluster.logFile, 'utf8'), /not properly shut down; automatic recovery in progress/, 'the restart went through crash recovery')
    await writeUntil(durationMs)
    await withClient(cluster.url, async (client) => {
      const elapsedMinutes = (performance.now() - startedAt) / 60_000
      const walBytes = (await client.query<{ bytes: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1) AS bytes', [lsnBefore])).rows[0]!.bytes
      const rows = await client.query<{ n: number; micros: string }>('SELECT n, (extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000000)::bigint AS micros FROM ledger ORDER BY n')
      commits = rows.rows.map((r) => ({ n: r.n, micros: BigInt(r.micros) }))
      const switched = (await client.query<{ wal: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS wal')).rows[0]!.wal
      // Wait until the segment holding the last commits is in the repository.
      for (;;) {
        const archived = (await client.query<{ last: string | null }>('SELECT last_archived_wal AS last FROM pg_stat_archiver')).rows[0]!.last
        if (archived !== null && archived >= switched) break
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      measures.transactions = n
      measures.txPerSecond = n / (elapsedMinutes * 60)
      measures.walBytesPerMinute = Number(walBytes) / elapsedMinutes
      measures.archiveBytesPerMinute = (directorySize(repoArchive) - archiveBefore) / elapsedMinutes
    })
    assert.ok(commits.length >= 20, `only ${commits.length} commits`)
    assert.deepEqual(commits.map((c) => c.n), commits.map((_, i) => i + 1))

    const incremental = await pitrBackup(tools)
    assert.equal(incremental.type, 'incr')
    assert.match(incremental.label, /^\d{8}-\d{6}F_\d{8}-\d{6}I$/)
  })

  test('the reachable range runs from the end of the full backup to the last archived commit', async () => {
    range = await readPitrRange({ ...tools, pgBinDir: PG_BIN_DIR, workDir })
    const lastCommitMs = Number(commits.at(-1)!.micros / 1000n)
    // The range's end is the newest commit in the archive: the backup's own transactions may follow ours.
    assert.ok(range.latest.getTime() >= lastCommitMs, `${range.latest.toISOString()} < last commit`)
    assert.ok(range.earliest.getTime() <= Number(commits[0]!.micros / 1000n) + 1000)
  })

  test(`for ${RESTORE_COUNT} random instants the restored cluster holds exactly the commits at or before T`, async () => {
    const firstMs = Math.max(range.earliest.getTime(), Number(commits[0]!.micros / 1000n))
    const lastMs = Number(commits.at(-1)!.micros / 1000n)
    const instants = [Math.floor((firstMs + lastMs) / 2)]
    while (instants.length < RESTORE_COUNT) instants.push(firstMs + Math.floor(Math.random() * (lastMs - firstMs)))
    for (const [index, ms] of instants.entries()) {
      const at = new Date(ms)
      const scratch = await restoreClusterAt({ ...tools, at, pgBinDir: PG_BIN_DIR, scratchDir: workDir })
      try {
        if (index === 0) measures.restoreMsMiddle = scratch.durationMs
        const atMicros = BigInt(ms) * 1000n
        const expected = commits.filter((c) => c.micros <= atMicros).map((c) => c.n)
        const restored = await withClient(scratch.url, async (client) => {
          assert.equal((await client.query('SELECT pg_is_in_recovery() AS r')).rows[0].r, false)
          return (await client.query<{ n: number }>('SELECT n FROM ledger ORDER BY n')).rows.map((r) => r.n)
        })
        assert.deepEqual(restored, expected, `T=${at.toISOString()}`)
        assert.ok(scratch.stoppedBefore.time.getTime() >= ms, 'recovery stopped at a commit after T')
        assert.ok(scratch.dataDir.startsWith(scratch.scratchDir) && scratch.scratchDir.startsWith(workDir))
      } finally {
        await scratch.close()
      }
      assert.equal(existsSync(scratch.scratchDir), false, 'the scratch cluster is removed')
    }
  })

  test('advanced-backup restore --at on the command line puts the state at T into another database, through the five steps', async () => {
    const firstMs = Math.max(range.earliest.getTime(), Number(commits[0]!.micros / 1000n))
    const ms = Math.floor((firstMs + Number(commits.at(-1)!.micros / 1000n)) / 2)
    const at = new Date(ms).toISOString()
    const target = cluster.urlOf('ledger_at_t')
    // The target database exists (as for any restore --to on a server): its content is replaced.
    cluster.psql('postgres', 'CREATE DATABASE ledger_at_t')
    const pgbackrest = ['--stanza', STANZA, '--pgbackrest-config', tools.configPath!, '--pg-bin-dir', PG_BIN_DIR, ...(CLUSTER_OS_USER === undefined ? [] : ['--run-as', CLUSTER_OS_USER]), '--scratch-dir', workDir]
    const result = await runScriptAsync('scripts/advanced-backup.ts', ['--dir', join(workDir, 'backups'), '--database', cluster.url, 'restore', '--at', at, '--to', target, '--yes', ...pgbackrest], { cwd: workDir })
    assert.equal(result.status, 0, result.stdout + result.stderr)
    const expected = commits.filter((c) => c.micros <= BigInt(ms) * 1000n).map((c) => c.n)
    const restored = await withClient(target, async (client) => (await client.query<{ n: number }>('SELECT n FROM ledger ORDER BY n')).rows.map((r) => r.n))
    assert.deepEqual(restored, expected, `T=${at}`)
    assert.doesNotMatch(result.stdout + result.stderr, /dossier \d+/, 'no data value printed')
    // The live database is untouched, and the scratch cluster is gone.
    const live = await withClient(cluster.url, async (client) => (await client.query<{ count: string }>('SELECT count(*) AS count FROM ledger')).rows[0]!.count)
    assert.equal(Number(live), commits.length)
    assert.deepEqual(readdirSync(workDir).filter((name) => name.startsWith('pitr-')), [])
  })

  test('an instant outside the reachable range is refused with the range, and nothing is left behind', async () => {
    const leftovers = () => readdirSync(workDir).filter((name) => name.startsWith('pitr-'))
    for (const at of [new Date(range.earliest.getTime() - 3_600_000), new Date(range.latest.getTime() + 60_000)]) {
      await assert.rejects(restoreClusterAt({ ...tools, at, pgBinDir: PG_BIN_DIR, scratchDir: workDir }), (error: unknown) => {
        assert.ok(error instanceof ToolkitError)
        assert.equal(error.message, `Instant ${at.toISOString()} hors de la plage restaurable (du ${range.earliest.toISOString()} au ${range.latest.toISOString()}, fin exclue).`)
        assert.equal(error.exitCode, 2)
        return true
      })
    }
    assert.deepEqual(leftovers(), [])
  })

  test('restore --at T --tenant puts one cabinet of the application database back as it was at T; the other cabinets keep their later work', async () => {
    cluster.psql('postgres', 'CREATE DATABASE app')
    const appUrl = cluster.urlOf('app')
    const db = await openDatabase(appUrl, { environment: resolveEnvironment({}), create: true })
    try {
      await applyMigrations(db.sql)
      await seedDemo(db.prisma)
    } finally {
      await db.close()
    }
    await withClient(appUrl, (client) => client.query(`INSERT INTO "Client" (id, "tenantId", "firstName", "lastName") VALUES ('client-avant-t', 'tenant-demo', 'Avant', 'T')`))
    const atT = await everyTenantChecksumAt(appUrl)
    const at = new Date()
    await new Promise((resolve) => setTimeout(resolve, 50))
    // After T: Cabinet Demo deletes dossiers by mistake; Cabinet Martin takes a new client.
    await withClient(appUrl, async (client) => {
      const deleted = await client.query(`DELETE FROM "Dossier" WHERE id IN (SELECT id FROM "Dossier" WHERE "tenantId" = 'tenant-demo' ORDER BY id LIMIT 4)`)
      assert.equal(deleted.rowCount, 4)
      await client.query(`INSERT INTO "Client" (id, "tenantId", "firstName", "lastName") VALUES ('client-apres-t', 'tenant-martin', 'Après', 'T')`)
      // The WAL holding these commits must be in the repository for T to be inside the reachable range.
      const switched = (await client.query<{ wal: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS wal')).rows[0]!.wal
      for (;;) {
        const archived = (await client.query<{ last: string | null }>('SELECT last_archived_wal AS last FROM pg_stat_archiver')).rows[0]!.last
        if (archived !== null && archived >= switched) break
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    })
    const beforeRestore = await everyTenantChecksumAt(appUrl)
    const pgbackrest = ['--stanza', STANZA, '--pgbackrest-config', tools.configPath!, '--pg-bin-dir', PG_BIN_DIR, ...(CLUSTER_OS_USER === undefined ? [] : ['--run-as', CLUSTER_OS_USER]), '--scratch-dir', workDir]
    const result = await runScriptAsync('scripts/advanced-backup.ts', ['--dir', join(workDir, 'backups'), '--database', appUrl, 'restore', '--at', at.toISOString(), '--tenant', 'Cabinet Demo', '--yes', ...pgbackrest], { cwd: workDir })
    assert.equal(result.status, 0, result.stdout + result.stderr)
    assert.match(result.stdout, /Cabinet « Cabinet Demo » restauré : \d+ ligne\(s\) retirée\(s\), \d+ insérée\(s\)/)
    const after = await everyTenantChecksumAt(appUrl)
    assert.equal(after.get('tenant-demo'), atT.get('tenant-demo'), 'Cabinet Demo is exactly as it was at T')
    assert.notEqual(beforeRestore.get('tenant-martin'), atT.get('tenant-martin'))
    for (const [id, sum] of beforeRestore) if (id !== 'tenant-demo') assert.equal(after.get(id), sum, `${id} keeps its state`)
    assert.deepEqual(readdirSync(workDir).filter((name) => name.startsWith('pitr-')), [], 'no scratch cluster left')
  })

  test('a restore --at killed by SIGKILL leaves its scratch cluster running; the next restore stops and removes it, and leaves a kept one alone', async () => {
    const scratchNames = () => readdirSync(workDir).filter((name) => name.startsWith('pitr-'))
    const at = new Date(Number(commits[Math.floor(commits.length / 2)]!.micros / 1000n)).toISOString()
    const pgbackrest = ['--stanza', STANZA, '--pgbackrest-config', tools.configPath!, '--pg-bin-dir', PG_BIN_DIR, ...(CLUSTER_OS_USER === undefined ? [] : ['--run-as', CLUSTER_OS_USER]), '--scratch-dir', workDir]
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'scripts/advanced-backup.ts'), '--dir', join(workDir, 'backups'), '--database', cluster.url, 'restore', '--at', at, '--to', cluster.urlOf('never_written'), '--yes', ...pgbackrest], { cwd: workDir, stdio: 'ignore' })
    const exited = new Promise((resolve) => child.once('exit', resolve))
    // Killed once the restored postmaster runs: nothing of the CLI's cleanup can happen.
    const pidFile = () => scratchNames().map((name) => join(workDir, name, 'data', 'postmaster.pid')).find((path) => existsSync(path) && readFileSync(path, 'utf8').includes('\n'))
    while (pidFile() === undefined) await new Promise((resolve) => setTimeout(resolve, 10))
    const orphan = Number(readFileSync(pidFile()!, 'utf8').split('\n')[0])
    child.kill('SIGKILL')
    await exited
    const left = scratchNames()
    assert.equal(left.length, 1)
    assert.match(left[0]!, new RegExp(`^pitr-${child.pid}-`), 'the scratch folder is named after its owner')
    const running = (pid: number) => existsSync(`/proc/${pid}/stat`) && !['Z', 'X'].includes(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0]!)
    assert.ok(running(orphan), 'the killed restore left its scratch postmaster running')

    const kept = await restoreClusterAt({ ...tools, at: new Date(at), pgBinDir: PG_BIN_DIR, scratchDir: workDir, keepScratch: true })
    assert.ok(!running(orphan), 'the next restore stopped the orphan postmaster')
    assert.deepEqual(scratchNames(), [kept.scratchDir.split('/').at(-1)])
    await kept.close()
    const keptPid = Number(readFileSync(join(kept.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
    await assert.rejects(restoreClusterAt({ ...tools, at: new Date(range.earliest.getTime() - 3_600_000), pgBinDir: PG_BIN_DIR, scratchDir: workDir }), ToolkitError)
    assert.ok(running(keptPid) && existsSync(kept.dataDir), 'a cluster kept with --keep-scratch survives the next run')
    execFileSync('bash', ['-c', kept.stopCommand])
    assert.deepEqual(scratchNames(), [])
  })

  test('an aborted restore (Ctrl-C) stops the scratch cluster and removes it', async () => {
    const controller = new AbortController()
    const at = new Date(Number(commits[Math.floor(commits.length / 2)]!.micros / 1000n))
    const restoring = restoreClusterAt({ ...tools, at, pgBinDir: PG_BIN_DIR, scratchDir: workDir, signal: controller.signal })
    // Abort once the restored postmaster runs (recovery under way), as Ctrl-C would.
    const postmasterPid = () => readdirSync(workDir).filter((name) => name.startsWith('pitr-')).map((name) => join(workDir, name, 'data', 'postmaster.pid')).find((path) => existsSync(path))
    let pidFile: string | undefined
    while ((pidFile = postmasterPid()) === undefined) await new Promise((resolve) => setTimeout(resolve, 10))
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0])
    controller.abort()
    await assert.rejects(restoring, (error: unknown) => error instanceof ToolkitError && error.exitCode === 130 && /cluster temporaire a été arrêté et supprimé/.test(error.message))
    assert.deepEqual(readdirSync(workDir).filter((name) => name.startsWith('pitr-')), [])
    // Gone or a zombie: a postmaster started by pg_ctl is re-parented, and a container's PID 1 may never reap it.
    const state = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] : undefined
    assert.ok(state === undefined || state === 'Z' || state === 'X', `the scratch postmaster is gone (state ${state})`)
  })

  after(() => {
    if (Object.keys(measures).length > 0) console.log(`# pitr-postgres measures ${JSON.stringify(measures)}`)
  })
})
