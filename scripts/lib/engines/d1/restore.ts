/**
 * Restoring into D1: the tables are created, the rows of database.db inserted in foreign-key order
 * (batched), then indexes, triggers and views. D1 has no transaction across requests, so a failure
 * midway leaves a partial database: the error says so, and the safety export (if any) holds the old one.
 */
import Database from 'better-sqlite3'
import { DATABASE_FILE } from '../snapshot.ts'
import { quoteIdentifier, type DatabaseHandle } from '../../db/connection.ts'
import { tablesInDependencyOrder } from '../../db/table-reader.ts'
import type { DatabaseLocation } from '../../db/url.ts'
import type { ToolkitEnvironment } from '../../environment.ts'
import { ToolkitError, describeError } from '../../errors.ts'
import type { RestoreTarget } from '../engine.ts'
import { serverRestoreTarget } from '../_server-restore.ts'
import { openSqliteTableReader } from '../sqlite/table-reader.ts'

export const D1_RESTORE_ARTEFACT = DATABASE_FILE

export async function openD1RestoreTarget(location: DatabaseLocation, options: { environment: ToolkitEnvironment; redactedUrl: string }): Promise<RestoreTarget> {
  if (location.engine !== 'd1') throw new Error(`not a D1 location: ${location.engine}`)
  // Loaded on demand: Miniflare alone adds ~120 MB of memory to every process that imports it.
  const { openLocalD1, openRemoteD1 } = await import('./connection.ts')
  const db =
    location.mode === 'local'
      ? await openLocalD1({ persistDir: location.persistDir, redactedUrl: options.redactedUrl })
      : await openRemoteD1({ ...location, token: options.environment.cloudflareD1Token, redactedUrl: options.redactedUrl })
  return serverRestoreTarget({ db, artefact: D1_RESTORE_ARTEFACT, existingObjects: d1Objects, load: loadIntoD1 })
}

/** The tables and views of the target that a restore would collide with (D1's own `_cf_` tables left out). */
export async function d1Objects(db: DatabaseHandle): Promise<string[]> {
  return db.sql.listTables()
}

/** Recreates a SQLite file's schema and rows in D1 (foreign-key order, batched inserts). */
async function loadIntoD1(db: DatabaseHandle, file: string, replace: boolean): Promise<void> {
  const source = new Database(file, { readonly: true, fileMustExist: true })
  try {
    if (replace) {
      const existing = await d1Objects(db)
      const views = await db.sql.query<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'view'`)
      const viewNames = new Set(views.map((v) => v.name))
      await db.sql.executeScript(['PRAGMA defer_foreign_keys = on;', ...existing.map((name) => `DROP ${viewNames.has(name) ? 'VIEW' : 'TABLE'} IF EXISTS ${quoteIdentifier(name)};`)].join('\n'))
    }
    const schema = source.prepare(`SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid`).all() as { type: string; name: string; sql: string }[]
    await db.sql.executeScript(schema.filter((s) => s.type === 'table').map((s) => `${s.sql};`).join('\n'))
    const reader = openSqliteTableReader(file)
    try {
      for (const table of tablesInDependencyOrder(await reader.tables())) {
        const columns = table.columns.map((c) => c.name)
        // Integers as bigint: a number would round those beyond 2^53 (D1 binds a bigint exactly, as text into the INTEGER column).
        const select = source.prepare(`SELECT ${columns.map(quoteIdentifier).join(', ')} FROM ${quoteIdentifier(table.name)}`).raw(true).safeIntegers(true)
        let batch: unknown[][] = []
        for (const row of select.iterate() as IterableIterator<unknown[]>) {
          batch.push(row)
          if (batch.length === 500) {
            await db.sql.insertRows(table.name, columns, batch as never)
            batch = []
          }
        }
        if (batch.length > 0) await db.sql.insertRows(table.name, columns, batch as never)
      }
    } finally {
      await reader.close()
    }
    const rest = schema.filter((s) => s.type !== 'table')
    if (rest.length > 0) await db.sql.executeScript(rest.map((s) => `${s.sql};`).join('\n'))
  } catch (error) {
    throw new ToolkitError(`le chargement dans D1 a échoué en cours de route (D1 n’a pas de transaction entre requêtes : la cible peut contenir une partie du backup) : ${describeError(error)}`, {
      hint: 'Videz la cible et relancez la restauration (--force fait d’abord un export de sécurité).',
      cause: error,
    })
  } finally {
    source.close()
  }
}
