/**
 * The PostgreSQL side of a migration: one snapshot (the table reader's `REPEATABLE READ READ ONLY`
 * transaction) for the catalog, the counts, the dry-run checks and every row, so the copy describes
 * one instant even while the app writes. The catalog is read, never assumed: tables, column types
 * (domains resolved), keys, indexes and foreign keys.
 */
import { openDatabase } from '../db/open.ts'
import type { DatabaseHandle } from '../db/connection.ts'
import { quoteIdentifier } from '../db/connection.ts'
import { isPostgresTableReader, type PostgresTableReader } from '../engines/postgres/table-reader.ts'
import type { TableInfo } from '../db/table-reader.ts'
import type { ToolkitEnvironment } from '../environment.ts'
import { ToolkitError } from '../errors.ts'
import type { PostgresType } from './conversion.ts'
import { copyTextLines } from './_copy-text.ts'

export interface SourceColumn {
  name: string
  /** format_type() text, as the table reader reports it: `numeric(65,30)`, `"Role"[]`. */
  declaredType: string
  type: PostgresType
  nullable: boolean
  primaryKeyPosition: number
}

export type ForeignKeyAction = 'NO ACTION' | 'RESTRICT' | 'CASCADE' | 'SET NULL' | 'SET DEFAULT'

export interface SourceForeignKey {
  columns: string[]
  referencedTable: string
  referencedColumns: string[]
  onDelete: ForeignKeyAction
  onUpdate: ForeignKeyAction
  deferrable: boolean
}

export interface SourceIndex {
  name: string
  columns: { name: string; descending: boolean }[]
  unique: boolean
  /** Why it cannot be carried to SQLite as a plain index, if it cannot (expression, partial, gin…). */
  notPortable?: string
}

export interface SourceTable {
  name: string
  columns: SourceColumn[]
  foreignKeys: SourceForeignKey[]
  indexes: SourceIndex[]
  /** CHECK and exclusion constraints, generated columns: named so the plan can say they are not carried. */
  otherConstraints: string[]
  rows: number
  /** The reader's view of the table, for tablesInDependencyOrder. */
  info: TableInfo
}

export interface PostgresSource {
  redactedUrl: string
  serverVersion: string
  tables: SourceTable[]
  /** Applied migrations in `_prisma_migrations` (finished, not rolled back), oldest first; undefined without that table. */
  appliedMigrations: string[] | undefined
  /** Runs a read-only query in the snapshot; values are text. */
  query<Row extends object = Record<string, string | null>>(sql: string, params?: readonly unknown[]): Promise<Row[]>
  /** Streams a table's rows in primary-key order as whole lines of COPY text (see _copy-text.ts), batch by batch. */
  lines(table: SourceTable): AsyncIterable<Buffer>
  close(): Promise<void>
}

// Fixed text forms whatever the server's or role's settings: ISO dates, UTC, hex bytea, exact floats.
const SESSION_SETTINGS = [
  `SET LOCAL DateStyle = 'ISO, YMD'`,
  `SET LOCAL TimeZone = 'UTC'`,
  `SET LOCAL IntervalStyle = 'postgres'`,
  `SET LOCAL bytea_output = 'hex'`,
  `SET LOCAL extra_float_digits = 3`,
]

const TYPES_SQL = `
SELECT t.oid::text AS oid, t.typname AS name, t.typtype AS typtype, t.typbasetype::text AS base, t.typelem::text AS elem,
       t.typcategory AS category, t.typdelim AS delim
FROM pg_type t`

const COLUMN_TYPES_SQL = `
SELECT c.relname AS table, a.attname AS column, a.atttypid::text AS type, (a.attgenerated <> '')::text AS generated
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped`

const FOREIGN_KEYS_SQL = `
SELECT c.relname AS table, con.confrelid::regclass::text AS referenced, con.confupdtype AS on_update, con.confdeltype AS on_delete,
       con.condeferrable::text AS deferrable,
       ARRAY(SELECT attname FROM unnest(con.conkey) WITH ORDINALITY k(num, ord) JOIN pg_attribute ON attrelid = con.conrelid AND attnum = k.num ORDER BY ord)::text[] AS columns,
       ARRAY(SELECT attname FROM unnest(con.confkey) WITH ORDINALITY k(num, ord) JOIN pg_attribute ON attrelid = con.confrelid AND attnum = k.num ORDER BY ord)::text[] AS referenced_columns
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE con.contype = 'f' AND n.nspname = current_schema()
ORDER BY con.conname`

