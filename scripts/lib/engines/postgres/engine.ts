/**
 * PostgreSQL: a server, reached through one `pg` pool shared with Prisma's pg adapter. `pg`, the
 * Prisma client and pgBackRest's driving are imported by the members that use them
 * (../_loaded-on-call.ts says why).
 */
import type { Engine } from '../engine.ts'
import { DATABASE_SQL_FILE } from '../snapshot.ts'
import { METRICS_METHODS, PITR_METHODS, SCRATCH_METHODS, loadedOnCall } from '../_loaded-on-call.ts'
import { snapshotStatements } from './statements.ts'
import { ownsPostgresUrl, parsePostgresUrl } from './url.ts'
import { postgresValueCodec } from './values.ts'

export const postgresEngine: Engine = {
  name: 'postgres',
  label: 'PostgreSQL',
  dialect: 'postgres',
  ownsUrl: ownsPostgresUrl,
  parseUrl: parsePostgresUrl,
  async open(location, options) {
    if (location.engine !== 'postgres') throw new Error(`not a PostgreSQL location: ${location.engine}`)
    const { openPostgres } = await import('./connection.ts')
    return openPostgres({ connectionString: location.connectionString, redactedUrl: options.redactedUrl })
  },
  async openSql(location, options) {
    if (location.engine !== 'postgres') throw new Error(`not a PostgreSQL location: ${location.engine}`)
    const { openPostgresSql } = await import('./connection.ts')
    return openPostgresSql({ connectionString: location.connectionString, redactedUrl: options.redactedUrl })
  },
  localState: () => undefined,
  missingCredentials: () => undefined,
  snapshot: async (db, options) => (await import('./snapshot.ts')).postgresSnapshot(db, options),
  valueCodec: postgresValueCodec,
  openIndexLab: async (db) => (await import('./index-advice.ts')).openPostgresIndexLab(db),
  snapshotStatements,
  metrics: loadedOnCall(() => import('./metrics.ts').then((m) => m.postgresMetrics), METRICS_METHODS),
  // restore.ts's POSTGRES_RESTORE_ARTEFACT, without loading the restore steps.
  restoreArtefact: DATABASE_SQL_FILE,
  // Locked by an advisory lock on the server, taken in openRestoreTarget (restore.ts).
  restoreLockFile: () => null,
  openRestoreTarget: async (location, options) => (await import('./restore.ts')).openPostgresRestoreTarget(location, options),
  openTenantSession: async (db) => (await import('./tenant-restore.ts')).openTenantSession(db),
  logicalLoad: async () => (await import('./logical-load.ts')).postgresLogicalLoad,
  scratch: loadedOnCall(() => import('./scratch.ts').then((m) => m.postgresScratch), SCRATCH_METHODS),
  pitr: loadedOnCall(() => import('./pitr.ts').then((m) => m.postgresPitr), PITR_METHODS),
}
