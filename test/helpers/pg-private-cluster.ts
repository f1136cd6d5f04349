/**
 * A private PostgreSQL 15 cluster for the tests that need server settings the shared server on
 * 5432 must keep (shared_preload_libraries, archiving): initdb into a temp dir, pg_ctl on a free
 * port, Unix socket in the temp dir, listening on 127.0.0.1 only. PostgreSQL refuses to run as
 * root, so as root the cluster runs as `postgres` (the temp dir is handed to it). The shared
 * server is never touched. Stopped and removed after the test, also when it fails.
 *
 * @example
 * const cluster = await startPrivateCluster(t, { config: ["shared_preload_libraries = 'pg_stat_statements'"] })
 * cluster.psql('postgres', 'CREATE DATABASE app')
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { defer } from './databases.ts'
import { openDatabase } from '../../scripts/lib/db/open.ts'
import type { DatabaseHandle } from '../../scripts/lib/db/connection.ts'
import { applyMigrations } from '../../scripts/lib/db/migrations.ts'
import { resolveEnvironment } from '../../scripts/lib/environment.ts'
import { seedDemo } from '../../scripts/lib/seed/demo.ts'

export const PG_BIN_DIR = process.env.TEST_PG_BIN_DIR ?? '/usr/lib/postgresql/15/bin'
const INSTALL = 'apt-get install postgresql-15 postgresql-contrib'

/** The OS user the cluster runs as: `postgres` when the tests run as root, else ourselves. */
export const CLUSTER_OS_USER = process.getuid?.() === 0 ? 'postgres' : undefined

export interface PrivateCluster {
  /** `postgresql://postgres@127.0.0.1:<port>/postgres` (trust authentication, local only). */
  url: string
  port: number
  /** The cluster's data directory (postgresql.conf, pg_wal…). */
  dataDir: string
  /** The temp dir holding dataDir, the socket and the server log; removed by stop(). */
  baseDir: string
  logFile: string
  /** The URL of another database of this cluster. */
  urlOf(database: string): string
  /** Runs `psql` against a database of the cluster; returns its standard output. */
  psql(database: string, sql: string, args?: string[]): string
  /** Stops the cluster and removes its folder; runs once (also the test's cleanup when a test was given). */
  stop(): void
}

export interface PrivateClusterOptions {
  /** Lines appended to `postgresql.conf` (`shared_preload_libraries = 'pg_stat_statements'`, `archive_mode = on`…). */
  config?: readonly string[]
}

/**
 * Why a private cluster cannot start here, with the install command; undefined when it can. With
 * TEST_REQUIRE_ALL=1 a missing initdb is an error, not a skip (.ci/run installs every judge).
 */
export function privateClusterUnavailable(): string | undefined {
  if (existsSync(join(PG_BIN_DIR, 'initdb'))) return undefined
  const reason = `${join(PG_BIN_DIR, 'initdb')} is missing: a private PostgreSQL cluster cannot be started (${INSTALL})`
  if (process.env.TEST_REQUIRE_ALL === '1') throw new Error(`${reason}; TEST_REQUIRE_ALL=1 forbids skipping`)
  return reason
}

