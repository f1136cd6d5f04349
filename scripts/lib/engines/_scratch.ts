/**
 * What the scratch databases of restore drills share across engines: their names carry the drill's
 * process id, so the next drill can tell a leftover (its process is gone, e.g. killed by SIGKILL)
 * from the scratch database of a drill still running.
 */
import { randomBytes } from 'node:crypto'
import type { DatabaseHandle } from '../db/connection.ts'
import { describeError } from '../errors.ts'
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

/**
 * SQLite and D1: `PRAGMA <check>` (integrity_check; D1 only authorises quick_check) and
 * `PRAGMA foreign_key_check`. A pragma the engine refuses is reported as skipped, with its reason.
 */
export async function sqliteIntegrity(db: DatabaseHandle, check: 'integrity_check' | 'quick_check' = 'integrity_check'): Promise<IntegrityFinding[]> {
  const findings: IntegrityFinding[] = []
  try {
    const text = (await db.sql.query(`PRAGMA ${check}`)).map((r) => String(Object.values(r)[0])).join('; ')
    findings.push({ name: 'integrity', status: text === 'ok' ? 'ok' : 'failed', detail: `PRAGMA ${check} : ${text.slice(0, 200)}` })
  } catch (error) {
    findings.push({ name: 'integrity', status: 'skipped', detail: `PRAGMA ${check} refusé : ${describeError(error)}` })
  }
  try {
    const violations = await db.sql.query('PRAGMA foreign_key_check')
    findings.push({ name: 'foreign-keys', status: violations.length === 0 ? 'ok' : 'failed', detail: `PRAGMA foreign_key_check : ${violations.length} violation(s)` })
  } catch (error) {
    findings.push({ name: 'foreign-keys', status: 'skipped', detail: `PRAGMA foreign_key_check refusé : ${describeError(error)}` })
  }
  return findings
}