const INDEXES_SQL = `
SELECT c.relname AS table, ic.relname AS name, i.indisunique::text AS unique, am.amname AS method,
       (i.indpred IS NOT NULL)::text AS partial, (i.indexprs IS NOT NULL)::text AS expressions,
       ARRAY(SELECT COALESCE(a.attname, '') FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(num, ord)
             LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num
             WHERE k.ord <= i.indnkeyatts ORDER BY k.ord)::text[] AS columns,
       ARRAY(SELECT (o.opt & 1)::text FROM unnest(i.indoption::int2[]) WITH ORDINALITY o(opt, ord) ORDER BY o.ord)::text[] AS descending
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND NOT i.indisprimary
ORDER BY ic.relname`

const OTHER_CONSTRAINTS_SQL = `
SELECT c.relname AS table, con.conname AS name, con.contype AS type
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND con.contype IN ('c', 'x')
ORDER BY con.conname`

const FK_ACTIONS: Record<string, ForeignKeyAction> = { a: 'NO ACTION', r: 'RESTRICT', c: 'CASCADE', n: 'SET NULL', d: 'SET DEFAULT' }

export interface OpenSourceOptions {
  cwd?: string
  environment: ToolkitEnvironment
}

/**
 * Connects, starts the snapshot and reads the catalog and the row count of every table.
 * @example const source = await openPostgresSource('postgresql://postgres@127.0.0.1/app'); … await source.close()
 */
export async function openPostgresSource(url: string, options: OpenSourceOptions): Promise<PostgresSource> {
  let db: DatabaseHandle
  try {
    db = await openDatabase(url, { cwd: options.cwd, environment: options.environment })
  } catch (error) {
    if (error instanceof ToolkitError) throw error
    throw new ToolkitError(`ouverture de la source impossible : ${(error as Error).message}`, { cause: error })
  }
  if (db.engine !== 'postgres') {
    await db.close()
    throw new ToolkitError(`la source doit être une base PostgreSQL, pas ${db.redactedUrl}`, { hint: 'Passez --from postgresql://user@host:5432/db (ou définissez POSTGRES_URL).', exitCode: 2 })
  }
  try {
    const reader = await db.openTableReader()
    if (!isPostgresTableReader(reader)) throw new Error('the PostgreSQL table reader offers no COPY')
    for (const setting of SESSION_SETTINGS) await reader.query(setting)
    const tables = await describeTables(reader)
    const serverVersion = (await reader.query<{ v: string }>("SELECT current_setting('server_version') AS v"))[0]?.v ?? 'unknown'
    const migrationsTable = tables.find((table) => table.name === '_prisma_migrations')
    const appliedMigrations =
      migrationsTable === undefined
        ? undefined
        : (await reader.query<{ name: string }>(
            `SELECT migration_name AS name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name`,
          )).map((row) => row.name)
    return {
      redactedUrl: db.redactedUrl,
      serverVersion,
      tables,
      appliedMigrations,
      query: (sql, params) => reader.query(sql, params),
      lines: (table) => copyTextLines(reader.copyOut(selectInKeyOrder(table))),
      close: () => db.close(),
    }
  } catch (error) {
    await db.close().catch(() => {})
    throw new ToolkitError(`la lecture du catalogue de ${db.redactedUrl} a échoué`, { cause: error })
  }
}

/** `SELECT "a", "b" FROM "t" ORDER BY <primary key>`: the order the target is written and verified in. */
export function selectInKeyOrder(table: Pick<SourceTable, 'name' | 'columns'>): string {
  const keys = table.columns.filter((c) => c.primaryKeyPosition > 0).sort((a, b) => a.primaryKeyPosition - b.primaryKeyPosition)
  const orderBy = keys.length > 0 ? ` ORDER BY ${keys.map((c) => quoteIdentifier(c.name)).join(', ')}` : ''
  return `SELECT ${table.columns.map((c) => quoteIdentifier(c.name)).join(', ')} FROM ${quoteIdentifier(table.name)}${orderBy}`
}

