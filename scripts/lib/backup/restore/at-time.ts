/**
 * Restore to a point in time, whatever the engine: the engine gives the database as it was at T
 * (Engine.pitr.stateAt: a SQLite file rebuilt from the replica, a PostgreSQL cluster restored on a
 * scratch port, or D1 restored in place by Time Travel); a copy of it is then taken as an ordinary
 * backup in a private scratch folder, and the one restore flow (flow.ts: verify, safety copy, atomic
 * replace, check, report) puts it into the target — or, with `tenant`, the tenant restore replaces one
 * cabinet's rows from that same backup. Nothing of the restore flow is copied here.
 */
import { rm } from 'node:fs/promises'
import { privateScratchDir } from '../../fs/leftovers.ts'
import { redactUrl } from '../../db/url.ts'
import type { ToolkitEnvironment } from '../../environment.ts'
import { ToolkitError } from '../../errors.ts'
import type { PitrReport, PitrSettings } from '../../engines/engine.ts'
import { engineForUrl } from '../../engines/index.ts'
import type { ReplicaStore } from '../../replication/store.ts'
import { restoreTenant, type RestoreTenantResult } from '../../tenant-restore/restore.ts'
import { createBackup } from '../create/create.ts'
import { restoreBackup, type RestoreBackupOptions } from './flow.ts'
import type { RestoreResult } from './steps.ts'

export interface RestoreAtTimeOptions extends Omit<PitrSettings, 'environment'> {
  /** The database whose history is read (its engine decides how). */
  databaseUrl: string
  at: Date
  /** Where the state at T goes (default: `databaseUrl` itself). */
  target: string
  replica?: ReplicaStore
  keepScratch: boolean
  tenant?: string
  yes: boolean
  force?: boolean
  backupDir: string
  environment: ToolkitEnvironment
  cwd: string
  prismaSchemaSha256: RestoreBackupOptions['prismaSchemaSha256']
  tool: { name: string; version: string }
  step?: RestoreBackupOptions['step']
}

export interface RestoreAtTimeResult {
  at: string
  /** The exact commit time the restored state ends with (null: none known). */
  reachedAt: string | null
  pointInTime: PitrReport
  /** The five steps into the target (absent: restored in place, or kept for inspection, or a tenant). */
  restore?: RestoreResult
  tenant?: Omit<RestoreTenantResult, 'plan'> & { tenant: string }
}

/**
 * @example await restoreAtTime({ databaseUrl: 'file:prisma/dev.db', at: parseInstant('2026-03-01T14:05:00+01:00'), target: 'file:prisma/dev.db', replica, keepScratch: false, yes: true, backupDir, environment, cwd, prismaSchemaSha256, tool })
 */
export async function restoreAtTime(options: RestoreAtTimeOptions): Promise<RestoreAtTimeResult> {
  const engine = engineForUrl(options.databaseUrl)
  const location = engine.parseUrl(options.databaseUrl, { cwd: options.cwd, d1PersistDir: options.environment.d1PersistDir })
  if (!options.yes && !options.keepScratch) {
    throw new ToolkitError(`restore --at remplace ${redactUrl(options.target)} et demande une confirmation.`, { hint: 'Ajoutez --yes (ou --keep-scratch pour seulement examiner l’état à cet instant).', exitCode: 2 })
  }
  const state = await engine.pitr.stateAt(location, { ...options, at: options.at })
  if (state.kind === 'database') {
    const close = state.close
    let closing: Promise<void> | undefined
    state.close = () => (closing ??= close())
  }
  const base = { at: options.at.toISOString(), reachedAt: state.reachedAt?.toISOString() ?? null, pointInTime: state.report }
  if (state.kind === 'restored-in-place' || state.kept) return base
  const scratch = await privateScratchDir('ipm-pitr-copy-', options.scratchDir)
  try {
    const copyEngine = engineForUrl(state.url)
    const db = await copyEngine.open(copyEngine.parseUrl(state.url, { cwd: options.cwd, d1PersistDir: options.environment.d1PersistDir }), { redactedUrl: redactUrl(state.url), create: false, environment: options.environment })
    let id: string
    try {
      const copy = await createBackup({ db, backupDir: scratch, formats: options.tenant === undefined ? [] : ['json'], compress: false, verify: true, tool: options.tool, prismaSchemaSha256: options.prismaSchemaSha256(copyEngine.dialect) })
      id = copy.metadata.id
    } finally {
      await db.close()
    }
    await state.close()
    if (options.tenant !== undefined) {
      const targetEngine = engineForUrl(options.target)
      const target = await targetEngine.open(targetEngine.parseUrl(options.target, { cwd: options.cwd, d1PersistDir: options.environment.d1PersistDir }), { redactedUrl: redactUrl(options.target), create: false, environment: options.environment })
      try {
        const { plan: _plan, ...done } = await restoreTenant({ backup: { backupDir: scratch, id }, target, tenant: options.tenant, safetyDir: options.backupDir })
        return { ...base, tenant: { tenant: options.tenant, ...done } }
      } finally {
        await target.close()
      }
    }
    const restore = await restoreBackup({
      backupDir: scratch,
      safetyDir: options.backupDir,
      id,
      target: options.target,
      yes: true,
      force: options.force ?? false,
      prismaSchemaSha256: options.prismaSchemaSha256,
      tool: options.tool,
      environment: options.environment,
      cwd: options.cwd,
      ...(options.step !== undefined ? { step: options.step } : {}),
    })
    return { ...base, restore }
  } finally {
    await state.close()
    await rm(scratch, { recursive: true, force: true })
  }
}
