/**
 * Cloudflare D1: locally through Miniflare (Cloudflare's real workerd runtime, state kept on disk),
 * remotely through Cloudflare's HTTP API. D1 speaks SQLite, so it uses the SQLite Prisma client.
 *
 * D1 has no interactive transactions: atomicity comes from `batch()`, which runs its statements
 * in one implicit transaction.
 */
import { mkdirSync } from 'node:fs'
import { Miniflare } from 'miniflare'
import { PrismaD1 } from '@prisma/adapter-d1'
import { PrismaClient } from '../../../../generated/sqlite/client.ts'
import { ToolkitError, describeError } from '../../errors.ts'
import { prismaClients, quoteIdentifier, toSqliteTimestamp, type DatabaseHandle, type SqlConnection, type SqlValue } from '../../db/connection.ts'
import { splitSqlStatements } from '../../db/sql-script.ts'
import { D1_STAGING_PREFIX, d1TableReader } from './table-reader.ts'
import { noteWorkerd, reapDeadWorkerds } from './workerd.ts'
import { listSqliteUserTables } from '../sqlite/connection.ts'
import type { DatabaseLocation } from '../../db/url.ts'
import type { SqlDriverAdapterFactory } from '@prisma/driver-adapter-utils'

/** The part of the D1 binding we use (Miniflare's and Cloudflare's are the same shape). */
export interface D1Binding {
  prepare(sql: string): D1Statement
  batch(statements: D1Statement[]): Promise<unknown[]>
}
export interface D1Statement {
  bind(...values: unknown[]): D1Statement
  all(): Promise<{ results?: unknown[] }>
}

// Keeps each batch well under D1's per-request limits.
const STATEMENTS_PER_BATCH = 500

export interface OpenLocalD1Options {
  persistDir: string
  redactedUrl: string
}

export async function openLocalD1({ persistDir, redactedUrl }: OpenLocalD1Options): Promise<DatabaseHandle> {
  let miniflare: Miniflare | undefined
  let binding: D1Binding
  let note: { remove(): void } | undefined
  try {
    mkdirSync(persistDir, { recursive: true })
    // A killed run's workerd still holds this D1's files: stopped before a new one opens them.
    await reapDeadWorkerds(persistDir)
    miniflare = new Miniflare({
      modules: true,
      script: 'export default { fetch: () => new Response(null, { status: 404 }) }',
      d1Databases: { DB: 'ia-poste-manager' },
      d1Persist: persistDir,
    })
    binding = (await miniflare.getD1Database('DB')) as unknown as D1Binding
    await binding.prepare('SELECT 1').all()
    note = noteWorkerd(persistDir)
  } catch (error) {
    await miniflare?.dispose().catch(() => {})
    throw new ToolkitError(`D1 ${redactedUrl} : démarrage du D1 local (Miniflare) impossible : ${describeError(error)}`, {
      hint: 'Vérifiez que le dossier de persistance est inscriptible (D1_PERSIST_DIR ou d1://local/<dossier>).',
      cause: error,
    })
  }
  return d1Handle({
    location: { engine: 'd1', mode: 'local', persistDir },
    redactedUrl,
    binding,
    adapter: new PrismaD1(binding as never),
    dispose: async () => {
      await miniflare.dispose()
      note?.remove()
    },
  })
}

export interface OpenRemoteD1Options {
  accountId: string
  databaseId: string
  token: string | undefined
  redactedUrl: string
}

export async function openRemoteD1({ accountId, databaseId, token, redactedUrl }: OpenRemoteD1Options): Promise<DatabaseHandle> {
  if (token === undefined) {
    throw new ToolkitError(`D1 ${redactedUrl} : pas de jeton d’API pour le D1 distant`, {
      hint: 'Définissez CLOUDFLARE_D1_TOKEN (un jeton d’API avec les droits d’édition D1), ou utilisez d1://local pour le D1 local.',
    })
  }
  const binding = d1HttpBinding(accountId, databaseId, token)
  try {
    await binding.prepare('SELECT 1').all()
  } catch (error) {
    throw new ToolkitError(`D1 ${redactedUrl} : l’API D1 de Cloudflare est injoignable : ${describeError(error)}`, {
      hint: 'Vérifiez le réseau, les identifiants du compte et de la base, et CLOUDFLARE_D1_TOKEN.',
      cause: error,
    })
  }
  return d1Handle({
    location: { engine: 'd1', mode: 'remote', accountId, databaseId },
    redactedUrl,
    binding,
    adapter: new PrismaD1({ CLOUDFLARE_D1_TOKEN: token, CLOUDFLARE_ACCOUNT_ID: accountId, CLOUDFLARE_DATABASE_ID: databaseId }),
  })
}

