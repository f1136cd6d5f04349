/**
 * Restoring into PostgreSQL: database.sql is streamed (hash-checked) and run in ONE transaction
 * through the pg driver, `COPY … FROM stdin` blocks through pg-copy-streams; with `force` the old
 * objects are dropped inside that same transaction — any failure leaves the target exactly as it was.
 */
import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import pg from 'pg'
import copyStreams from 'pg-copy-streams'
import { DATABASE_SQL_FILE } from '../snapshot.ts'
import type { DatabaseHandle } from '../../db/connection.ts'
import type { DatabaseLocation } from '../../db/url.ts'
import { ToolkitError, describeError } from '../../errors.ts'
import type { RestoreTarget } from '../engine.ts'
import { serverRestoreTarget } from '../_server-restore.ts'
import { openPostgres } from './connection.ts'

export const POSTGRES_RESTORE_ARTEFACT = DATABASE_SQL_FILE

export async function openPostgresRestoreTarget(location: DatabaseLocation, options: { redactedUrl: string }): Promise<RestoreTarget> {
  if (location.engine !== 'postgres') throw new Error(`not a PostgreSQL location: ${location.engine}`)
  const db = await openPostgres({ connectionString: location.connectionString, redactedUrl: options.redactedUrl })
  return serverRestoreTarget({
    db,
    artefact: POSTGRES_RESTORE_ARTEFACT,
    existingObjects: postgresObjects,
    load: (_db, script, replace) => loadPostgresScript(location.connectionString, script, replace),
  })
}

/** The objects of the target's current schema that a restore would collide with. */
export async function postgresObjects(db: DatabaseHandle): Promise<string[]> {
  const rows = await db.sql.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
     UNION ALL SELECT t.typname FROM pg_type t WHERE t.typnamespace = current_schema()::regnamespace AND t.typtype = 'e' ORDER BY 1`,
  )
  return rows.map((r) => r.name)
}

/**
 * Runs database.sql in one transaction (its own BEGIN/COMMIT lines are ours), `COPY … FROM stdin`
 * blocks streamed; `replace` drops the current schema's objects first, in the same transaction.
 */
export async function loadPostgresScript(connectionString: string, script: string, replace: boolean): Promise<void> {
  const client = new pg.Client({ connectionString })
  await client.connect()
  try {
    await client.query('BEGIN')
    if (replace) {
      const { rows } = await client.query<{ ddl: string }>(
        `SELECT format('DROP %s IF EXISTS %I CASCADE', CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, c.relname) AS ddl
         FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
         UNION ALL SELECT format('DROP TYPE IF EXISTS %I CASCADE', t.typname) FROM pg_type t WHERE t.typnamespace = current_schema()::regnamespace AND t.typtype = 'e'`,
      )
      for (const { ddl } of rows) await client.query(ddl)
    }
    const lines = createInterface({ input: createReadStream(script, { encoding: 'utf8', highWaterMark: 1 << 20 }), crlfDelay: Infinity })
    let statement = ''
    let copy: string[] | undefined
    let copyHead = ''
    for await (const line of lines) {
      if (copy !== undefined) {
        if (line === '\\.') {
          const stream = client.query(copyStreams.from(copyHead))
          await pipeline(Readable.from(copy.map((l) => `${l}\n`)), stream)
          copy = undefined
        } else {
          copy.push(line)
          if (copy.length >= 10_000) {
            // Large tables: send what we have as its own COPY (same table, same columns).
            const stream = client.query(copyStreams.from(copyHead))
            await pipeline(Readable.from(copy.map((l) => `${l}\n`)), stream)
            copy = []
          }
        }
        continue
      }
      const between = statement.trim() === '' || /^(\s*--[^\n]*\n)*\s*$/.test(statement)
      if (between && (line === 'BEGIN;' || line === 'COMMIT;')) continue
      if (between && /^COPY .* FROM stdin;$/.test(line)) {
        statement = ''
        copyHead = line.slice(0, -1)
        copy = []
        continue
      }
      statement += `${line}\n`
      if (line.trimEnd().endsWith(';') && !line.startsWith('--')) {
        await client.query(statement)
        statement = ''
      }
    }
    if (copy !== undefined) throw new ToolkitError('database.sql se termine au milieu d’un bloc COPY')
    if (statement.trim() !== '' && !/^(\s*--.*\n)*\s*$/.test(statement)) await client.query(statement)
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw new ToolkitError(`le chargement de database.sql a échoué, la cible est restée telle quelle : ${describeError(error)}`, { cause: error })
  } finally {
    await client.end()
  }
}
