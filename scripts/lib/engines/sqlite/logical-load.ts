/**
 * Loading another engine's backup into SQLite (cross-engine restore): the rows go into a file in
 * the restore's scratch folder, which `VACUUM INTO` then writes as the restore artefact
 * (database.db) wherever the restore flow wants it. D1 uses it too: its artefact is the same file.
 */
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { LogicalLoad } from '../engine.ts'
import { openSqlite } from './connection.ts'
import { sqliteBindValue } from './tenant-restore.ts'

export const sqliteLogicalLoad: LogicalLoad = {
  bindValue: (kind, canonical) => sqliteBindValue(kind, canonical),
  async openScratch({ scratchDir }) {
    const path = join(scratchDir, 'logical-load.db')
    const db = await openSqlite({ path, redactedUrl: `file:${path}`, create: true })
    let open = true
    return {
      db,
      async writeArtefact(dest) {
        // One compact file, with no -wal beside it to carry along.
        await db.sql.query('VACUUM INTO ?', [dest])
      },
      async drop() {
        if (open) await db.close()
        open = false
        for (const suffix of ['', '-wal', '-shm', '-journal']) await rm(`${path}${suffix}`, { force: true })
      },
    }
  },
}