/** The handle over a D1 binding, local or remote: Prisma through `adapter`, raw SQL through `binding`. */
function d1Handle(options: {
  location: DatabaseLocation & { engine: 'd1' }
  redactedUrl: string
  binding: D1Binding
  adapter: SqlDriverAdapterFactory
  dispose?: () => Promise<void>
}): DatabaseHandle {
  const clients = prismaClients(options.adapter, (clientOptions) => new PrismaClient(clientOptions))
  const sql = d1Connection(options.binding)
  return {
    engine: 'd1',
    location: options.location,
    redactedUrl: options.redactedUrl,
    prisma: clients.prisma,
    sql,
    openTableReader: async () => d1TableReader(sql),
    createQueryEventClient: clients.createQueryEventClient,
    async close() {
      await clients.disconnect()
      await options.dispose?.()
    },
  }
}

/** A D1Binding over Cloudflare's HTTP query endpoint; a batch is one request, as D1 runs it atomically. */
function d1HttpBinding(accountId: string, databaseId: string, token: string): D1Binding {
  const endpoint = `https://api.cloudflare.com/client/v4/accounts/${accountId}/d1/database/${databaseId}/query`
  type Pending = { sql: string; params: unknown[] }
  const send = async (body: Pending | { batch: Pending[] }) => {
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    })
    const payload = (await response.json()) as { success: boolean; errors?: { message: string }[]; result?: { results?: unknown[] }[] }
    if (!response.ok || !payload.success) throw new Error(payload.errors?.map((e) => e.message).join('; ') || `HTTP ${response.status}`)
    return payload.result ?? []
  }
  const statement = (sql: string, params: unknown[] = []): D1Statement & Pending => ({
    sql,
    params,
    bind: (...values) => statement(sql, values),
    all: async () => ({ results: (await send({ sql, params }))[0]?.results ?? [] }),
  })
  return {
    prepare: (sql) => statement(sql),
    batch: (statements) => send({ batch: statements as unknown as Pending[] }),
  }
}

export function d1Connection(binding: D1Binding): SqlConnection {
  const runBatches = async (statements: D1Statement[]) => {
    for (let start = 0; start < statements.length; start += STATEMENTS_PER_BATCH) {
      await binding.batch(statements.slice(start, start + STATEMENTS_PER_BATCH))
    }
  }
  return {
    dialect: 'sqlite',
    async listTables() {
      return (await listSqliteUserTables(this)).filter((name) => !name.startsWith(D1_STAGING_PREFIX))
    },
    async executeScript(script) {
      const statements = splitSqlStatements(script).map((sql) => binding.prepare(sql))
      // One batch: D1 runs it as one transaction, so the script is atomic.
      if (statements.length > 0) await binding.batch(statements)
    },
    async query<Row extends object>(sql: string, params: readonly SqlValue[] = []) {
      const result = await binding.prepare(sql).bind(...params.map(toD1Value)).all()
      return (result.results ?? []) as Row[]
    },
    async insertRows(table, columns, rows) {
      const insert = `INSERT INTO ${quoteIdentifier(table)} (${columns.map(quoteIdentifier).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`
      await runBatches(rows.map((row) => binding.prepare(insert).bind(...row.map(toD1Value))))
    },
  }
}

/** D1 binds numbers, strings, null and ArrayBuffers only; the rest is stored as Prisma stores it. */
function toD1Value(value: SqlValue): string | number | null | ArrayBuffer {
  if (value === null || typeof value === 'string' || typeof value === 'number') return value
  if (typeof value === 'boolean') return value ? 1 : 0
  // Exact as text; the column's INTEGER affinity turns it back into an integer.
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()
  if (value instanceof Date) return toSqliteTimestamp(value)
  if (value instanceof Uint8Array) return value.slice().buffer as ArrayBuffer
  return JSON.stringify(value)
}
