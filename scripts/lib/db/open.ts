/**
 * The one client factory: a URL in, an open database out, whatever the engine.
 *
 * @example
 * const db = await openDatabase('file:./prisma/dev.db')
 * console.log(db.engine, db.redactedUrl, await db.prisma.plan.count())
 * await db.close()
 */
import { resolveEnvironment, type ToolkitEnvironment } from '../environment.ts'
import type { DatabaseHandle } from './connection.ts'
import { parseDatabaseUrl, redactUrl } from './url.ts'
import { openSqlite } from '../engines/sqlite/connection.ts'
import { openPostgres } from '../engines/postgres/connection.ts'

export interface OpenDatabaseOptions {
  /** Create a missing SQLite file (its directory must exist). Default: false, a missing file is an error. */
  create?: boolean
  /** Base of relative SQLite and D1 paths. Default: the working directory. */
  cwd?: string
  environment?: ToolkitEnvironment
}

export async function openDatabase(url: string, options: OpenDatabaseOptions = {}): Promise<DatabaseHandle> {
  const environment = options.environment ?? resolveEnvironment()
  const location = parseDatabaseUrl(url, { cwd: options.cwd ?? process.cwd(), d1PersistDir: environment.d1PersistDir })
  const redactedUrl = redactUrl(url)
  switch (location.engine) {
    case 'sqlite':
      return openSqlite({ path: location.path, redactedUrl, create: options.create ?? false })
    case 'postgres':
      return openPostgres({ connectionString: location.connectionString, redactedUrl })
    case 'd1': {
      // Loaded on demand: Miniflare alone adds ~120 MB of memory to every process that imports it.
      const { openLocalD1, openRemoteD1 } = await import('../engines/d1/connection.ts')
      return location.mode === 'local'
        ? openLocalD1({ persistDir: location.persistDir, redactedUrl })
        : openRemoteD1({ ...location, token: environment.cloudflareD1Token, redactedUrl })
    }
  }
}
