/**
 * SQLite: a file, opened through better-sqlite3 and Prisma's better-sqlite3 adapter. The driver,
 * the Prisma client and the WAL replication are imported by the members that use them
 * (../_loaded-on-call.ts says why); `openSql` loads the driver without the Prisma client.
 */
import type { Engine } from '../engine.ts'
import { DATABASE_FILE } from '../snapshot.ts'
import { METRICS_METHODS, PITR_METHODS, loadedOnCall } from '../_loaded-on-call.ts'
import { lockableBeside } from '../_restore-lock.ts'
import { sqliteScratch } from './scratch.ts'
import { ownsSqliteUrl, parseSqliteUrl, sqliteRealPath } from './url.ts'
import { sqliteValueCodec } from './values.ts'

const snapshot: Engine['snapshot'] = async (db, options) => (await import('./snapshot.ts')).sqliteSnapshot(db, options)

export const sqliteEngine: Engine = {
  name: 'sqlite',
  label: 'SQLite',
  dialect: 'sqlite',
  ownsUrl: ownsSqliteUrl,
  parseUrl: parseSqliteUrl,
  async open(location, options) {
    if (location.engine !== 'sqlite') throw new Error(`not a SQLite location: ${location.engine}`)
    const { openSqlite } = await import('./connection.ts')
    return openSqlite({ path: location.path, redactedUrl: options.redactedUrl, create: options.create })
  },
  async openSql(location, options) {
    if (location.engine !== 'sqlite') throw new Error(`not a SQLite location: ${location.engine}`)
    const { openSqliteSql } = await import('./connection.ts')
    return openSqliteSql({ path: location.path, redactedUrl: options.redactedUrl, create: options.create })
  },
  localState: () => undefined,
  missingCredentials: () => undefined,
  snapshot,
  readInPlace: async (db) => (await import('./read-in-place.ts')).sqliteReadInPlace(db),
  valueCodec: sqliteValueCodec,
  openIndexLab: async (db, options) => (await import('./index-advice.ts')).openSqliteIndexLab(db, { ...options, snapshot }),
  metrics: loadedOnCall(() => import('./metrics.ts').then((m) => m.sqliteMetrics), METRICS_METHODS),
  // Named here, not in restore.ts: reading it must not load the restore steps.
  restoreArtefact: DATABASE_FILE,
  restoreLockFile: (location) => (location.engine === 'sqlite' ? lockableBeside(sqliteRealPath(location.path)) : null),
  openRestoreTarget: async (location, options) => (await import('./restore.ts')).openSqliteRestoreTarget(location, options),
  openTenantSession: async (db) => (await import('./tenant-restore.ts')).openTenantSession(db),
  logicalLoad: async () => (await import('./logical-load.ts')).sqliteLogicalLoad,
  scratch: sqliteScratch,
  pitr: loadedOnCall(() => import('./pitr.ts').then((m) => m.sqlitePitr), PITR_METHODS),
}
