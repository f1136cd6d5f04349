/**
 * The project's C sources in tests: a copy that differs from the project's own, as after a `git pull`
 * not yet followed by `npm run build` (a build of it must be left unused: scripts/lib/native.ts).
 */
import { appendFileSync, copyFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { PROJECT_ROOT } from '../../scripts/lib/environment.ts'

/** Copies the project's `source` (relative to its root) to the same path under `root`, one comment added; returns the copy's path. */
export function nextVersionOf(root: string, source: string): string {
  const copy = join(root, source)
  mkdirSync(dirname(copy), { recursive: true })
  copyFileSync(join(PROJECT_ROOT, source), copy)
  appendFileSync(copy, '/* the next version */\n')
  return copy
}
