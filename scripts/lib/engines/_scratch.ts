/**
 * What the scratch databases of restore drills share across engines: their names carry the drill's
 * process id, so the next drill can tell a leftover (its process is gone, e.g. killed by SIGKILL)
 * from the scratch database of a drill still running.
 */
import { randomBytes } from 'node:crypto'
import type { DatabaseHandle } from '../db/connection.ts'
import type { IntegrityFinding } from './engine.ts'

/** `<prefix><pid>_<random>`: the drill's process id is part of the name. */
export function scratchName(prefix: string, pid = process.pid): string {
  return `${prefix}${pid}_${randomBytes(4).toString('hex')}`
}

/** The process id a scratch name carries, or undefined when it is not one of `prefix`. */
export function scratchOwner(name: string, prefix: string): number | undefined {
  const match = new RegExp(`^${prefix}(\\d+)_[0-9a-f]+$`).exec(name)
  return match ? Number(match[1]) : undefined
}

/** Whether a process of this machine with that id is alive. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** SQLite and D1: `PRAGMA integrity_check` and `PRAGMA foreign_key_check`. */
export async function sqliteIntegrity(db: DatabaseHandle): Promise<IntegrityFinding[]> {
  const integrity = await db.sql.query<{ integrity_check: string }>('PRAGMA integrity_check')
  const text = integrity.map((r) => Object.values(r)[0]).join('; ')
  const violations = await db.sql.query('PRAGMA foreign_key_check')
  return [
    { name: 'integrity', status: text === 'ok' ? 'ok' : 'failed', detail: `PRAGMA integrity_check : ${text.slice(0, 200)}` },
    { name: 'foreign-keys', status: violations.length === 0 ? 'ok' : 'failed', detail: `PRAGMA foreign_key_check : ${violations.length} violation(s)` },
  ]
}
