/**
 * Table reader over one PostgreSQL connection inside a `REPEATABLE READ READ ONLY` transaction:
 * every table is read from the same snapshot, so a backup describes one instant even while the
 * app writes. Rows come through a server-side cursor in batches, as PostgreSQL's exact text form.
 */
import type pg from 'pg'
import Cursor from 'pg-cursor'
import { to as copyTo } from 'pg-copy-streams'
import type { RowValue, TableInfo, TableReader } from '../../db/table-reader.ts'
import { postgresValueCodec } from './values.ts'
import { quoteIdentifier } from '../../db/connection.ts'

// Every type as its text form: exact for numeric, int8, timestamps (µs) and bytea.
const TEXT_TYPES = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig

const TABLES_SQL = `
SELECT c.oid, c.relname AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname`

const COLUMNS_SQL = `
SELECT a.attrelid AS oid, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull,
       -- indkey is 0-based: the first key column is at position 0.
       COALESCE(array_position(i.indkey::int2[], a.attnum) + 1, 0) AS pk
FROM pg_attribute a
LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attrelid, a.attnum`

const FOREIGN_KEYS_SQL = `
SELECT con.conrelid AS oid, con.confrelid::regclass::text AS referenced,
       ARRAY(SELECT attname FROM unnest(con.conkey) WITH ORDINALITY k(num, ord) JOIN pg_attribute ON attrelid = con.conrelid AND attnum = k.num ORDER BY ord)::text[] AS columns,
       ARRAY(SELECT attname FROM unnest(con.confkey) WITH ORDINALITY k(num, ord) JOIN pg_attribute ON attrelid = con.confrelid AND attnum = k.num ORDER BY ord)::text[] AS referenced_columns
FROM pg_constraint con WHERE con.contype = 'f' AND con.conrelid = ANY($1)
ORDER BY con.conname`

/**
 * What the PostgreSQL reader offers beyond `TableReader`, for tools that need PostgreSQL itself
 * (the migration's catalog queries and its `COPY` fast path). Everything runs in the same snapshot.
 */
export interface PostgresTableReader extends TableReader {
  readonly engine: 'postgres'
  /** One read-only query in the snapshot; every value comes back as PostgreSQL's text form (or null). */
  query<Row extends object = Record<string, string | null>>(sql: string, params?: readonly unknown[]): Promise<Row[]>
  /**
   * The raw output of `COPY (<select>) TO STDOUT` (text format) in the snapshot, chunk by chunk.
   * Stopping before the end (break, error) ends the reader's connection: only `close()` is left to call.
   */
  copyOut(select: string): AsyncIterable<Buffer>
}

/** True for a reader opened on PostgreSQL, which offers `query` and `copyOut` (also through `openDatabase(...).openTableReader()`). */
export function isPostgresTableReader(reader: TableReader): reader is PostgresTableReader {
  return reader.engine === 'postgres' && typeof (reader as Partial<PostgresTableReader>).copyOut === 'function'
}

/**
 * Takes a connection from the pool and starts the snapshot transaction; `close()` ends it and
 * gives the connection back.
 * @example const reader = await openPostgresTableReader(pool)
 */
export async function openPostgresTableReader(pool: pg.Pool): Promise<PostgresTableReader> {
  const client = await pool.connect()
  // A connection lost mid-read must fail the pending query, not crash the process.
  client.on('error', () => {})
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
  } catch (error) {
    client.release()
    throw error
  }
  let tables: TableInfo[] | undefined
  // Set when a COPY was left unfinished: the connection is mid-protocol and can only be discarded.
  let broken = false
  const describe = async () => {
    const found = (await client.query<{ oid: number; name: string }>(TABLES_SQL)).rows
    const oids = found.map((table) => table.oid)
    const columns = (await client.query<{ oid: number; name: string; type: string; notnull: boolean; pk: number }>(COLUMNS_SQL, [oids])).rows
    const keys = (await client.query<{ oid: number; referenced: string; columns: string[]; referenced_columns: string[] }>(FOREIGN_KEYS_SQL, [oids])).rows
    return found.map(({ oid, name }) => ({
      name,
      columns: columns
        .filter((column) => column.oid === oid)
        .map((column) => ({ name: column.name, declaredType: column.type, nullable: !column.notnull, primaryKeyPosition: Number(column.pk) })),
      foreignKeys: keys
        .filter((key) => key.oid === oid)
        .map((key) => ({ columns: key.columns, referencedTable: key.referenced.replace(/^"|"$/g, ''), referencedColumns: key.referenced_columns })),
    }))
  }
  return {
    engine: 'postgres',
    valueCodec: postgresValueCodec,
    async tables() {
      tables ??= await describe()
      return tables
    },
    async *rows(table, options = {}) {
      const keyColumns = table.columns.filter((c) => c.primaryKeyPosition > 0).sort((a, b) => a.primaryKeyPosition - b.primaryKeyPosition)
      const order = [...(options.groupBy === undefined ? [] : [options.groupBy]), ...keyColumns.map((c) => c.name)]
      const orderBy = order.length > 0 ? ` ORDER BY ${order.map(quoteIdentifier).join(', ')}` : ''
      const sql = `SELECT ${table.columns.map((c) => quoteIdentifier(c.name)).join(', ')} FROM ${quoteIdentifier(table.name)}${orderBy}`
      const cursor = client.query(new Cursor(sql, [], { rowMode: 'array', types: TEXT_TYPES }))
      try {
        for (;;) {
          const batch = (await cursor.read(options.batchSize ?? 2_000)) as RowValue[][]
          if (batch.length === 0) return
          yield* batch
        }
      } finally {
        await cursor.close()
      }
    },
    async count(table) {
      const result = await client.query<{ n: string }>(`SELECT COUNT(*) AS n FROM ${quoteIdentifier(table.name)}`)
      return Number(result.rows[0]!.n)
    },
    async query<Row extends object>(sql: string, params: readonly unknown[] = []) {
      return (await client.query({ text: sql, values: [...params], types: TEXT_TYPES })).rows as Row[]
    },
    async *copyOut(select) {
      const stream = client.query(copyTo(`COPY (${select}) TO STDOUT`))
      let finished = false
      try {
        for await (const chunk of stream) yield chunk as Buffer
        finished = true
      } finally {
        if (!finished) {
          broken = true
          ;(client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy()
        }
      }
    },
    async close() {
      if (broken) {
        client.release(new Error('connexion abandonnée après un COPY inachevé'))
        return
      }
      try {
        await client.query('COMMIT')
      } finally {
        client.release()
      }
    },
  }
}
