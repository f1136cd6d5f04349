/**
 * A private PostgreSQL 15 cluster for tests that must reconfigure the server (archiving, preload
 * libraries): initdb in a temp dir, a free port, a Unix socket in that dir, run as `postgres` when we
 * are root (PostgreSQL refuses root). The shared server on 5432 is never touched.
 */
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'

export const PG_BIN_DIR = process.env.TEST_PG_BIN_DIR ?? '/usr/lib/postgresql/15/bin'

/** The OS user the cluster runs as: `postgres` when the tests run as root, else ourselves. */
export const CLUSTER_OS_USER = process.getuid?.() === 0 ? 'postgres' : undefined

export interface PrivateCluster {
  /** postgresql://postgres@127.0.0.1:<port>/postgres (trust on 127.0.0.1 only). */
  url: string
  port: number
  dataDir: string
  /** The temp dir holding dataDir, the socket and the server log; removed by stop(). */
  baseDir: string
  logFile: string
  stop(): void
}

/** Why a private cluster cannot start here, with the install command; undefined when it can. */
export function privateClusterUnavailable(): string | undefined {
  if (!existsSync(join(PG_BIN_DIR, 'initdb'))) return `initdb absent de ${PG_BIN_DIR} (apt-get install postgresql-15)`
  return undefined
}

/** A TCP port nobody listens on right now, on 127.0.0.1. */
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

/** Runs a command as the cluster's OS user; throws with its output when it fails. */
export function runAsClusterUser(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): string {
  const [file, fileArgs] = CLUSTER_OS_USER === undefined ? [command, args] : ['runuser', ['-u', CLUSTER_OS_USER, '--', command, ...args]]
  const result = spawnSync(file, fileArgs, { encoding: 'utf8', env: { ...process.env, ...options.env }, timeout: options.timeoutMs ?? 120_000 })
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status ?? result.signal}): ${result.stderr}${result.stdout}`)
  return result.stdout
}

/** Gives a path we created to the cluster's OS user (a no-op when we are not root). */
export function chownToClusterUser(path: string): void {
  if (CLUSTER_OS_USER === undefined) return
  const uid = Number(spawnSync('id', ['-u', CLUSTER_OS_USER], { encoding: 'utf8' }).stdout.trim())
  const gid = Number(spawnSync('id', ['-g', CLUSTER_OS_USER], { encoding: 'utf8' }).stdout.trim())
  chownSync(path, uid, gid)
}

/**
 * Starts a fresh cluster with `confLines` appended to its postgresql.conf. Call stop() in `after`
 * (it is idempotent and also removes the temp dir).
 * @example const cluster = await startPrivateCluster({ confLines: ['wal_level = replica'] }); after(() => cluster.stop())
 */
export async function startPrivateCluster(options: { confLines?: string[]; baseDir?: string } = {}): Promise<PrivateCluster> {
  const baseDir = options.baseDir ?? mkdtempSync(join(tmpdir(), 'ipm-pg-'))
  chownToClusterUser(baseDir)
  const dataDir = join(baseDir, 'data')
  const logFile = join(baseDir, 'server.log')
  runAsClusterUser(join(PG_BIN_DIR, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'])
  const port = await freePort()
  writeFileSync(
    join(dataDir, 'postgresql.conf'),
    [`port = ${port}`, "listen_addresses = '127.0.0.1'", `unix_socket_directories = '${baseDir}'`, 'fsync = off', 'shared_buffers = 16MB', 'max_connections = 20', ...(options.confLines ?? []), ''].join('\n'),
    { flag: 'a' },
  )
  let stopped = false
  const stop = () => {
    if (stopped) return
    stopped = true
    try {
      if (existsSync(join(dataDir, 'postmaster.pid'))) runAsClusterUser(join(PG_BIN_DIR, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop'])
    } finally {
      rmSync(baseDir, { recursive: true, force: true })
    }
  }
  try {
    runAsClusterUser(join(PG_BIN_DIR, 'pg_ctl'), ['-D', dataDir, '-l', logFile, '-w', '-t', '120', 'start'])
  } catch (error) {
    stop()
    throw error
  }
  return { url: `postgresql://postgres@127.0.0.1:${port}/postgres`, port, dataDir, baseDir, logFile, stop }
}
