/**
 * A private PostgreSQL 15 cluster for the tests that need server settings the shared server on
 * 5432 must keep (shared_preload_libraries, archiving): initdb into a temp dir, pg_ctl on a free
 * port, Unix socket in the temp dir, listening on 127.0.0.1 only. PostgreSQL refuses to run as
 * root, so as root the cluster runs as `postgres` (the temp dir is handed to it).
 * Stopped and removed after the test or suite, also when it fails.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { defer } from './databases.ts'

export const PG_BIN = process.env.TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin'
const INSTALL = 'apt-get install postgresql-15 postgresql-contrib'

export interface PrivateCluster {
  /** `postgresql://postgres@127.0.0.1:<port>/postgres` (trust authentication, local only). */
  url: string
  port: number
  /** The cluster's data directory (postgresql.conf, pg_wal…). */
  dataDir: string
  /** The URL of another database of this cluster. */
  urlOf(database: string): string
  /** Runs `psql` against a database of the cluster; returns its standard output. */
  psql(database: string, sql: string, args?: string[]): string
  /** Stops the cluster (fast shutdown) and removes its folder; runs once, also registered as the test's cleanup. */
  stop(): Promise<void>
}

export interface PrivateClusterOptions {
  /** Extra `postgresql.conf` lines (`shared_preload_libraries = 'pg_stat_statements'`, `archive_mode = on`…). */
  config?: readonly string[]
}

/**
 * Why a private cluster cannot start here, or undefined when it can. With TEST_REQUIRE_ALL=1 a missing
 * initdb is an error, not a skip (.ci/run installs every judge).
 */
export function privateClusterUnavailable(): string | undefined {
  if (existsSync(join(PG_BIN, 'initdb'))) return undefined
  const reason = `${join(PG_BIN, 'initdb')} is missing: a private PostgreSQL cluster cannot be started (${INSTALL})`
  if (process.env.TEST_REQUIRE_ALL === '1') throw new Error(`${reason}; TEST_REQUIRE_ALL=1 forbids skipping`)
  return reason
}

/**
 * Starts a private cluster; it is stopped when `t` ends.
 * @example
 * const cluster = await startPrivateCluster(t, { config: ["shared_preload_libraries = 'pg_stat_statements'"] })
 */
export async function startPrivateCluster(t: Pick<TestContext, 'after'>, options: PrivateClusterOptions = {}): Promise<PrivateCluster> {
  const root = mkdtempSync(join(tmpdir(), 'ipm-pgcluster-'))
  const dataDir = join(root, 'data')
  const asRoot = process.getuid?.() === 0
  let owner: { uid: number; gid: number } | undefined
  if (asRoot) {
    owner = lookupUser('postgres')
    chownSync(root, owner.uid, owner.gid)
  }
  chmodSync(root, 0o700)
  const run = (command: string, args: string[], allowFailure = false) => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args]
    const result = spawnSync(file, argv, { encoding: 'utf8', cwd: root, timeout: 120_000 })
    if (result.status !== 0 && !allowFailure) throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${result.stderr}${result.stdout}`)
    return result.stdout
  }
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    if (existsSync(join(dataDir, 'postmaster.pid'))) run(join(PG_BIN, 'pg_ctl'), ['-D', dataDir, '-m', 'fast', '-w', 'stop'], true)
    rmSync(root, { recursive: true, force: true })
  }
  defer(t, stop)

  run(join(PG_BIN, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C.UTF-8'])
  const port = await freePort()
  const config = [
    `port = ${port}`,
    `listen_addresses = '127.0.0.1'`,
    `unix_socket_directories = '${root}'`,
    'fsync = off',
    'max_connections = 40',
    ...(options.config ?? []),
  ]
  const confPath = join(dataDir, 'postgresql.auto.conf')
  writeFileSync(confPath, `${config.join('\n')}\n`)
  if (owner !== undefined) chownSync(confPath, owner.uid, owner.gid)
  run(join(PG_BIN, 'pg_ctl'), ['-D', dataDir, '-l', join(root, 'server.log'), '-w', '-t', '60', 'start'])

  const urlOf = (database: string) => `postgresql://postgres@127.0.0.1:${port}/${database}`
  return {
    url: urlOf('postgres'),
    port,
    dataDir,
    urlOf,
    psql(database, sql, args = []) {
      const result = spawnSync(join(PG_BIN, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', database, ...args, '-c', sql], {
        encoding: 'utf8',
      })
      if (result.status !== 0) throw new Error(`psql exited ${result.status}: ${result.stderr}`)
      return result.stdout
    },
    stop,
  }
}

function lookupUser(name: string): { uid: number; gid: number } {
  const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' })
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' })
  if (uid.status !== 0 || gid.status !== 0) throw new Error(`running as root needs a "${name}" user to own the cluster (${INSTALL} creates it)`)
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) }
}

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}
