/**
 * Step 4's checks of a SQLite restore started early, on step 1's verified copy of the database
 * (written beside the target, which step 3 renames into place), in a helper thread while step 1
 * goes on verifying the rest of the backup: `PRAGMA integrity_check` and `foreign_key_check` cost
 * seconds on a large file and were the second half of a restore's time. The verdict stands for the
 * restored file only if it is the same file, unchanged: same device, inode, size and mtime after
 * the rename (`sameFile`); otherwise step 4 checks the target itself, as it does without this.
 * The thread opens a hard link of the copy (`<copy>-check`, a leftover of a killed restore that the
 * next one removes), so that step 3's rename cannot pull the file from under a thread still starting.
 */
import { linkSync, rmSync, statSync } from 'node:fs'
import type { Worker } from 'node:worker_threads'
import { quoteIdentifier } from '../../db/connection.ts'
import { describeError } from '../../errors.ts'
import { startTypeScriptThread } from '../../threads.ts'

/** `foreign_key_check`'s violations, and the rows of every table of the file. */
export interface References {
  foreignKeyViolations: number
  rows: Map<string, number>
}

/** What the helper threads found (`_staged-check-thread.ts`). */
export type StagedCheckResult =
  | ({ integrity: string } & References)
  /** Not checked there: a WAL-mode file (a read-only connection would write -wal/-shm files beside it), or a thread failed. */
  | { skipped: string }

/** What each helper thread runs: `integrity_check`, or `foreign_key_check` and the row counts. */
export const STAGED_CHECK_PARTS = ['integrity', 'references'] as const

/** What one helper thread found. */
export type StagedCheckPart = { integrity: string } | References | { skipped: string }

/** A query on one SQLite connection: a handle's `sql.query` in step 4, better-sqlite3's in the helper thread. */
export type SqliteQuery = <Row extends object>(sql: string) => Promise<Row[]>

/** `PRAGMA integrity_check`'s lines, joined: `ok` for a sound file. Step 4 runs it here or in the helper thread. */
export async function integrityOf(query: SqliteQuery): Promise<string> {
  return (await query<{ integrity_check: string }>('PRAGMA integrity_check')).map((r) => r.integrity_check).join('; ')
}

/** Step 4's other checks, here or in the helper thread: orphan foreign keys, and each table's rows. */
export async function referencesOf(query: SqliteQuery): Promise<References> {
  const foreignKeyViolations = (await query('PRAGMA foreign_key_check')).length
  const rows = new Map<string, number>()
  for (const { name } of await query<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table'`)) {
    rows.set(name, Number((await query<{ n: number | bigint }>(`SELECT count(*) AS n FROM ${quoteIdentifier(name)}`))[0]!.n))
  }
  return { foreignKeyViolations, rows }
}

export interface StagedCheck {
  /** The file as it was when the check opened it. */
  readonly file: FileIdentity
  /** What the threads found, once they are done (and until then they keep the process alive); never rejects. */
  result(): Promise<StagedCheckResult>
  /** Settles when the threads are done, without keeping the process alive meanwhile. */
  readonly done: Promise<void>
  /** Lets the thread go (the restore goes no further); it stops at its next statement. */
  cancel(): void
}

interface FileIdentity {
  dev: number
  ino: number
  size: number
  mtimeMs: number
}

function identityOf(path: string): FileIdentity {
  const { dev, ino, size, mtimeMs } = statSync(path)
  return { dev, ino, size, mtimeMs }
}

/** Whether `path` is still the file `check` examined, unchanged. */
export function sameFile(check: StagedCheck, path: string): boolean {
  const now = identityOf(path)
  return now.dev === check.file.dev && now.ino === check.file.ino && now.size === check.file.size && now.mtimeMs === check.file.mtimeMs
}

/** @example const early = startStagedCheck(stagedPath); …; if (sameFile(early, target)) use(await early.result()) */
export function startStagedCheck(path: string): StagedCheck {
  const link = `${path}-check`
  const removeLink = () => rmSync(link, { force: true })
  const workers: Worker[] = []
  // Matches no file until the copy has been looked at: a check that could not start is never taken.
  let file: FileIdentity = { dev: -1, ino: -1, size: -1, mtimeMs: -1 }
  let settled: Promise<StagedCheckResult>
  try {
    file = identityOf(path)
    linkSync(path, link)
    // Two threads: integrity_check alone is most of the work, and a restore's last seconds are spent waiting for it.
    const parts = STAGED_CHECK_PARTS.map((part) => {
      const thread = startTypeScriptThread(new URL('./_staged-check-thread.ts', import.meta.url), { path: link, part })
      workers.push(thread)
      // Until step 4 waits for it, the thread must not keep a process alive that has stopped for another reason.
      thread.unref()
      return new Promise<StagedCheckPart>((resolve) => {
        thread.once('message', (message: StagedCheckPart) => resolve(message))
        thread.once('error', (error) => resolve({ skipped: `contrôle anticipé en échec: ${describeError(error)}` }))
        thread.once('exit', (code) => resolve({ skipped: `contrôle anticipé arrêté (code ${code})` }))
      })
    })
    settled = Promise.all(parts)
      .then(([first, second]): StagedCheckResult => {
        if ('integrity' in first! && 'foreignKeyViolations' in second!) return { ...first, ...second }
        return 'skipped' in first! ? first : 'skipped' in second! ? second : { skipped: 'contrôle anticipé incomplet' }
      })
      .finally(removeLink)
  } catch (error) {
    removeLink()
    settled = Promise.resolve({ skipped: `contrôle anticipé impossible: ${describeError(error)}` })
  }
  return {
    file,
    done: settled.then(() => undefined),
    result() {
      for (const worker of workers) worker.ref()
      return settled
    },
    cancel() {
      removeLink()
      for (const worker of workers) void worker.terminate()
    },
  }
}
