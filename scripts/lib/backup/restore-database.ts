/**
 * Restoring into a database server: PostgreSQL backups into a PostgreSQL database, D1 backups into
 * a D1 database, and `restoreBackup`, which picks the right restore for a target.
 *
 * The target must be empty; a non-empty one only with `force`, and then a full backup of it is
 * taken into the backup folder first (the safety export). Steps as for SQLite: 1 verify (hashes,
 * safe archive, engine), 2 safety export, 3 load, 4 check (row counts per table against the
 * metadata), 5 report.
 * - PostgreSQL: database.sql is streamed (hash-checked) and run in ONE transaction through the pg
 *   driver, `COPY … FROM stdin` blocks through pg-copy-streams; with `force` the old objects are
 *   dropped inside that same transaction — any failure leaves the target exactly as it was.
 * - D1: the tables are created, the rows of database.db inserted in foreign-key order (batched),
 *   then indexes, triggers and views. D1 has no transaction across requests, so a failure midway
 *   leaves a partial database: the error says so, and the safety export (if any) holds the old one.
 */
import { createReadStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import Database from 'better-sqlite3'
import pg from 'pg'
import copyStreams from 'pg-copy-streams'
import { quoteIdentifier, type DatabaseHandle } from '../db/connection.ts'
import { openDatabase } from '../db/open.ts'
import { tablesInDependencyOrder } from '../db/table-reader.ts'
import { openSqliteTableReader } from '../engines/sqlite/table-reader.ts'
import { parseDatabaseUrl } from '../db/url.ts'
import { ToolkitError, describeError } from '../errors.ts'
import { createBackup } from './create.ts'
import { extractBackupFile } from './extract.ts'
import { GzipPool } from './gzip-blocks.ts'
import { DATABASE_FILE, DATABASE_SQL_FILE } from './layout.ts'
import type { BackupMetadata } from './metadata.ts'
import { restoreSqlite, restoreStepRunner, verifyChain, type RestorePlan, type RestoreResult, type RestoreStepResult, type SqliteRestoreOptions } from './restore.ts'

/** The SQLite restore's options, for any target engine. */
export interface RestoreBackupOptions extends Omit<SqliteRestoreOptions, 'target' | 'prismaSchemaSha256'> {
  /** A SQLite path, or a database URL (file:, postgresql://, d1://). */
  target: string
  /** The toolkit's Prisma schema hashes, per dialect. */
  prismaSchemaSha256: (dialect: 'sqlite' | 'postgres') => string | null
  tool: { name: string; version: string }
  cwd?: string
}

/**
 * Restores backup `id` into `target`, whatever its engine.
 * @example await restoreBackup({ backupDir: 'backups', id, target: 'postgresql://…/app', yes: true, force: false, prismaSchemaSha256, tool })
 */
export async function restoreBackup(options: RestoreBackupOptions): Promise<RestoreResult> {
  const cwd = options.cwd ?? process.cwd()
  // A URL has a scheme; `C:\\…` (a Windows path) does not count as one.
  const isUrl = /^[a-z][a-z0-9+.-]*:/i.test(options.target) && !/^[a-z]:[\\/]/i.test(options.target)
  const location = isUrl ? parseDatabaseUrl(options.target, { cwd, d1PersistDir: options.environment?.d1PersistDir ?? '.wrangler/state/d1' }) : { engine: 'sqlite' as const, path: resolve(cwd, options.target) }
  if (location.engine === 'sqlite') {
    return restoreSqlite({ ...options, target: location.path, prismaSchemaSha256: options.prismaSchemaSha256('sqlite') })
  }
  return restoreIntoServer({ ...options, target: options.target, engine: location.engine })
}

async function restoreIntoServer(options: RestoreBackupOptions & { engine: 'postgres' | 'd1' }): Promise<RestoreResult> {
  const startedAt = performance.now()
  const steps: RestoreStepResult[] = []
  const timed = restoreStepRunner(steps, options.step)
  const pool = new GzipPool({ threads: options.threads })
  const scratchDir = await mkdtemp(join(tmpdir(), 'ipm-restore-'))
  let db: DatabaseHandle | undefined
  try {
    const { metadata, entry } = await timed(1, 'verify', async () => {
      const { chain } = await verifyChain(options.backupDir, options.id, pool, options.onProgress)
      const m = chain.at(-1)!.metadata!
      if (m.engine !== options.engine) {
        throw new ToolkitError(`backup ${options.id} is a ${label(m.engine)} backup and the target is a ${label(options.engine)} database`, {
          hint: `Restore it into a ${label(m.engine)} target, or pick a ${label(options.engine)} backup (\`advanced-backup list\`).`,
        })
      }
      const expected = options.prismaSchemaSha256(options.engine === 'postgres' ? 'postgres' : 'sqlite')
      if (!options.force && m.schema.prismaSchemaSha256 !== null && expected !== null && m.schema.prismaSchemaSha256 !== expected) {
        throw new ToolkitError(`backup ${options.id} was made with another Prisma schema (${m.schema.prismaSchemaSha256.slice(0, 12)}…) than this toolkit's (${expected.slice(0, 12)}…)`, {
          hint: 'Restore a backup of the same schema version, or --force.',
        })
      }
      return { value: { metadata: m, entry: chain.at(-1)! }, detail: `${m.files.length} fichier(s) vérifié(s), hash ${m.hash.slice(0, 12)}…` }
    })
    db = await openDatabase(options.target, { cwd: options.cwd, environment: options.environment })
    const existing = await existingObjects(db)
    const plan: RestorePlan = {
      id: options.id,
      chain: [options.id],
      engine: metadata.engine,
      target: db.redactedUrl,
      targetExists: existing.length > 0,
      safetyCopy: null,
      timestamp: metadata.timestamp,
      tables: metadata.tables,
    }
    if (existing.length > 0 && !options.force) {
      throw new ToolkitError(`the target ${db.redactedUrl} is not empty (${existing.slice(0, 5).join(', ')}${existing.length > 5 ? ', …' : ''}): restore loads into an empty database`, {
        hint: '--force (a full backup of the target is taken into the backup folder first), or restore into a new empty database.',
      })
    }
    const artefact = options.engine === 'postgres' ? DATABASE_SQL_FILE : DATABASE_FILE
    const local = join(scratchDir, artefact)
    await extractBackupFile(entry, metadata, artefact, local, { pool })
    if (options.dryRun) {
      steps.push({ step: 2, name: 'safety-copy', status: 'skipped', detail: 'simulation', durationMs: 0 })
      steps.push({ step: 3, name: 'replace', status: 'skipped', detail: `simulation: ${artefact} extrait et vérifié, cible intacte`, durationMs: 0 })
      return { ...plan, steps, dryRun: true, restored: false, counts: metadata.tables.map((t) => ({ name: t.name, expected: t.rows, actual: null })), integrity: 'not checked (dry run)', foreignKeyViolations: 0, size: 0, durationMs: Math.round(performance.now() - startedAt), warnings: metadata.warnings }
    }
    await options.step?.('confirm')
    if (!options.yes) {
      if (options.confirm === undefined) throw new ToolkitError(`restore into ${db.redactedUrl} needs a confirmation, but there is no terminal to ask on`, { hint: '--yes' })
      if (!(await options.confirm(plan))) throw new ToolkitError('restore cancelled: nothing was changed')
    }
    await timed(2, 'safety-copy', async () => {
      if (existing.length === 0) return { value: undefined, detail: 'cible vide: rien à sauvegarder' }
      const safety = await createBackup({ db: db!, backupDir: options.backupDir, formats: ['sql', 'json', 'csv'], compress: true, verify: true, tool: options.tool, prismaSchemaSha256: options.prismaSchemaSha256(options.engine === 'postgres' ? 'postgres' : 'sqlite') })
      plan.safetyCopy = safety.path
      return { value: undefined, detail: `export de sécurité de la cible: ${safety.metadata.id}` }
    })
    await timed(3, 'replace', async () => {
      if (options.engine === 'postgres') {
        if (db!.location.engine !== 'postgres') throw new Error('unreachable')
        await loadPostgresScript(db!.location.connectionString, local, existing.length > 0)
      } else {
        await loadIntoD1(db!, local, existing.length > 0)
      }
      return { value: undefined, detail: `${artefact} chargé dans ${db!.redactedUrl}` }
    })
    const counts = await timed(4, 'check', async () => {
      const reader = await db!.openTableReader()
      try {
        const tables = await reader.tables()
        const counts: RestoreResult['counts'] = []
        for (const t of metadata.tables) {
          const table = tables.find((x) => x.name === t.name)
          counts.push({ name: t.name, expected: t.rows, actual: table ? await reader.count(table) : null })
        }
        const wrong = counts.filter((c) => c.actual !== c.expected)
        if (wrong.length > 0) throw new ToolkitError(`row counts differ from the metadata: ${wrong.map((c) => `${c.name} ${c.actual ?? 'missing'} instead of ${c.expected}`).join(', ')}`)
        return { value: counts, detail: `${counts.length} tables / ${counts.reduce((n, c) => n + c.expected, 0).toLocaleString('fr-FR')} lignes = métadonnées` }
      } finally {
        await reader.close()
      }
    })
    await options.step?.('report')
    steps.push({ step: 5, name: 'report', status: 'ok', detail: `base restaurée: ${counts.length} tables`, durationMs: 0 })
    return { ...plan, steps, dryRun: false, restored: true, counts, integrity: 'ok', foreignKeyViolations: 0, size: metadata.contentSize, durationMs: Math.round(performance.now() - startedAt), warnings: metadata.warnings }
  } finally {
    await db?.close()
    await rm(scratchDir, { recursive: true, force: true })
    await pool.close()
  }
}

function label(engine: BackupMetadata['engine']): string {
  return engine === 'postgres' ? 'PostgreSQL' : engine === 'd1' ? 'D1' : 'SQLite'
}

/** The objects of the target that a restore would collide with. */
async function existingObjects(db: DatabaseHandle): Promise<string[]> {
  if (db.engine === 'postgres') {
    const rows = await db.sql.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
       UNION ALL SELECT t.typname FROM pg_type t WHERE t.typnamespace = current_schema()::regnamespace AND t.typtype = 'e' ORDER BY 1`,
    )
    return rows.map((r) => r.name)
  }
  const rows = await db.sql.query<{ name: string }>(
    `SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name`,
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
    if (copy !== undefined) throw new ToolkitError('database.sql ends inside a COPY block')
    if (statement.trim() !== '' && !/^(\s*--.*\n)*\s*$/.test(statement)) await client.query(statement)
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw new ToolkitError(`loading database.sql failed, the target was left as it was: ${describeError(error)}`, { cause: error })
  } finally {
    await client.end()
  }
}

/** Recreates a SQLite file's schema and rows in D1 (foreign-key order, batched inserts). */
async function loadIntoD1(db: DatabaseHandle, file: string, replace: boolean): Promise<void> {
  const source = new Database(file, { readonly: true, fileMustExist: true })
  try {
    if (replace) {
      const existing = await existingObjects(db)
      const views = await db.sql.query<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'view'`)
      const viewNames = new Set(views.map((v) => v.name))
      await db.sql.executeScript(['PRAGMA defer_foreign_keys = on;', ...existing.map((name) => `DROP ${viewNames.has(name) ? 'VIEW' : 'TABLE'} IF EXISTS ${quoteIdentifier(name)};`)].join('\n'))
    }
    const schema = source.prepare(`SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid`).all() as { type: string; name: string; sql: string }[]
    await db.sql.executeScript(schema.filter((s) => s.type === 'table').map((s) => `${s.sql};`).join('\n'))
    const reader = openSqliteTableReader(file)
    try {
      for (const table of tablesInDependencyOrder(await reader.tables())) {
        const columns = table.columns.map((c) => c.name)
        const select = source.prepare(`SELECT ${columns.map(quoteIdentifier).join(', ')} FROM ${quoteIdentifier(table.name)}`).raw(true)
        let batch: unknown[][] = []
        for (const row of select.iterate() as IterableIterator<unknown[]>) {
          batch.push(row)
          if (batch.length === 500) {
            await db.sql.insertRows(table.name, columns, batch as never)
            batch = []
          }
        }
        if (batch.length > 0) await db.sql.insertRows(table.name, columns, batch as never)
      }
    } finally {
      await reader.close()
    }
    const rest = schema.filter((s) => s.type !== 'table')
    if (rest.length > 0) await db.sql.executeScript(rest.map((s) => `${s.sql};`).join('\n'))
  } catch (error) {
    throw new ToolkitError(`loading into D1 failed midway (D1 has no transaction across requests: the target may hold part of the backup): ${describeError(error)}`, {
      hint: 'Empty the target and restore again (--force keeps a safety export first).',
      cause: error,
    })
  } finally {
    source.close()
  }
}
