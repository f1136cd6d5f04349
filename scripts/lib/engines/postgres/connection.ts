/**
 * PostgreSQL through one `pg` pool shared by the raw connection and Prisma's pg adapter. The adapter
 * and the generated client are imported by `openPostgres` only: a backup opens the raw side alone.
 */
import pg from 'pg'
import { ToolkitError, describeError } from '../../errors.ts'
import { openPostgresTableReader } from './table-reader.ts'
import type { TableReader } from '../../db/table-reader.ts'
import { prismaClients, quoteIdentifier, type AppPrismaClient, type DatabaseHandle, type SqlConnection, type SqlHandle, type SqlValue } from '../../db/connection.ts'

export interface OpenPostgresOptions {
  connectionString: string
  redactedUrl: string
}

const POOL_SIZE = 5

// PostgreSQL's limit on bind parameters in one statement.
const MAX_PARAMETERS = 65_535

/** The raw side only: the pool and its table readers. */
export async function openPostgresSql(options: OpenPostgresOptions): Promise<SqlHandle> {
  return postgresSqlHandle(await connectPool(options), options)
}

/** The raw side and Prisma's pg adapter on the same pool. */
export async function openPostgres(options: OpenPostgresOptions): Promise<DatabaseHandle> {
  const pool = await connectPool(options)
  const raw = postgresSqlHandle(pool, options)
  const [{ PrismaPg }, { PrismaClient }] = await Promise.all([import('@prisma/adapter-pg'), import('../../../../generated/postgres/client.ts')])
  // Same models as the SQLite client (see AppPrismaClient); only the generated class differs.
  const clients = prismaClients(new PrismaPg(pool), (clientOptions) => new PrismaClient(clientOptions))
  return {
    ...raw,
    prisma: clients.prisma as unknown as AppPrismaClient,
    createQueryEventClient: clients.createQueryEventClient,
    poolSize: POOL_SIZE,
    async close() {
      // Prisma's adapter leaves a pool it was given open: raw.close() ends it.
      await clients.disconnect()
      await raw.close()
    },
  }
}

async function connectPool({ connectionString, redactedUrl }: OpenPostgresOptions): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString, max: POOL_SIZE, connectionTimeoutMillis: 10_000 })
  // An idle client that loses its server must not crash the process; the next query reports it.
  pool.on('error', () => {})
  try {
    await pool.query('SELECT 1')
  } catch (error) {
    await pool.end().catch(() => {})
    throw new ToolkitError(`PostgreSQL ${redactedUrl} : connexion impossible : ${describeError(error)}`, {
      hint: 'Vérifiez que le serveur tourne et que POSTGRES_URL / --database donne les bons hôte, port, utilisateur et mot de passe.',
      cause: error,
    })
  }
  return pool
}

function postgresSqlHandle(pool: pg.Pool, { connectionString, redactedUrl }: OpenPostgresOptions): SqlHandle {
  const openReaders = new Set<TableReader>()
  return {
    engine: 'postgres',
    location: { engine: 'postgres', connectionString },
    redactedUrl,
    sql: postgresConnection(pool),
    async openTableReader() {
      const reader = await openPostgresTableReader(pool)
      openReaders.add(reader)
      return { ...reader, close: () => (openReaders.delete(reader), reader.close()) }
    },
    async close() {
      // pool.end() waits for every checked-out connection: end the readers' transactions first.
      await Promise.allSettled([...openReaders].map((reader) => reader.close()))
      await pool.end()
    },
  }
}

export function postgresConnection(pool: pg.Pool): SqlConnection {
  const inTransaction = async (work: (client: pg.PoolClient) => Promise<void>) => {
    const client = await pool.connect()
    try {
      await client.query('BEGIN')
      await work(client)
      await client.query('COMMIT')
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {})
      throw error
    } finally {
      client.release()
    }
  }
  return {
    dialect: 'postgres',
    async listTables() {
      const rows = await this.query<{ name: string }>(`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`)
      return rows.map((r) => r.name)
    },
    async executeScript(script) {
      await inTransaction(async (client) => {
        await client.query(script)
      })
    },
    async query<Row extends object>(sql: string, params: readonly SqlValue[] = []) {
      const result = await pool.query(numberPlaceholders(sql), params.map(toPostgresValue))
      return (result.rows ?? []) as Row[]
    },
    async insertRows(table, columns, rows) {
      const rowsPerStatement = Math.max(1, Math.floor(MAX_PARAMETERS / Math.max(1, columns.length)))
      const head = `INSERT INTO ${quoteIdentifier(table)} (${columns.map(quoteIdentifier).join(', ')}) VALUES `
      await inTransaction(async (client) => {
        for (let start = 0; start < rows.length; start += rowsPerStatement) {
          const batch = rows.slice(start, start + rowsPerStatement)
          const values: unknown[] = []
          const tuples = batch.map((row) => {
            const slots = row.map((value) => {
              values.push(toPostgresValue(value))
              return `$${values.length}`
            })
            return `(${slots.join(', ')})`
          })
          await client.query(head + tuples.join(', '), values)
        }
      })
    },
  }
}

/** Rewrites `?` placeholders as `$1, $2, …`, leaving quoted text and identifiers alone. */
export function numberPlaceholders(sql: string): string {
  let index = 0
  return sql.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"|\?/g, (match) => (match === '?' ? `$${++index}` : match))
}

function toPostgresValue(value: SqlValue): unknown {
  // Timestamps without time zone hold UTC (as Prisma writes them): send UTC, never the local zone.
  if (value instanceof Date) return value.toISOString()
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  if (value !== null && typeof value === 'object') return JSON.stringify(value)
  return value
}
