/**
 * Creates the demo SQLite database (migrations + demo seed) if it does not exist, and never touches
 * one that does. Built under a temporary name and renamed into place, so an interrupted
 * `npm ci` leaves no half-made database behind.
 */
import { existsSync, rmSync } from 'node:fs'
import { openDatabase } from '../db/open.ts'
import type { ToolkitEnvironment } from '../environment.ts'
import { applyMigrations } from '../db/migrations.ts'
import { commitRename, fsyncPath, temporaryPathFor } from '../fs/atomic.ts'
import { seedDemo } from './demo.ts'

export interface EnsureDevDatabaseResult {
  path: string
  created: boolean
}

/** @example await ensureDevDatabase({ path: 'prisma/dev.db', environment }) // { path, created: true } the first time */
export async function ensureDevDatabase({ path, environment, now }: { path: string; environment: ToolkitEnvironment; now?: () => Date }): Promise<EnsureDevDatabaseResult> {
  if (existsSync(path)) return { path, created: false }
  const temporary = temporaryPathFor(path)
  try {
    const db = await openDatabase(`file:${temporary}`, { create: true, environment })
    try {
      await db.sql.query('PRAGMA journal_mode = WAL')
      await applyMigrations(db.sql, { now })
      await seedDemo(db.prisma)
      // Folds the WAL back into the main file, so the rename moves one complete file.
      await db.sql.query('PRAGMA wal_checkpoint(TRUNCATE)')
    } finally {
      await db.close()
    }
    fsyncPath(temporary)
    commitRename(temporary, path)
  } finally {
    for (const leftover of [temporary, `${temporary}-wal`, `${temporary}-shm`]) rmSync(leftover, { force: true })
  }
  return { path, created: true }
}
