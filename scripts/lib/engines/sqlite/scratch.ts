/** Restore drills on SQLite: the scratch database is a file in the drill's private folder. */
import { join } from 'node:path'
import type { ScratchDatabases } from '../engine.ts'
import { sqliteIntegrity } from '../_scratch.ts'

export const sqliteScratch: ScratchDatabases = {
  async create({ workDir }) {
    const path = join(workDir, 'drill.db')
    // The file lives in the drill's folder: removing the folder (or a later drill's leftover rule) drops it.
    return { url: `file:${path}`, display: path, drop: async () => {} }
  },
  cleanLeftovers: async () => [],
  integrity: (db) => sqliteIntegrity(db),
}
