/**
 * Databases for the health-check tests. The suite opens its own handle, so these helpers build a
 * database (migrated, seeded, or neither), close it, and return its URL; `snapshotTables` reads every
 * row of every table, to prove that a run left the database as it was.
 */
import type { TestContext } from 'node:test'
import { openDatabase } from '../../scripts/lib/db/open.ts'
import { applyMigrations } from '../../scripts/lib/db/migrations.ts'
import { seedDemo } from '../../scripts/lib/seed/demo.ts'
import type { EngineName } from '../../scripts/lib/db/url.ts'
import type { RowValue } from '../../scripts/lib/db/table-reader.ts'
import { createEmptyDatabaseUrl } from './databases.ts'
import { resolveEnvironment } from '../../scripts/lib/environment.ts'

type Cleanup = Pick<TestContext, 'after'>

/** A database URL: migrated and seeded by default; `migrate: false` leaves it empty (SQLite: an empty file). */
export async function databaseUrl(t: Cleanup, engine: EngineName, options: { migrate?: boolean; seed?: boolean } = {}): Promise<string> {
  const url = await createEmptyDatabaseUrl(t, engine)
  const db = await openDatabase(url, { environment: resolveEnvironment(), create: true })
  try {
    if (options.migrate ?? true) {
      await applyMigrations(db.sql)
      if (options.seed ?? true) await seedDemo(db.prisma)
    }
  } finally {
    await db.close()
  }
  return url
}

/** Every row of every table (Prisma's `_prisma_migrations` included), by table name. */
export async function snapshotTables(url: string): Promise<Record<string, RowValue[][]>> {
  const db = await openDatabase(url, { environment: resolveEnvironment() })
  try {
    const reader = await db.openTableReader()
    try {
      const snapshot: Record<string, RowValue[][]> = {}
      for (const table of await reader.tables()) {
        const rows: RowValue[][] = []
        for await (const row of reader.rows(table)) rows.push(row)
        snapshot[table.name] = rows
      }
      return snapshot
    } finally {
      await reader.close()
    }
  } finally {
    await db.close()
  }
}

