/**
 * The one client factory: a URL in, an open database out, whatever the engine.
 *
 * @example
 * const db = await openDatabase('file:./prisma/dev.db', { cwd: environment.projectRoot, environment })
 * console.log(db.engine, db.redactedUrl, await db.prisma.plan.count())
 * await db.close()
 */
import type { ToolkitEnvironment } from '../environment.ts'
import { engineForUrl } from '../engines/index.ts'
import type { DatabaseHandle, SqlHandle } from './connection.ts'
import { redactUrl } from './url.ts'

export interface OpenDatabaseOptions {
  /** Create a missing SQLite file (its directory must exist). Default: false, a missing file is an error. */
  create?: boolean
  /** Base of relative SQLite and D1 paths. Default: the environment's working directory. */
  cwd?: string
  /** Resolved once by the script (scripts/lib/environment.ts); the library never reads the process's own. */
  environment: ToolkitEnvironment
}

export async function openDatabase(url: string, options: OpenDatabaseOptions): Promise<DatabaseHandle> {
  const { engine, location, openOptions } = resolveOpen(url, options)
  return engine.open(location, openOptions)
}

/**
 * The database without its Prisma Client, for jobs that only read and write SQL (backups): the
 * driver is loaded, the Prisma runtime is not.
 * @example const db = await openSqlDatabase('file:./prisma/dev.db', { environment }); await db.sql.query('SELECT 1')
 */
export async function openSqlDatabase(url: string, options: OpenDatabaseOptions): Promise<SqlHandle> {
  const { engine, location, openOptions } = resolveOpen(url, options)
  return engine.openSql(location, openOptions)
}

function resolveOpen(url: string, options: OpenDatabaseOptions) {
  const environment = options.environment
  const engine = engineForUrl(url)
  const location = engine.parseUrl(url, { cwd: options.cwd ?? environment.cwd, d1PersistDir: environment.d1PersistDir })
  return { engine, location, openOptions: { redactedUrl: redactUrl(url), create: options.create ?? false, environment } }
}
