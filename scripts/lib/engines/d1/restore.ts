/**
 * Restoring into D1, all or nothing although D1 has no transaction across requests: the backup's
 * tables are created under staging names (`_ipm_restore_<pid>_<table>`, their references to each
 * other renamed alike by SQLite's own ALTER TABLE in the scratch copy), their rows inserted in
 * foreign-key order (batched), then ONE batch — one transaction — drops the old objects, renames
 * the staging tables into place and creates the indexes, triggers and views. A restore killed or
 * failing before that batch leaves the target as it was, plus staging tables that readers do not
 * see (table-reader.ts) and that the next restore drops once their process is gone.
 * A local D1 is locked for the whole run by `<state folder>.restore-lock` (engine.ts, taken by
 * backup/restore/flow.ts), as a SQLite file is: two restores cannot interleave their staging and
 * swaps. A remote D1 has no lock: Cloudflare's API offers none to take. A restore whose check fails is undone by the same
 * load (_server-restore.ts).
 */
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { DATABASE_FILE } from '../snapshot.ts'
import { quoteIdentifier, type DatabaseHandle } from '../../db/connection.ts'
import { tablesInDependencyOrder } from '../../db/table-reader.ts'
import type { DatabaseLocation } from '../../db/url.ts'
import type { ToolkitEnvironment } from '../../environment.ts'
import { ToolkitError, describeError } from '../../errors.ts'
import { shellWord } from '../../format.ts'
import { processIsAlive } from '../../fs/leftovers.ts'
import type { RestoreTarget } from '../engine.ts'
import { serverRestoreTarget } from '../_server-restore.ts'
import { openSqliteTableReader } from '../sqlite/table-reader.ts'
import { D1_STAGING_PREFIX } from './table-reader.ts'

export const D1_RESTORE_ARTEFACT = DATABASE_FILE

/** Where Miniflare keeps a local D1's SQLite file, inside the state folder (its own layout, not ours). */
const MINIFLARE_D1_FOLDER = 'miniflare-D1DatabaseObject'

export async function openD1RestoreTarget(location: DatabaseLocation, options: { environment: ToolkitEnvironment; redactedUrl: string; dryRun: boolean }): Promise<RestoreTarget> {
  if (location.engine !== 'd1') throw new Error(`not a D1 location: ${location.engine}`)
  // Loaded on demand: Miniflare alone adds ~120 MB of memory to every process that imports it.
  const { openLocalD1, openRemoteD1 } = await import('./connection.ts')
  const db =
    location.mode === 'local'
      ? await openLocalD1({ persistDir: location.persistDir, redactedUrl: options.redactedUrl })
      : await openRemoteD1({ ...location, token: options.environment.cloudflareD1Token, redactedUrl: options.redactedUrl })
  if (!options.dryRun) {
    try {
      await dropDeadStagingTables(db)
    } catch (error) {
      await db.close()
      throw error
    }
  }
  return serverRestoreTarget({
    db,
    artefact: D1_RESTORE_ARTEFACT,
    existingObjects: d1Objects,
    dropStatements: d1DropStatements,
    runByHand: (script) => runByHand(location, script),
    load: loadIntoD1,
  })
}

/** The tables and views of the target that a restore would collide with (D1's own `_cf_` tables and restores' staging tables left out). */
export async function d1Objects(db: DatabaseHandle): Promise<string[]> {
  return db.sql.listTables()
}

/** The pid a staging table's name carries, or undefined when it is not one. */
function stagingOwner(name: string): number | undefined {
  const match = new RegExp(`^${D1_STAGING_PREFIX}(\\d+)_`).exec(name)
  return match ? Number(match[1]) : undefined
}

function stagingTables(db: DatabaseHandle): Promise<{ name: string }[]> {
  return db.sql.query<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '${D1_STAGING_PREFIX.replaceAll('_', '\\_')}%' ESCAPE '\\'`)
}

/** Drops the staging tables of restores whose process is gone (killed before their swap); returns their names. */
export async function dropDeadStagingTables(db: DatabaseHandle, isAlive: (pid: number) => boolean = processIsAlive): Promise<string[]> {
  const dead = (await stagingTables(db)).map((t) => t.name).filter((name) => {
    const pid = stagingOwner(name)
    return pid !== undefined && pid !== process.pid && !isAlive(pid)
  })
  if (dead.length > 0) await db.sql.executeScript(['PRAGMA defer_foreign_keys = on;', ...(await childrenFirst(db, dead)).map((name) => `DROP TABLE IF EXISTS ${quoteIdentifier(name)};`)].join('\n'))
  return dead
}

/** The statements that drop every table and view of the target, run as one batch (a restore into an empty D1 undone). */
export async function d1DropStatements(db: DatabaseHandle): Promise<string[]> {
  return dropStatements(db, await d1Objects(db))
}

/** The statements that drop `names` (tables and views of the target): views first, then tables children first. */
async function dropStatements(db: DatabaseHandle, names: string[]): Promise<string[]> {
  const views = new Set((await db.sql.query<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'view'`)).map((v) => v.name))
  const tables = await childrenFirst(db, names.filter((name) => !views.has(name)))
  return [
    'PRAGMA defer_foreign_keys = on;',
    ...names.filter((name) => views.has(name)).map((name) => `DROP VIEW IF EXISTS ${quoteIdentifier(name)};`),
    ...tables.map((name) => `DROP TABLE IF EXISTS ${quoteIdentifier(name)};`),
  ]
}

