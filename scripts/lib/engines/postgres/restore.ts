/**
 * Restoring into PostgreSQL: database.sql is streamed (hash-checked) and run in ONE transaction
 * through the pg driver, `COPY … FROM stdin` blocks through pg-copy-streams; with `force` the old
 * objects are dropped inside that same transaction — any failure leaves the target exactly as it was.
 * A restore holds an advisory lock on the target database for its whole run (lockRestoreTarget).
 * A restore whose check fails is undone by the same load (_server-restore.ts).
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
import { shellWord } from '../../format.ts'
import type { RestoreTarget } from '../engine.ts'
import { serverRestoreTarget } from '../_server-restore.ts'
import { openPostgres } from './connection.ts'

export const POSTGRES_RESTORE_ARTEFACT = DATABASE_SQL_FILE

export async function openPostgresRestoreTarget(location: DatabaseLocation, options: { redactedUrl: string; dryRun: boolean }): Promise<RestoreTarget> {
  if (location.engine !== 'postgres') throw new Error(`not a PostgreSQL location: ${location.engine}`)
  const db = await openPostgres({ connectionString: location.connectionString, redactedUrl: options.redactedUrl })
  let lock: RestoreLock | undefined
  try {
    // Taken before the target is looked at, held until close: a dry run changes nothing and needs none.
    if (!options.dryRun) lock = await lockRestoreTarget(location.connectionString, options.redactedUrl)
    const target = await serverRestoreTarget({
      db,
      artefact: POSTGRES_RESTORE_ARTEFACT,
      existingObjects: postgresObjects,
      dropStatements: postgresDropStatements,
      // One transaction (-1), stopped at the first error; the URL as printed (a password shows as ****).
      runByHand: (script) => `psql ${shellWord(options.redactedUrl)} -1 -v ON_ERROR_STOP=1 -c ${shellWord(script.replaceAll('\n', ' '))}`,
      load: (_db, script, replace, midway) => loadPostgresScript(location.connectionString, script, replace, midway),
    })
    const closeTarget = target.close
    target.close = async () => {
      try {
        await closeTarget()
      } finally {
        await lock?.release()
      }
    }
    return target
  } catch (error) {
    await lock?.release()
    await db.close()
    throw error
  }
}

interface RestoreLock {
  release(): Promise<void>
}

/**
 * The restore's exclusive lock on a PostgreSQL database (as the SQLite restore's lock file): a
 * session advisory lock, on a connection of its own held for the whole run, so two overlapping
 * restores of one database cannot both run. Advisory locks belong to the database they are taken
 * in, so connecting to the target itself needs no other privilege; the key is derived from the
 * database's name. A killed restore's session ends, and its lock with it: nothing is left stale.
 */
async function lockRestoreTarget(connectionString: string, redactedUrl: string): Promise<RestoreLock> {
  const client = new pg.Client({ connectionString })
  // A server that goes away mid-run must not crash the process; the restore's own queries report it.
  client.on('error', () => {})
  await client.connect()
  try {
    const { rows } = await client.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock(hashtextextended('ipm-restore:' || current_database(), 0)) AS locked`)
    if (rows[0]?.locked !== true) {
      throw new ToolkitError(`une autre restauration de ${redactedUrl} est en cours : rien n’a été modifié`, {
        hint: 'Attendez la fin de cette restauration, puis relancez-la si besoin.',
      })
    }
  } catch (error) {
    await client.end().catch(() => {})
    throw error
  }
  // Ending the session releases the lock.
  return { release: () => client.end().catch(() => {}) }
}

/** The objects of the target's current schema that a restore would collide with. */
export async function postgresObjects(db: DatabaseHandle): Promise<string[]> {
  const rows = await db.sql.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
     UNION ALL SELECT t.typname FROM pg_type t WHERE t.typnamespace = current_schema()::regnamespace AND t.typtype = 'e' ORDER BY 1`,
  )
  return rows.map((r) => r.name)
}

/** One `DROP … CASCADE` per object of the current schema that postgresObjects lists (column `ddl`). */
const DROP_STATEMENTS_SQL = `SELECT format('DROP %s IF EXISTS %I CASCADE;', CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, c.relname) AS ddl
  FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  UNION ALL SELECT format('DROP TYPE IF EXISTS %I CASCADE;', t.typname) FROM pg_type t WHERE t.typnamespace = current_schema()::regnamespace AND t.typtype = 'e'`

/** The statements that drop every object of the target's current schema (a restore into an empty database undone). */
export async function postgresDropStatements(db: DatabaseHandle): Promise<string[]> {
  return (await db.sql.query<{ ddl: string }>(DROP_STATEMENTS_SQL)).map((r) => r.ddl)
}

/**
 * Runs database.sql in one transaction (its own BEGIN/COMMIT lines are ours), `COPY … FROM stdin`
 * blocks streamed; `replace` drops the current schema's objects first, in the same transaction.
 */
export async function loadPostgresScript(connectionString: string, script: string, replace: boolean, midway: () => void = () => {}): Promise<void> {
  const client = new pg.Client({ connectionString })
  await client.connect()
  try {
    await client.query('BEGIN')
    if (replace) {
      const { rows } = await client.query<{ ddl: string }>(DROP_STATEMENTS_SQL)
      for (const { ddl } of rows) await client.query(ddl)
    }
    const lines = createInterface({ input: createReadStream(script, { encoding: 'utf8', highWaterMark: 1 << 20 }), crlfDelay: Infinity })
    let statement = ''
    let copy: string[] | undefined
    let copyHead = ''
    let midwayCalled = false
    for await (const line of lines) {
      if (copy !== undefined) {
        if (line === '\\.') {
          const stream = client.query(copyStreams.from(copyHead))
          await pipeline(Readable.from(copy.map((l) => `${l}\n`)), stream)
          copy = undefined
          // A first table loaded (the old objects dropped), nothing committed.
          if (!midwayCalled) {
            midwayCalled = true
            midway()
          }
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
    if (!midwayCalled) midway()
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw new ToolkitError(`le chargement de database.sql a échoué, la cible est restée telle quelle : ${describeError(error)}`, { cause: error })
  } finally {
    await client.end()
  }
}
