/** The versions a test report records: the toolkit's own, and each database server's. */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { PROJECT_ROOT } from '../environment.ts'
import type { DatabaseHandle } from '../db/connection.ts'
import type { DatabaseLocation } from '../db/url.ts'

export interface ToolVersions {
  /** `ia-poste-manager-db-toolkit 2.0.0` */
  tool: string
  /** `v20.20.2` */
  node: string
  /** The Prisma Client the toolkit runs: `6.19.3` (read from its package.json: importing the generated client for it costs ~0.1 s of start-up). */
  prisma: string
}

const require = createRequire(import.meta.url)

/** @example toolVersions() // { tool: 'ia-poste-manager-db-toolkit 2.0.0', node: 'v20.20.2', prisma: '6.19.3' } */
export function toolVersions(): ToolVersions {
  const manifest = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { name: string; version: string }
  return { tool: `${manifest.name} ${manifest.version}`, node: process.version, prisma: packageVersion('@prisma/client') }
}

function packageVersion(name: string): string {
  try {
    return (require(`${name}/package.json`) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

const SERVER_VERSIONS: { [E in DatabaseLocation['engine']]: (db: DatabaseHandle, location: Extract<DatabaseLocation, { engine: E }>) => Promise<string> } = {
  async sqlite(db) {
    const [row] = await db.sql.query<{ version: string }>('SELECT sqlite_version() AS version')
    return `SQLite ${row?.version ?? 'unknown'}`
  },
  async postgres(db) {
    const [row] = await db.sql.query<{ version: string }>("SELECT current_setting('server_version') AS version")
    // "15.14 (Debian 15.14-0+deb12u1)" → "15.14"
    return `PostgreSQL ${row?.version.split(' ')[0] ?? 'unknown'}`
  },
  async d1(_db, location) {
    // D1 refuses sqlite_version() ("not authorized to use function"): name the runtime instead.
    return location.mode === 'local' ? `workerd ${packageVersion('workerd')} (Miniflare ${packageVersion('miniflare')})` : 'Cloudflare D1 (remote)'
  },
}

/**
 * The server behind an open database, as people name it.
 * @example await serverVersion(db) // 'PostgreSQL 15.14'
 */
export function serverVersion(db: DatabaseHandle): Promise<string> {
  const location = db.location
  return (SERVER_VERSIONS[location.engine] as (db: DatabaseHandle, location: DatabaseLocation) => Promise<string>)(db, location)
}
