/**
 * Measures every Prisma operation of a client: a query extension times the operation (wall time,
 * model, action, rows, tenant) and the client's `query` events give each SQL statement it sent with
 * its database time. The two are reported separately: under concurrency an operation waits for
 * the connection, so its wall time can be several times its SQL time.
 *
 * SQL events are tied to their operation through an AsyncLocalStorage scope entered *inside* the
 * extension, where the operation really runs; tenants come from the operation's arguments or from
 * a client bound to a tenant (`forTenant`), never from the caller's async context, which a lazy
 * Prisma query loses when it is awaited elsewhere (Promise.all).
 *
 * Database time is what the driver adapter took to answer. better-sqlite3 (SQLite) answers
 * synchronously: statements sent at the same time (an include's relation queries, five counts in
 * a Promise.all) wait for one another, and each one's database time includes that wait.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { AppPrismaClient, DatabaseHandle, QueryEventPrismaClient } from '../db/connection.ts'
import { ToolkitError, describeError } from '../errors.ts'
import { tenantFromArgs } from './tenant.ts'

export interface SqlRecord {
  sql: string
  /** The bound values as Prisma logs them (a JSON array). */
  params: string
  /** Epoch milliseconds when the statement was sent. */
  startedAt: number
  /** Database time: from sending the statement to its result, as the driver adapter saw it. */
  durationMs: number
}

export interface OperationRecord {
  id: number
  /** Prisma model, or null for raw queries. */
  model: string | null
  /** Prisma action: findMany, count, groupBy, $queryRaw… */
  action: string
  tenantId: string | null
  /** How the tenant was known: a client bound to it, or the operation's own arguments. */
  tenantSource: 'bound' | 'arguments' | null
  /** Epoch milliseconds when the operation started. */
  startedAt: number
  /** Wall time of the operation as its caller waited for it. */
  durationMs: number
  /** Sum of the database time of its SQL statements. */
  dbDurationMs: number
  /** Rows (or objects) returned: an array's length, 1 for an object or number, 0 for null. */
  rows: number
  /** Statements it sent; empty when Prisma batched it into another operation's statement. */
  sql: SqlRecord[]
  error?: string
}

/** What was recorded between two `drain()` calls. */
export interface RecordedWindow {
  startedAt: number
  endedAt: number
  operations: OperationRecord[]
  /** Statements sent outside any operation (transaction control, for instance). */
  unattributedSql: SqlRecord[]
  /** Operations not kept because the window was full (see `maxOperations`). */
  droppedOperations: number
}

export interface Instrumentation {
  /** The measured client: the app's API, every operation recorded. */
  readonly prisma: AppPrismaClient
  /**
   * The measured client bound to a tenant: its operations are attributed to `tenantId` even when
   * their arguments do not name it (counts, raw queries) and however they are awaited.
   * @example await Promise.all(tenants.map((id) => metrics.forTenant(id).dossier.count()))
   */
  forTenant(tenantId: string): AppPrismaClient
  /** Returns what was recorded since the previous call and starts a new window. */
  drain(): RecordedWindow
}

export interface InstrumentOptions {
  /** Keep at most this many operations per window (the rest are counted as dropped). Default 100 000. */
  maxOperations?: number
  /** Epoch milliseconds; tests pass a fixed clock. */
  now?: () => number
}

/**
 * Instruments a fresh query-event client of the handle, on the handle's own connection.
 * @example
 * const metrics = instrumentDatabase(db)
 * await metrics.prisma.dossier.count({ where: { tenantId: 'tenant-demo' } })
 * const { operations } = metrics.drain() // [{ model: 'Dossier', action: 'count', tenantId: 'tenant-demo', sql: [...] }]
 */
export function instrumentDatabase(db: Pick<DatabaseHandle, 'createQueryEventClient' | 'redactedUrl'>, options: InstrumentOptions = {}): Instrumentation {
  if (db.createQueryEventClient === undefined) {
    throw new ToolkitError(`${db.redactedUrl} : cette connexion ne sait pas créer de client à événements de requêtes, ses requêtes ne peuvent pas être mesurées`)
  }
  return instrumentClient(db.createQueryEventClient(), options)
}

/** Instruments a client built with `log: [{ emit: 'event', level: 'query' }]`. */
export function instrumentClient(client: QueryEventPrismaClient, options: InstrumentOptions = {}): Instrumentation {
  const maxOperations = options.maxOperations ?? 100_000
  const now = options.now ?? (() => performance.timeOrigin + performance.now())
  const scope = new AsyncLocalStorage<OperationRecord>()
  let window = emptyWindow(now())
  let nextId = 1

  client.$on('query', (event) => {
    const record: SqlRecord = { sql: event.query, params: event.params, startedAt: event.timestamp.getTime(), durationMs: event.duration }
    const operation = scope.getStore()
    if (operation === undefined) window.unattributedSql.push(record)
    else {
      operation.sql.push(record)
      operation.dbDurationMs += event.duration
    }
  })

  const extend = (boundTenant: string | undefined) =>
    client.$extends({
      name: 'ipm-metrics',
      query: {
        async $allOperations({ model, operation, args, query }) {
          const fromArgs = boundTenant === undefined ? tenantFromArgs(model, args) : undefined
          const tenantId = boundTenant ?? fromArgs ?? null
          const record: OperationRecord = {
            id: nextId++,
            model: model ?? null,
            action: operation,
            tenantId,
            tenantSource: boundTenant !== undefined ? 'bound' : fromArgs !== undefined ? 'arguments' : null,
            startedAt: now(),
            durationMs: 0,
            dbDurationMs: 0,
            rows: 0,
            sql: [],
          }
          const started = performance.now()
          try {
            // Awaited inside run(): the query starts here, so its SQL events see this operation.
            const result = await scope.run(record, async () => await query(args))
            record.rows = Array.isArray(result) ? result.length : result === null || result === undefined ? 0 : 1
            return result
          } catch (error) {
            record.error = describeOperationError(error)
            throw error
          } finally {
            record.durationMs = performance.now() - started
            // Into the window it ends in: an operation running across a drain() counts in the next one.
            if (window.operations.length < maxOperations) window.operations.push(record)
            else window.droppedOperations++
          }
        },
      },
    }) as unknown as AppPrismaClient

  const prisma = extend(undefined)
  const bound = new Map<string, AppPrismaClient>()
  return {
    prisma,
    forTenant(tenantId) {
      let tenantClient = bound.get(tenantId)
      if (tenantClient === undefined) bound.set(tenantId, (tenantClient = extend(tenantId)))
      return tenantClient
    },
    drain() {
      const done = window
      done.endedAt = now()
      window = emptyWindow(done.endedAt)
      return done
    },
  }
}

function emptyWindow(startedAt: number): RecordedWindow {
  return { startedAt, endedAt: startedAt, operations: [], unattributedSql: [], droppedOperations: 0 }
}

/** Prisma's messages start with the call site ("Invalid `prisma.x()` invocation…") and end with the cause. */
function describeOperationError(error: unknown): string {
  const code = typeof (error as { code?: unknown })?.code === 'string' ? `${(error as { code: string }).code}: ` : ''
  const lines = error instanceof Error ? error.message.split('\n').map((l) => l.trim()).filter((l) => l !== '') : []
  return code + (lines.length > 1 ? lines[lines.length - 1]! : describeError(error))
}
