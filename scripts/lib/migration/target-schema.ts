/**
 * The SQLite schema a migration writes into, in one of two ways:
 * - the app's: the committed SQLite migrations (prisma/sqlite/migrations), applied and recorded in
 *   `_prisma_migrations` like `prisma migrate deploy`, so the result is a normal app database;
 * - derived: for any other PostgreSQL schema, tables written from the catalog with Prisma's own
 *   SQLite types, NOT NULL, primary keys, foreign keys and plain (unique) indexes.
 */
import Database from 'better-sqlite3'
import { quoteIdentifier } from '../db/connection.ts'
import { sqliteConnection } from '../engines/sqlite/connection.ts'
import { applyMigrations, MIGRATIONS_DIRS, readMigrations } from '../db/migrations.ts'
import type { ColumnConversion } from './conversion.ts'
import type { SourceForeignKey, SourceIndex, SourceTable } from './source.ts'

export interface TargetColumn {
  name: string
  declaredType: string
  notNull: boolean
  hasDefault: boolean
  primaryKeyPosition: number
}

export interface TargetTable {
  name: string
  columns: TargetColumn[]
  withoutRowid: boolean
}

export interface AppSchema {
  /** Migration names of prisma/sqlite/migrations, oldest first. */
  migrations: string[]
  tables: TargetTable[]
}

/**
 * The app's SQLite schema, read from an in-memory database the committed migrations were applied to.
 * @example const { tables } = await describeAppSchema() // Plan, Tenant, User, Client, Dossier, _prisma_migrations
 */
export async function describeAppSchema(migrationsDir = MIGRATIONS_DIRS.sqlite): Promise<AppSchema> {
  const db = new Database(':memory:')
  try {
    await applyMigrations(sqliteConnection(db), { dir: migrationsDir })
    return { migrations: readMigrations(migrationsDir).map((m) => m.name), tables: describeSqliteTables(db) }
  } finally {
    db.close()
  }
}

/** Every table of an open SQLite database with its columns as declared. */
export function describeSqliteTables(db: Database.Database): TargetTable[] {
  const tables = db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name`).all() as { name: string; sql: string }[]
  return tables.map(({ name, sql }) => ({
    name,
    withoutRowid: /\)\s*WITHOUT\s+ROWID\s*;?\s*$/i.test(sql),
    columns: (db.prepare(`PRAGMA table_xinfo(${quoteIdentifier(name)})`).all() as { name: string; type: string; notnull: number; dflt_value: unknown; pk: number; hidden: number }[])
      .filter((column) => column.hidden === 0)
      .map((column) => ({ name: column.name, declaredType: column.type, notNull: column.notnull === 1, hasDefault: column.dflt_value !== null, primaryKeyPosition: column.pk })),
  }))
}

/** The statements that create one derived table, and (separately, to run after the copy) its indexes. */
export interface DerivedTable {
  createTable: string
  createIndexes: string[]
  /** What the PostgreSQL table has that the SQLite one does not. */
  notCarried: string[]
}

/**
 * Writes the SQLite DDL of a PostgreSQL table, Prisma-style (`"id" TEXT NOT NULL PRIMARY KEY`).
 * Column defaults, sequences, CHECK constraints and non-btree/partial/expression indexes are not carried.
 */
export function deriveTable(table: SourceTable, conversions: ReadonlyMap<string, ColumnConversion>, copiedTables: ReadonlySet<string>): DerivedTable {
  const keys = table.columns.filter((c) => c.primaryKeyPosition > 0).sort((a, b) => a.primaryKeyPosition - b.primaryKeyPosition)
  const lines = table.columns.map((column) => {
    const type = conversions.get(column.name)?.sqliteType ?? 'TEXT'
    const inlineKey = keys.length === 1 && keys[0]!.name === column.name
    // A single INTEGER key becomes SQLite's rowid, numbered like a serial column for later inserts.
    return `    ${quoteIdentifier(column.name)} ${type}${column.nullable && !inlineKey ? '' : ' NOT NULL'}${inlineKey ? ' PRIMARY KEY' : ''}`
  })
  if (keys.length > 1) lines.push(`    PRIMARY KEY (${keys.map((c) => quoteIdentifier(c.name)).join(', ')})`)
  const notCarried: string[] = [...table.otherConstraints]
  for (const fk of table.foreignKeys) {
    // A table of another schema is not copied; SQLite would refuse every write that checks the key.
    if (copiedTables.has(fk.referencedTable)) lines.push(`    ${foreignKeyClause(fk)}`)
    else notCarried.push(`clé étrangère (${fk.columns.join(', ')}) vers ${fk.referencedTable}, qui n’est pas copiée`)
  }
  const createIndexes: string[] = []
  for (const index of table.indexes) {
    if (index.notPortable !== undefined) notCarried.push(`index ${index.name} (${index.notPortable})`)
    else createIndexes.push(indexStatement(table.name, index))
  }
  return { createTable: `CREATE TABLE ${quoteIdentifier(table.name)} (\n${lines.join(',\n')}\n);`, createIndexes, notCarried }
}

function foreignKeyClause(fk: SourceForeignKey): string {
  const columns = fk.columns.map(quoteIdentifier).join(', ')
  const referenced = fk.referencedColumns.map(quoteIdentifier).join(', ')
  return `FOREIGN KEY (${columns}) REFERENCES ${quoteIdentifier(fk.referencedTable)} (${referenced}) ON DELETE ${fk.onDelete} ON UPDATE ${fk.onUpdate}${fk.deferrable ? ' DEFERRABLE INITIALLY DEFERRED' : ''}`
}

function indexStatement(table: string, index: SourceIndex): string {
  const columns = index.columns.map((c) => `${quoteIdentifier(c.name)}${c.descending ? ' DESC' : ''}`).join(', ')
  return `CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX ${quoteIdentifier(index.name)} ON ${quoteIdentifier(table)}(${columns});`
}
