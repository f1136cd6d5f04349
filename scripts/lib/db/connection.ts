/**
 * The raw-SQL side of a database handle: what migrations, seeding and bulk tools need, and no more.
 * Prisma Client is for app-shaped queries; this is for scripts, DDL and batched inserts.
 */
import type { PrismaClient } from '../../../generated/sqlite/client.ts'
import type { DatabaseLocation, EngineName } from './url.ts'
import type { TableReader } from './table-reader.ts'

export type SqlDialect = 'sqlite' | 'postgres'

export type SqlValue = string | number | bigint | boolean | null | Date | Uint8Array | object

export interface SqlConnection {
  readonly dialect: SqlDialect
  /** Runs a script of one or more statements atomically: all of it or none of it. */
  executeScript(script: string): Promise<void>
  /** Runs one statement; parameters are written `?` on every engine. Returns the rows it produced. */
  query<Row extends object = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<Row[]>
  /** Inserts many rows into one table in one transaction, batched to the engine's limits. */
  insertRows(table: string, columns: readonly string[], rows: readonly (readonly SqlValue[])[]): Promise<void>
}

/**
 * The Prisma Client of the app. Both generated clients come from the same models
 * (prisma/models.prisma), so the SQLite client's type describes the PostgreSQL one too.
 */
export type AppPrismaClient = PrismaClient

export interface DatabaseHandle {
  readonly engine: EngineName
  readonly location: DatabaseLocation
  /** The URL with its password masked: the only form of it that may be printed. */
  readonly redactedUrl: string
  readonly prisma: AppPrismaClient
  readonly sql: SqlConnection
  /** Reads every table; on SQLite and PostgreSQL all reads of one reader see one snapshot. */
  openTableReader(): Promise<TableReader>
  close(): Promise<void>
}

/** Quotes an identifier for SQLite and PostgreSQL alike. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/** How Prisma's SQLite adapters store DateTime: ISO 8601 with an explicit UTC offset. */
export function toSqliteTimestamp(date: Date): string {
  return date.toISOString().replace('Z', '+00:00')
}
