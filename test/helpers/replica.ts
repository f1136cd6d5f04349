/**
 * The continuous replication (SQLite PITR) as its tests drive it: the replicate process, an application
 * database with a marker, and waiting on a replica. Segments are merged as they age,
 * so counting them proves nothing; what a test needs is "the replicator has seen a commit made at or
 * after this instant", which the replica's reachable range says.
 */
import { spawn } from 'node:child_process'
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import Database from 'better-sqlite3'
import { REPO_ROOT } from './cli.ts'
import { reachableRange } from '../../scripts/lib/replication/plan.ts'
import type { ReplicaStore } from '../../scripts/lib/replication/store.ts'

/** Resolves once the replica holds a commit seen at or after `since` (epoch ms): take `since` before the write. */
export async function replicaHasSeen(store: ReplicaStore, since: number): Promise<void> {
  for (;;) {
    // No generation yet (the first snapshot is being written) reads as "not yet".
    const range = await reachableRange(store).catch(() => undefined)
    if (range !== undefined && range.to.getTime() >= since) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** `advanced-backup replicate <args>` as its own process (as an operator runs it), its output collected. */
export function startReplicate(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'scripts/advanced-backup.ts'), 'replicate', ...args], { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const waitFor = async (pattern: RegExp) => {
    while (!pattern.test(stdout)) {
      if (child.exitCode !== null) throw new Error(`replicate exited ${child.exitCode}: ${stdout}${stderr}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  return { child, exited, waitFor, output: () => stdout, errors: () => stderr }
}

/**
 * A copy of the demo database at `<dir>/app.db` in WAL mode, open as the application (closed after
 * the test), and a marker: the first Plan's name, set in the application and read from any file.
 */
export function replicatedApp(t: Pick<TestContext, 'after'>, dir: string) {
  const databasePath = join(dir, 'app.db')
  copyFileSync(join(REPO_ROOT, 'prisma', 'dev.db'), databasePath)
  const app = new Database(databasePath)
  t.after(() => { if (app.open) app.close() })
  app.pragma('journal_mode = WAL')
  const setMarker = (marker: string) => app.prepare('UPDATE Plan SET name = ? WHERE rowid = (SELECT min(rowid) FROM Plan)').run(marker)
  const marker = (path: string) => {
    const db = new Database(path, { readonly: true })
    try {
      return (db.prepare('SELECT name FROM Plan WHERE rowid = (SELECT min(rowid) FROM Plan)').get() as { name: string }).name
    } finally {
      db.close()
    }
  }
  return { databasePath, app, setMarker, marker }
}
