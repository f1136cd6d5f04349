/** PostgreSQL: a server, reached through one `pg` pool shared with Prisma's pg adapter. */
import type { Engine } from '../engine.ts'
import { openPostgresIndexLab } from './index-advice.ts'
import { snapshotStatements } from './statements.ts'
import { openTenantSession } from './tenant-restore.ts'
import { postgresScratch } from './scratch.ts'
import { postgresLogicalLoad } from './logical-load.ts'
import { postgresPitr } from './pitr.ts'
import { openPostgres } from './connection.ts'
import { postgresMetrics } from './metrics.ts'
import { POSTGRES_RESTORE_ARTEFACT, openPostgresRestoreTarget } from './restore.ts'
import { postgresSnapshot } from './snapshot.ts'
import { ownsPostgresUrl, parsePostgresUrl } from './url.ts'
import { postgresValueCodec } from './values.ts'

export const postgresEngine: Engine = {
  name: 'postgres',
  label: 'PostgreSQL',
  dialect: 'postgres',
  ownsUrl: ownsPostgresUrl,
  parseUrl: parsePostgresUrl,
  open(location, options) {
    if (location.engine !== 'postgres') throw new Error(`not a PostgreSQL location: ${location.engine}`)
    return openPostgres({ connectionString: location.connectionString, redactedUrl: options.redactedUrl })
  },
  localState: () => undefined,
  missingCredentials: () => undefined,
  snapshot: postgresSnapshot,
  valueCodec: postgresValueCodec,
  openIndexLab: (db) => openPostgresIndexLab(db),
  snapshotStatements,
  metrics: postgresMetrics,
  restoreArtefact: POSTGRES_RESTORE_ARTEFACT,
  openRestoreTarget: openPostgresRestoreTarget,
  openTenantSession,
  logicalLoad: postgresLogicalLoad,
  scratch: postgresScratch,
  pitr: postgresPitr,
}
