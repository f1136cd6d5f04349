/** Which file a restore locks (Engine.restoreLockFile): shared by the engines whose lock is a file beside the target. */
import { existsSync } from 'node:fs'
import { dirname } from 'node:path'

/**
 * `path` when the folder its lock file (`<path>.restore-lock`) would sit in exists, else null: a
 * SQLite target there is refused when opened (with the reason); a new local D1 there is created by
 * its first open.
 * @example lockableBeside('/srv/app/dev.db') // '/srv/app/dev.db' (null when /srv/app does not exist)
 */
export function lockableBeside(path: string): string | null {
  return existsSync(dirname(path)) ? path : null
}