async function describeTables(reader: PostgresTableReader): Promise<SourceTable[]> {
  const infos = await reader.tables()
  const types = new Map((await reader.query<Record<string, string>>(TYPES_SQL)).map((row) => [row.oid!, row]))
  const catalogColumns = await reader.query<Record<string, string>>(COLUMN_TYPES_SQL)
  const columnTypes = new Map(catalogColumns.map((row) => [`${row.table}\u0000${row.column}`, row.type!]))
  const foreignKeys = await reader.query<{ table: string; referenced: string; on_update: string; on_delete: string; deferrable: string; columns: string; referenced_columns: string }>(FOREIGN_KEYS_SQL)
  const indexes = await reader.query<{ table: string; name: string; unique: string; method: string; partial: string; expressions: string; columns: string; descending: string }>(INDEXES_SQL)
  const others = await reader.query<{ table: string; name: string; type: string }>(OTHER_CONSTRAINTS_SQL)

  const resolve = (oid: string, depth = 0): PostgresType => {
    const row = types.get(oid)
    if (row === undefined || depth > 10) return { kind: 'pseudo', name: `type ${oid}` }
    if (row.typtype === 'd') return { ...resolve(row.base!, depth + 1), domain: row.name! }
    if (row.category === 'A' && row.elem !== '0') {
      const elementRow = types.get(row.elem!)
      return { kind: 'array', name: row.name!, element: resolve(row.elem!, depth + 1), delimiter: elementRow?.delim ?? ',' }
    }
    const kinds: Record<string, PostgresType['kind']> = { b: 'base', e: 'enum', r: 'range', m: 'multirange', c: 'composite', p: 'pseudo' }
    return { kind: kinds[row.typtype!] ?? 'pseudo', name: row.name! }
  }

  const tables: SourceTable[] = []
  for (const info of infos) {
    const columns = info.columns.map((column) => ({
      ...column,
      type: resolve(columnTypes.get(`${info.name}\u0000${column.name}`) ?? '0'),
    }))
    tables.push({
      name: info.name,
      info,
      columns,
      foreignKeys: foreignKeys
        .filter((fk) => fk.table === info.name)
        .map((fk) => ({
          columns: parseTextArray(fk.columns),
          referencedTable: fk.referenced.replace(/^"|"$/g, '').replaceAll('""', '"'),
          referencedColumns: parseTextArray(fk.referenced_columns),
          onDelete: FK_ACTIONS[fk.on_delete] ?? 'NO ACTION',
          onUpdate: FK_ACTIONS[fk.on_update] ?? 'NO ACTION',
          deferrable: fk.deferrable === 'true',
        })),
      indexes: indexes
        .filter((index) => index.table === info.name)
        .map((index) => {
          const names = parseTextArray(index.columns)
          const descending = parseTextArray(index.descending)
          const notPortable =
            index.expressions === 'true' ? 'un index sur expression'
            : index.partial === 'true' ? 'un index partiel'
            : index.method !== 'btree' ? `un index ${index.method}`
            : undefined
          return {
            name: index.name,
            unique: index.unique === 'true',
            columns: names.map((name, i) => ({ name, descending: descending[i] === '1' })),
            ...(notPortable ? { notPortable } : {}),
          }
        }),
      otherConstraints: [
        ...others.filter((c) => c.table === info.name).map((c) => `${c.type === 'c' ? 'CHECK' : 'EXCLUDE'} ${c.name}`),
        // The table reader leaves generated columns out: nothing of theirs is stored to copy.
        ...catalogColumns.filter((c) => c.table === info.name && c.generated === 'true').map((c) => `colonne générée ${c.column}`),
      ],
      rows: await reader.count(info),
    })
  }
  return tables
}

/** `{a,"b c"}` (a text[] in text form, as the reader returns it) → ['a', 'b c']. */
function parseTextArray(text: string | string[]): string[] {
  if (Array.isArray(text)) return text
  const inner = text.slice(1, -1)
  if (inner === '') return []
  const items: string[] = []
  const pattern = /"((?:[^"\\]|\\.)*)"|([^,]+)/g
  for (const match of inner.matchAll(pattern)) items.push(match[1] !== undefined ? match[1].replace(/\\(.)/g, '$1') : match[2]!)
  return items
}