/** Runs a command as the cluster's OS user; throws with its output when it fails. */
export function runAsClusterUser(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): string {
  const [file, fileArgs] = CLUSTER_OS_USER === undefined ? [command, args] : ['runuser', ['-u', CLUSTER_OS_USER, '--', command, ...args]]
  const result = spawnSync(file, fileArgs, { encoding: 'utf8', env: { ...process.env, ...options.env }, cwd: options.cwd, timeout: options.timeoutMs ?? 120_000 })
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status ?? result.signal}): ${result.stderr}${result.stdout}`)
  return result.stdout
}

/** Gives a path we created to the cluster's OS user (a no-op when we are not root). */
export function chownToClusterUser(path: string): void {
  if (CLUSTER_OS_USER === undefined) return
  const id = (flag: string) => spawnSync('id', [flag, CLUSTER_OS_USER], { encoding: 'utf8' })
  const [uid, gid] = [id('-u'), id('-g')]
  if (uid.status !== 0 || gid.status !== 0) throw new Error(`running as root needs a "${CLUSTER_OS_USER}" user to own the cluster (${INSTALL} creates it)`)
  chownSync(path, Number(uid.stdout.trim()), Number(gid.stdout.trim()))
}

/**
 * Starts a fresh cluster. Given a test (`t`), the cluster is stopped when it ends; without one
 * (a suite's `before` hook) the caller calls stop() in its `after`.
 */
export async function startPrivateCluster(t: Pick<TestContext, 'after'> | undefined, options: PrivateClusterOptions = {}): Promise<PrivateCluster> {
  const baseDir = mkdtempSync(join(tmpdir(), 'ipm-pgcluster-'))
  chownToClusterUser(baseDir)
  chmodSync(baseDir, 0o700)
  const dataDir = join(baseDir, 'data')
  const logFile = join(baseDir, 'server.log')
  let stopped = false
  const stop = () => {
    if (stopped) return
    stopped = true
    try {
      // The cluster is thrown away: no checkpoint needed.
      if (existsSync(join(dataDir, 'postmaster.pid'))) runAsClusterUser(join(PG_BIN_DIR, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], { cwd: baseDir })
    } finally {
      rmSync(baseDir, { recursive: true, force: true })
    }
  }
  if (t !== undefined) defer(t, stop)
  try {
    runAsClusterUser(join(PG_BIN_DIR, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C.UTF-8'], { cwd: baseDir })
    const port = await freePort()
    // Appended to postgresql.conf itself (not postgresql.auto.conf, which would override what a test writes there).
    const config = [`port = ${port}`, `listen_addresses = '127.0.0.1'`, `unix_socket_directories = '${baseDir}'`, 'fsync = off', 'shared_buffers = 16MB', 'max_connections = 40', ...(options.config ?? [])]
    writeFileSync(join(dataDir, 'postgresql.conf'), `${config.join('\n')}\n`, { flag: 'a' })
    runAsClusterUser(join(PG_BIN_DIR, 'pg_ctl'), ['-D', dataDir, '-l', logFile, '-w', '-t', '120', 'start'], { cwd: baseDir })
    const urlOf = (database: string) => `postgresql://postgres@127.0.0.1:${port}/${database}`
    return {
      url: urlOf('postgres'),
      port,
      dataDir,
      baseDir,
      logFile,
      urlOf,
      psql(database, sql, args = []) {
        const result = spawnSync(join(PG_BIN_DIR, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', database, ...args, '-c', sql], {
          encoding: 'utf8',
        })
        if (result.status !== 0) throw new Error(`psql exited ${result.status}: ${result.stderr}`)
        return result.stdout
      },
      stop,
    }
  } catch (error) {
    stop()
    throw error
  }
}

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}


/**
 * A private cluster with pg_stat_statements preloaded (top-level statements tracked), its database
 * `app` migrated and seeded with the demo data, and the extension created in it: where the
 * dashboard reads the application's real statements. Stopped and closed after `t`.
 */
export async function startStatementsCluster(t: TestContext): Promise<{ cluster: PrivateCluster; db: DatabaseHandle }> {
  const cluster = await startPrivateCluster(t, { config: ["shared_preload_libraries = 'pg_stat_statements'", 'pg_stat_statements.track = top'] })
  cluster.psql('postgres', 'CREATE DATABASE app')
  const db = await openDatabase(cluster.urlOf('app'), { environment: resolveEnvironment() })
  defer(t, () => db.close())
  await applyMigrations(db.sql)
  await seedDemo(db.prisma)
  await db.sql.query('CREATE EXTENSION pg_stat_statements')
  return { cluster, db }
}
