/** Cloudflare D1: SQLite behind a binding, local (Miniflare) or remote (Cloudflare's HTTP API). */
import type { Engine } from '../engine.ts'
import { openSqliteIndexLab } from '../sqlite/index-advice.ts'
import { openTenantSession } from './tenant-restore.ts'
import { d1Scratch } from './scratch.ts'
import { sqliteLogicalLoad } from '../sqlite/logical-load.ts'
import { d1Pitr } from './pitr.ts'
import { d1Metrics } from './metrics.ts'
import { D1_RESTORE_ARTEFACT, openD1RestoreTarget } from './restore.ts'
import { d1Snapshot } from './snapshot.ts'
import { ownsD1Url, parseD1Url } from './url.ts'
import { sqliteValueCodec } from '../sqlite/values.ts'

export const d1Engine: Engine = {
  name: 'd1',
  label: 'D1',
  // D1 speaks SQLite and uses the SQLite Prisma schema.
  dialect: 'sqlite',
  ownsUrl: ownsD1Url,
  parseUrl: parseD1Url,
  async open(location, options) {
    if (location.engine !== 'd1') throw new Error(`not a D1 location: ${location.engine}`)
    // Loaded on demand: Miniflare alone adds ~120 MB of memory to every process that imports it.
    const { openLocalD1, openRemoteD1 } = await import('./connection.ts')
    return location.mode === 'local'
      ? openLocalD1({ persistDir: location.persistDir, redactedUrl: options.redactedUrl })
      : openRemoteD1({ ...location, token: options.environment.cloudflareD1Token, redactedUrl: options.redactedUrl })
  },
  localState: (location) => (location.engine === 'd1' && location.mode === 'local' ? location.persistDir : undefined),
  missingCredentials(location, environment) {
    if (location.engine !== 'd1' || location.mode !== 'remote' || environment.cloudflareD1Token !== undefined) return undefined
    return { reason: 'jeton d’API requis : CLOUDFLARE_D1_TOKEN n’est pas défini', hint: 'Définissez CLOUDFLARE_D1_TOKEN, ou vérifiez le D1 local avec --d1 d1://local.' }
  },
  snapshot: d1Snapshot,
  // D1 stores SQLite's values.
  valueCodec: sqliteValueCodec,
  // D1's round trips (Miniflare, the HTTP API) dwarf a statement's time: an applied index is measured on a copy.
  openIndexLab: (db, options) => openSqliteIndexLab(db, { ...options, timesLive: false, snapshot: d1Snapshot }),
  metrics: d1Metrics,
  restoreArtefact: D1_RESTORE_ARTEFACT,
  openRestoreTarget: openD1RestoreTarget,
  openTenantSession,
  // D1's restore artefact is a SQLite file (database.db): another engine's backup is loaded into one.
  logicalLoad: sqliteLogicalLoad,
  scratch: d1Scratch,
  pitr: d1Pitr,
}
