/**
 * Cloudflare D1: SQLite behind a binding, local (Miniflare) or remote (Cloudflare's HTTP API).
 * Miniflare (~0.6 s of CPU and ~120 MB to load), the Prisma client and the SQLite driver are
 * imported by the members that use them (../_loaded-on-call.ts says why).
 */
import { resolve } from 'node:path'
import type { Engine } from '../engine.ts'
import { DATABASE_FILE } from '../snapshot.ts'
import { METRICS_METHODS, PITR_METHODS, loadedOnCall } from '../_loaded-on-call.ts'
import { lockableBeside } from '../_restore-lock.ts'
import { d1Scratch } from './scratch.ts'
import { ownsD1Url, parseD1Url } from './url.ts'
import { sqliteValueCodec } from '../sqlite/values.ts'

const snapshot: Engine['snapshot'] = async (db, options) => (await import('./snapshot.ts')).d1Snapshot(db, options)

const open: Engine['open'] = async (location, options) => {
  if (location.engine !== 'd1') throw new Error(`not a D1 location: ${location.engine}`)
  const { openLocalD1, openRemoteD1 } = await import('./connection.ts')
  return location.mode === 'local'
    ? openLocalD1({ persistDir: location.persistDir, redactedUrl: options.redactedUrl })
    : openRemoteD1({ ...location, token: options.environment.cloudflareD1Token, redactedUrl: options.redactedUrl })
}

export const d1Engine: Engine = {
  name: 'd1',
  label: 'D1',
  // D1 speaks SQLite and uses the SQLite Prisma schema.
  dialect: 'sqlite',
  ownsUrl: ownsD1Url,
  parseUrl: parseD1Url,
  open,
  // Beside Miniflare's start (or the HTTP API's round trips) the Prisma client costs little: the SQL-only handle is the full one.
  openSql: open,
  localState: (location) => (location.engine === 'd1' && location.mode === 'local' ? location.persistDir : undefined),
  missingCredentials(location, environment) {
    if (location.engine !== 'd1' || location.mode !== 'remote' || environment.cloudflareD1Token !== undefined) return undefined
    return { reason: 'jeton d’API requis : CLOUDFLARE_D1_TOKEN n’est pas défini', hint: 'Définissez CLOUDFLARE_D1_TOKEN, ou vérifiez le D1 local avec --d1 d1://local.' }
  },
  snapshot,
  // D1 stores SQLite's values.
  valueCodec: sqliteValueCodec,
  // D1's round trips (Miniflare, the HTTP API) dwarf a statement's time: an applied index is measured on a copy.
  openIndexLab: async (db, options) => (await import('../sqlite/index-advice.ts')).openSqliteIndexLab(db, { ...options, timesLive: false, snapshot }),
  metrics: loadedOnCall(() => import('./metrics.ts').then((m) => m.d1Metrics), METRICS_METHODS),
  // restore.ts's D1_RESTORE_ARTEFACT, without loading the restore steps.
  restoreArtefact: DATABASE_FILE,
  // A file beside a local D1's state folder, taken before Miniflare opens it (a second workerd on the same
  // files gets SQLITE_BUSY); Cloudflare's API offers no lock for a remote D1.
  restoreLockFile: (location) => (location.engine === 'd1' && location.mode === 'local' ? lockableBeside(resolve(location.persistDir)) : null),
  openRestoreTarget: async (location, options) => (await import('./restore.ts')).openD1RestoreTarget(location, options),
  openTenantSession: async (db) => (await import('./tenant-restore.ts')).openTenantSession(db),
  // D1's restore artefact is a SQLite file (database.db): another engine's backup is loaded into one.
  logicalLoad: async () => (await import('../sqlite/logical-load.ts')).sqliteLogicalLoad,
  scratch: d1Scratch,
  pitr: loadedOnCall(() => import('./pitr.ts').then((m) => m.d1Pitr), PITR_METHODS),
}
