/**
 * The raw-SQL side of a database handle: what migrations, seeding and bulk tools need, and no more.
 * Prisma Client is for app-shaped queries; this is for scripts, DDL and batched inserts.
 */
import type { SqlDriverAdapter, SqlDriverAdapterFactory } from '@prisma/driver-adapter-utils'
import type { PrismaClient } from '../../../generated/sqlite/client.ts'
import type { DatabaseLocation, EngineName } from './url.ts'
import type { TableReader } from './table-reader.ts'

export type SqlDialect = 'sqlite' | 'postgres'

export type SqlValue = string | number | bigint | boolean | null | Date | Uint8Array | object

export interface SqlConnection {
  readonly dialect: SqlDialect
  /** The user's tables and views (not the engine's own: `sqlite_*`, D1's `_cf_*`), in the current schema. */
  listTables(): Promise<string[]>
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

/** A Prisma Client that emits a `query` event (SQL, params, database time) for every statement it sends. */
export type QueryEventPrismaClient = PrismaClient<'query'>

/**
 * An open database without its Prisma Client: the raw SQL and table readers that backups use.
 * Opening one loads the driver only (the Prisma runtime and generated client cost ~0.1 s of CPU at
 * start-up, bench/startup.ts); `Engine.open` gives the full `DatabaseHandle`.
 */
export interface SqlHandle {
  readonly engine: EngineName
  readonly location: DatabaseLocation
  /** The URL with its password masked: the only form of it that may be printed. */
  readonly redactedUrl: string
  readonly sql: SqlConnection
  /**
   * Reads every table; on SQLite and PostgreSQL all reads of one reader see one snapshot.
   * `quiescent`: the caller promises nobody writes the database while the reader is open (a scratch
   * database), so the engine may read it over several connections (SQLite's threaded checksums).
   */
  openTableReader(options?: { quiescent?: boolean }): Promise<TableReader>
  close(): Promise<void>
}

export interface DatabaseHandle extends SqlHandle {
  readonly prisma: AppPrismaClient
  /**
   * Another Prisma Client on this handle's own connection (the very same driver adapter: SQLite
   * connection, pg pool or D1 binding) that emits query events; the metrics attach to it, so
   * `prisma` stays uninstrumented and both can be compared on one connection. Disconnected by close().
   */
  createQueryEventClient?(): QueryEventPrismaClient
  /** How many connections Prisma's adapter may hold: the pg pool's max, 1 for SQLite; unset for D1 (a binding, no client pool). */
  readonly poolSize?: number
}

/**
 * The Prisma side of a handle: the app client, plus query-event clients created on demand, all on
 * one shared driver adapter. `disconnect()` disconnects them all (the adapter is disposed last).
 */
export function prismaClients<Client extends { $disconnect(): Promise<void> }>(
  factory: SqlDriverAdapterFactory,
  construct: (options: { adapter: SqlDriverAdapterFactory; log?: { emit: 'event'; level: 'query' }[] }) => Client,
): { prisma: Client; createQueryEventClient(): QueryEventPrismaClient; disconnect(): Promise<void> } {
  const adapter = shareDriverAdapter(factory)
  const prisma = construct({ adapter })
  const extra: Client[] = []
  return {
    prisma,
    createQueryEventClient() {
      const client = construct({ adapter, log: [{ emit: 'event', level: 'query' }] })
      extra.push(client)
      // Both generated clients have the same models (see AppPrismaClient).
      return client as unknown as QueryEventPrismaClient
    },
    async disconnect() {
      for (const client of extra.splice(0)) await client.$disconnect()
      await prisma.$disconnect()
    },
  }
}

/**
 * Lets several Prisma Clients use one driver adapter: the first connect() opens it, the others
 * lease the same one, and it is disposed when the last client lets go.
 */
export function shareDriverAdapter(factory: SqlDriverAdapterFactory): SqlDriverAdapterFactory {
  let opening: Promise<SqlDriverAdapter> | undefined
  let leases = 0
  return {
    provider: factory.provider,
    adapterName: factory.adapterName,
    async connect() {
      const current = (opening ??= factory.connect().catch((error: unknown) => {
        opening = undefined
        throw error
      }))
      leases++
      let adapter: SqlDriverAdapter
      try {
        adapter = await current
      } catch (error) {
        leases--
        throw error
      }
      let released = false
      return leaseAdapter(adapter, async () => {
        if (released) return
        released = true
        if (--leases === 0 && opening === current) {
          opening = undefined
          await adapter.dispose()
        }
      })
    },
  }
}

function leaseAdapter(adapter: SqlDriverAdapter, release: () => Promise<void>): SqlDriverAdapter {
  const getConnectionInfo = adapter.getConnectionInfo?.bind(adapter)
  return {
    provider: adapter.provider,
    adapterName: adapter.adapterName,
    queryRaw: (query) => adapter.queryRaw(query),
    executeRaw: (query) => adapter.executeRaw(query),
    executeScript: (script) => adapter.executeScript(script),
    startTransaction: (isolationLevel) => adapter.startTransaction(isolationLevel),
    ...(getConnectionInfo === undefined ? {} : { getConnectionInfo }),
    dispose: release,
  }
}

/** Quotes an identifier for SQLite and PostgreSQL alike. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/** How Prisma's SQLite adapters store DateTime: ISO 8601 with an explicit UTC offset. */
export function toSqliteTimestamp(date: Date): string {
  return date.toISOString().replace('Z', '+00:00')
}
