/** Restore drills on D1: a local D1 (Miniflare) whose state lives in the drill's private folder. */
import { join } from 'node:path'
import type { ScratchDatabases } from '../engine.ts'
import { sqliteIntegrity } from '../_scratch.ts'

export const d1Scratch: ScratchDatabases = {
  async create({ workDir }) {
    const dir = join(workDir, 'd1-state')
    // One Miniflare at a time holds a local D1's state: nothing else opens it during the restore.
    return { url: `d1://local/${dir}`, display: `D1 local (${dir})`, drop: async () => {}, readableWhileChecked: false }
  },
  cleanLeftovers: async () => [],
  // D1 refuses PRAGMA integrity_check (SQLITE_AUTH); quick_check is authorised.
  integrity: (db) => sqliteIntegrity(db, 'quick_check'),
}
