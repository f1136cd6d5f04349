/** Restore drills on SQLite: the scratch database is a file in the drill's private folder. */
import { join } from 'node:path'
import type { ScratchDatabases } from '../engine.ts'

export const sqliteScratch: ScratchDatabases = {
  async create({ workDir }) {
    const path = join(workDir, 'drill.db')
    // The file lives in the drill's folder: removing the folder (or a later drill's leftover rule) drops it.
    return { url: `file:${path}`, display: path, drop: async () => {}, readableWhileChecked: true }
  },
  cleanLeftovers: async () => [],
  // The SQLite restore's step 4 ran integrity_check and foreign_key_check on this very file (sqlite/restore.ts):
  // running them again cost 1.9 s of the 14 s a drill added to a restore of 100k dossiers.
  integrity: async (_db, restored) => [
    { name: 'integrity', status: restored.integrity === 'ok' ? 'ok' : 'failed', detail: `PRAGMA integrity_check : ${restored.integrity.slice(0, 200)} (étape 4 de la restauration)` },
    { name: 'foreign-keys', status: restored.foreignKeyViolations === 0 ? 'ok' : 'failed', detail: `PRAGMA foreign_key_check : ${restored.foreignKeyViolations} violation(s) (étape 4 de la restauration)` },
  ],
}
