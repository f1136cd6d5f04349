/** SQLite: a file, opened through better-sqlite3 and Prisma's better-sqlite3 adapter. */
import type { Engine } from '../engine.ts'
import { openSqliteIndexLab } from './index-advice.ts'
import { openTenantSession } from './tenant-restore.ts'
import { sqliteScratch } from './scratch.ts'
import { sqliteLogicalLoad } from './logical-load.ts'
import { sqlitePitr } from './pitr.ts'
import { openSqlite } from './connection.ts'
import { sqliteMetrics } from './metrics.ts'
import { SQLITE_RESTORE_ARTEFACT, openSqliteRestoreTarget } from './restore.ts'
import { sqliteSnapshot } from './snapshot.ts'
import { ownsSqliteUrl, parseSqliteUrl } from './url.ts'
import { sqliteValueCodec } from './values.ts'

export const sqliteEngine: Engine = {
  name: 'sqlite',
  label: 'SQLite',
  dialect: 'sqlite',
  ownsUrl: ownsSqliteUrl,
  parseUrl: parseSqliteUrl,
  open(location, options) {
    if (location.engine !== 'sqlite') throw new Error(`not a SQLite location: ${location.engine}`)
    return openSqlite({ path: location.path, redactedUrl: options.redactedUrl, create: options.create })
  },
  localState: () => undefined,
  missingCredentials: () => undefined,
  snapshot: sqliteSnapshot,
  valueCodec: sqliteValueCodec,
  openIndexLab: (db, options) => openSqliteIndexLab(db, { ...options, snapshot: sqliteSnapshot }),
  metrics: sqliteMetrics,
  restoreArtefact: SQLITE_RESTORE_ARTEFACT,
  openRestoreTarget: openSqliteRestoreTarget,
  openTenantSession,
  logicalLoad: sqliteLogicalLoad,
  scratch: sqliteScratch,
  pitr: sqlitePitr,
}
