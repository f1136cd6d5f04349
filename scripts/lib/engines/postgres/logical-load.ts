/**
 * Loading another engine's backup into PostgreSQL (cross-engine restore): the rows go into a
 * temporary database on the target's server (the drills' scratch database, so a killed restore's
 * leftover is dropped like a killed drill's), whose snapshot is then the restore artefact
 * (database.sql) that the same-engine restore loads into the target in one transaction.
 */
import { copyFile, constants, mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { LogicalLoad } from '../engine.ts'
import { openPostgres } from './connection.ts'
import { postgresScratch } from './scratch.ts'
import { postgresSnapshot } from './snapshot.ts'
import { postgresBindValue } from './tenant-restore.ts'

export const postgresLogicalLoad: LogicalLoad = {
  bindValue: (kind, canonical) => postgresBindValue(kind, canonical),
  async openScratch({ target, scratchDir }) {
    if (target.engine !== 'postgres') throw new Error(`not a PostgreSQL location: ${target.engine}`)
    await postgresScratch.cleanLeftovers({ serverUrl: target.connectionString })
    const scratch = await postgresScratch.create({ workDir: scratchDir, serverUrl: target.connectionString })
    let db
    try {
      db = await openPostgres({ connectionString: scratch.url, redactedUrl: scratch.display })
    } catch (error) {
      await scratch.drop()
      throw error
    }
    const handle = db
    let open = true
    return {
      db: handle,
      async writeArtefact(dest) {
        const dir = await mkdtemp(join(scratchDir, 'logical-artefact-'))
        try {
          const snapshot = await postgresSnapshot(handle, { dir, durable: false })
          try {
            await copyFile(snapshot.artefact.path, dest, constants.COPYFILE_EXCL)
          } finally {
            await snapshot.close()
          }
        } finally {
          await rm(dir, { recursive: true, force: true })
        }
      },
      async drop() {
        if (open) await handle.close()
        open = false
        await scratch.drop()
      },
    }
  },
}