/**
 * The command that runs `script` in a D1 by hand: a local D1 is a SQLite file in Miniflare's state
 * folder (the sqlite3 shell, toolkit stopped); a remote one through Cloudflare's wrangler.
 */
function runByHand(location: DatabaseLocation & { engine: 'd1' }, script: string): string {
  const oneLine = script.replaceAll('\n', ' ')
  if (location.mode === 'remote') return `npx wrangler d1 execute <nom de la base ${location.databaseId}> --remote --command ${shellWord(oneLine)}`
  const state = join(location.persistDir, MINIFLARE_D1_FOLDER)
  const file = existsSync(state) ? readdirSync(state).find((name) => name.endsWith('.sqlite') && name !== 'metadata.sqlite') : undefined
  return `sqlite3 ${shellWord(file === undefined ? join(state, '<base>.sqlite') : join(state, file))} ${shellWord(`BEGIN; ${oneLine} COMMIT;`)}`
}

/**
 * `names` (tables of the target) ordered so that a table comes before the tables it references:
 * D1 refuses to drop a table whose parent is already gone ("no such table") when a cascade is declared.
 */
async function childrenFirst(db: DatabaseHandle, names: string[]): Promise<string[]> {
  const parents = new Map<string, string[]>()
  for (const name of names) parents.set(name, (await db.sql.query<{ table: string }>(`PRAGMA foreign_key_list(${quoteIdentifier(name)})`)).map((key) => key.table))
  const parentsFirst: string[] = []
  const seen = new Set<string>()
  const visit = (name: string) => {
    if (seen.has(name)) return
    seen.add(name)
    for (const parent of parents.get(name) ?? []) if (parents.has(parent)) visit(parent)
    parentsFirst.push(name)
  }
  names.forEach(visit)
  return parentsFirst.reverse()
}

/**
 * Recreates a SQLite file's schema and rows in D1: staged, then swapped in one batch (see the top
 * of this file). `file` is the restore's scratch copy: its tables are renamed to their staging names.
 */
async function loadIntoD1(db: DatabaseHandle, file: string, replace: boolean, midway: () => void): Promise<void> {
  const source = new Database(file, { fileMustExist: true })
  const staged = new Map<string, string>()
  try {
    const schema = source.prepare(`SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid`).all() as { type: string; name: string; sql: string }[]
    const tables = schema.filter((s) => s.type === 'table')
    // In the scratch copy: views and triggers out of the way, then each table renamed — SQLite renames the references to it.
    for (const { type, name } of schema.filter((s) => s.type === 'view' || s.type === 'trigger')) source.exec(`DROP ${type.toUpperCase()} IF EXISTS ${quoteIdentifier(name)}`)
    for (const { name } of tables) {
      staged.set(name, `${D1_STAGING_PREFIX}${process.pid}_${name}`)
      source.exec(`ALTER TABLE ${quoteIdentifier(name)} RENAME TO ${quoteIdentifier(staged.get(name)!)}`)
    }
    const stagedSchema = source.prepare(`SELECT sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid`).all() as { sql: string }[]
    if (stagedSchema.length > 0) await db.sql.executeScript(stagedSchema.map((s) => `${s.sql};`).join('\n'))
    const reader = openSqliteTableReader(file)
    let midwayCalled = false
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
        if (!midwayCalled) {
          midwayCalled = true
          midway()
        }
      }
    } finally {
      await reader.close()
    }
    if (!midwayCalled) midway()
    // The swap, one batch: D1 runs it as one transaction.
    await db.sql.executeScript(
      [
        ...(await dropStatements(db, replace ? await d1Objects(db) : [])),
        ...tables.map(({ name }) => `ALTER TABLE ${quoteIdentifier(staged.get(name)!)} RENAME TO ${quoteIdentifier(name)};`),
        ...schema.filter((s) => s.type !== 'table').map((s) => `${s.sql};`),
      ].join('\n'),
    )
  } catch (error) {
    // Nothing was swapped: the target is as it was; this run's staging tables go.
    await childrenFirst(db, [...staged.values()])
      .then((names) => db.sql.executeScript(['PRAGMA defer_foreign_keys = on;', ...names.map((name) => `DROP TABLE IF EXISTS ${quoteIdentifier(name)};`)].join('\n')))
      .catch(() => {})
    throw new ToolkitError(`le chargement dans D1 a échoué, la cible est restée telle quelle : ${describeError(error)}`, {
      hint: 'Corrigez la cause indiquée puis relancez la restauration.',
      cause: error,
    })
  } finally {
    source.close()
  }
}
