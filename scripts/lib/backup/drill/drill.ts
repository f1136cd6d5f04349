/**
 * A restore drill: proof that a backup restores, not only that its bytes are intact. The backup is
 * restored (through the caller's restore, the very path of `restore`) into a scratch database of
 * its engine — never the live one — then checked: the engine's integrity checks, every table's row
 * count and content checksum against the ones metadata recorded at create, the migration status
 * against the committed migrations, and the six read queries of the performance tests.
 *
 * Invariant: the scratch database and the drill's folder are removed when the drill ends, failed
 * or not; a drill killed before that (SIGKILL) leaves them named after its process id, and the next
 * drill removes every leftover whose process is gone (folders here, databases through the engine).
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase } from '../../db/open.ts'
import type { DatabaseHandle } from '../../db/connection.ts'
import type { ToolkitEnvironment } from '../../environment.ts'
import { ToolkitError, describeError } from '../../errors.ts'
import { engineNamed } from '../../engines/index.ts'
import type { IntegrityFinding, RestoredCheck } from '../../engines/engine.ts'
import { removeDeadLeftovers } from '../../fs/leftovers.ts'
import { runPerformanceTests, type PerformanceTestResult } from '../../metrics/performance-tests.ts'
import { startTableChecksums } from '../../tenant-restore/rows.ts'
import type { ContentChecksumRun, TableReader } from '../../db/table-reader.ts'
import type { BackupEntry } from '../catalog/catalog.ts'
import type { HistoryRecord } from '../catalog/history.ts'
import type { BackupMetadata } from '../metadata.ts'
import type { RestoreResult } from '../restore/steps.ts'
import type { DRILL_STEPS } from '../kill-points.ts'

export type DrillCheckName = 'restore' | 'integrity' | 'foreign-keys' | 'amcheck' | 'row-counts' | 'checksums' | 'migrations' | 'queries'

export interface DrillCheck {
  name: DrillCheckName
  /** `warning` is shown and does not fail the drill (a backup of an older schema still restores). */
  status: 'ok' | 'failed' | 'skipped' | 'warning'
  /** French, no data values. */
  detail: string
}

export interface DrillTable {
  name: string
  expectedRows: number
  actualRows: number | null
  /** Null for a backup written before checksums were recorded (metadata version 1). */
  expectedChecksum: string | null
  actualChecksum: string | null
}

export interface DrillResult {
  id: string
  engine: string
  /** Where the backup was restored (password masked); gone by now. */
  scratch: string
  ok: boolean
  /** Time to restore (the restore alone). Null when it did not finish. */
  rtoMs: number | null
  durationMs: number
  checks: DrillCheck[]
  tables: DrillTable[]
  queries: PerformanceTestResult[]
  /** Leftovers of killed drills removed first. */
  cleaned: string[]
  /** Why this backup (the default choice). */
  chosenBecause: 'asked' | 'newest-not-drilled' | 'newest'
}

export interface DrillOptions {
  metadata: BackupMetadata
  chosenBecause: DrillResult['chosenBecause']
  /**
   * Restores the backup into `target` (the backup system's restore: verify, steps, checks), calling
   * `beforeCheck` when the restored database is in place, before step 4 checks it.
   */
  restore(target: string, beforeCheck: () => Promise<void>): Promise<RestoreResult>
  /** A database of the backup's engine to reach its server by (PostgreSQL); the live one is not touched. */
  serverUrl?: string
  environment: ToolkitEnvironment
  /** The committed migrations of the backup's dialect (folder names), oldest first. */
  committedMigrations: readonly string[]
  /** Where drill folders live. Default: `<tmp>/ipm-drills`. */
  scratchRoot?: string
  /** Kill points (backup/kill-points.ts: DRILL_STEPS). */
  step?: (name: (typeof DRILL_STEPS)[number]) => void
}

/** The drill folder root: one sub-folder `<pid>-<random>` per running drill. */
export function defaultScratchRoot(): string {
  return join(tmpdir(), 'ipm-drills')
}

/**
 * Which backup a drill takes when none is named: the newest complete one with no successful drill
 * in the history; the newest one when every backup was drilled.
 * @example chooseDrillBackup(await listBackupEntries(dir), (await readHistory(dir)).records)
 */
export function chooseDrillBackup(entries: readonly BackupEntry[], history: readonly HistoryRecord[]): { metadata: BackupMetadata; chosenBecause: 'newest-not-drilled' | 'newest' } {
  const sound = entries.filter((e) => e.metadata !== undefined && e.sealValid).map((e) => e.metadata!)
  if (sound.length === 0) throw new ToolkitError('aucun backup complet à tester', { hint: 'Créez-en un : `advanced-backup create`.' })
  const drilled = new Set(history.filter((r) => r.operation === 'drill' && r.result === 'success' && r.id !== undefined).map((r) => r.id!))
  const newestFirst = [...sound].sort((a, b) => (a.timestamp < b.timestamp ? 1 : a.timestamp > b.timestamp ? -1 : 0))
  const fresh = newestFirst.find((m) => !drilled.has(m.id))
  return fresh ? { metadata: fresh, chosenBecause: 'newest-not-drilled' } : { metadata: newestFirst[0]!, chosenBecause: 'newest' }
}

/** Removes the drill folders whose process is gone; returns their paths. */
function cleanFolderLeftovers(root: string): string[] {
  const ownerOf = (name: string) => {
    const pid = /^(\d+)-[0-9a-f]+$/.exec(name)?.[1]
    return pid === undefined ? undefined : Number(pid)
  }
  return removeDeadLeftovers(root, ownerOf, { bestEffort: true }).map((name) => join(root, name))
}

/**
 * Restores `metadata`'s backup into a scratch database and checks it.
 * @example const result = await drillBackup({ metadata, chosenBecause: 'asked', restore: (to, beforeCheck) => system.restore(id, { to, yes: true, step: (name) => (name === 'check' ? beforeCheck() : undefined) }), environment, committedMigrations })
 */
export async function drillBackup(options: DrillOptions): Promise<DrillResult> {
  const startedAt = performance.now()
  const metadata = options.metadata
  const engine = engineNamed(metadata.engine)
  const root = options.scratchRoot ?? defaultScratchRoot()
  const cleaned = [...cleanFolderLeftovers(root), ...(await engine.scratch.cleanLeftovers({ serverUrl: options.serverUrl }))]
  mkdirSync(root, { recursive: true })
  const workDir = join(root, `${process.pid}-${randomBytes(4).toString('hex')}`)
  mkdirSync(workDir)
  const checks: DrillCheck[] = []
  const tables: DrillTable[] = []
  let queries: PerformanceTestResult[] = []
  let rtoMs: number | null = null
  let restoredCheck: RestoredCheck | undefined
  let display = ''
  try {
    const scratch = await engine.scratch.create({ workDir, serverUrl: options.serverUrl })
    display = scratch.display
    options.step?.('drill:scratch-created')
    let db: DatabaseHandle | undefined
    let contents: StartedContents | undefined
    try {
      // Step 4 checks the restored file on this thread: where the engine allows, the content
      // checksums start then on helper threads, which the other cores run meanwhile.
      const beforeCheck = async () => {
        if (!scratch.readableWhileChecked) return
        try {
          db = await openDatabase(scratch.url, { environment: options.environment })
          contents = await startContents(db, metadata, { early: true })
        } catch {
          // Started again after the restore, where a failure is reported.
        }
      }
      try {
        const restored = await options.restore(scratch.url, beforeCheck)
        rtoMs = restored.durationMs
        restoredCheck = { counts: restored.counts, integrity: restored.integrity, foreignKeyViolations: restored.foreignKeyViolations }
        checks.push({ name: 'restore', status: 'ok', detail: `restauré en ${(restored.durationMs / 1000).toFixed(2)} s (${restored.counts.length} tables)` })
      } catch (error) {
        checks.push({ name: 'restore', status: 'failed', detail: `la restauration a échoué : ${describeError(error)}` })
      }
      if (restoredCheck !== undefined) {
        options.step?.('drill:restored')
        db ??= await openDatabase(scratch.url, { environment: options.environment })
        contents ??= await startContents(db, metadata, { early: false })
        for (const finding of await engine.scratch.integrity(db, restoredCheck)) checks.push(integrityCheck(finding))
        checks.push(...(await compareContents(contents, metadata, tables)))
        checks.push(await migrationStatus(db, options.committedMigrations))
        const tenant = await db.prisma.tenant.findFirst({ select: { id: true }, orderBy: { id: 'asc' } }).catch(() => null)
        queries = await runPerformanceTests(db.prisma, { tablesPresent: true, ...(tenant ? { tenantId: tenant.id } : { tenantReason: 'aucun cabinet dans le backup' }) })
        const failed = queries.filter((q) => q.status === 'failed')
        checks.push({
          name: 'queries',
          status: failed.length === 0 ? 'ok' : 'failed',
          detail: failed.length === 0 ? `${queries.filter((q) => q.status === 'passed').length} requêtes de lecture sur ${queries.length} passées` : `requêtes en échec : ${failed.map((q) => `${q.number}. ${q.name} (${q.reason})`).join(' ; ')}`,
        })
      }
    } finally {
      contents?.run.cancel()
      await contents?.reader.close()
      await db?.close()
      await scratch.drop()
    }
  } catch (error) {
    checks.push({ name: 'restore', status: 'failed', detail: `base de test : ${describeError(error)}` })
  } finally {
    rmSync(workDir, { recursive: true, force: true })
  }
  return {
    id: metadata.id,
    engine: metadata.engine,
    scratch: display,
    ok: checks.every((c) => c.status !== 'failed'),
    rtoMs,
    durationMs: Math.round(performance.now() - startedAt),
    checks,
    tables,
    queries,
    cleaned,
    chosenBecause: options.chosenBecause,
  }
}

function integrityCheck(finding: IntegrityFinding): DrillCheck {
  const name = (['integrity', 'foreign-keys', 'amcheck'] as const).find((n) => n === finding.name) ?? 'integrity'
  return { name, status: finding.status, detail: finding.detail }
}

/** The content checksums of the scratch database's tables, started (their reader closes with the drill). */
interface StartedContents {
  reader: TableReader
  run: ContentChecksumRun
}

async function startContents(db: DatabaseHandle, metadata: BackupMetadata, options: { early: boolean }): Promise<StartedContents> {
  // The scratch database is the drill's own: nobody writes it.
  const reader = await db.openTableReader({ quiescent: true })
  try {
    const present = new Map((await reader.tables()).map((t) => [t.name, t]))
    const tables = (metadata.contents ?? metadata.tables).flatMap((t) => present.get(t.name) ?? [])
    return { reader, run: startTableChecksums(reader, tables, options) }
  } catch (error) {
    await reader.close()
    throw error
  }
}

/** Row counts and content checksums of every table metadata describes, read from the scratch database. */
async function compareContents(contents: StartedContents, metadata: BackupMetadata, out: DrillTable[]): Promise<DrillCheck[]> {
  const expected = metadata.contents ?? metadata.tables.map((t) => ({ name: t.name, rows: t.rows, checksum: null }))
  const sums = await contents.run.finish()
  for (const table of expected) {
    const sum = sums.get(table.name)
    out.push({ name: table.name, expectedRows: table.rows, actualRows: sum?.rows ?? null, expectedChecksum: table.checksum, actualChecksum: sum?.checksum ?? null })
  }
  const wrongCounts = out.filter((t) => t.actualRows !== t.expectedRows)
  const checks: DrillCheck[] = [
    {
      name: 'row-counts',
      status: wrongCounts.length === 0 ? 'ok' : 'failed',
      detail: wrongCounts.length === 0 ? `${out.length} tables, ${out.reduce((n, t) => n + t.expectedRows, 0).toLocaleString('fr-FR')} lignes, comme à la création` : `lignes différentes : ${wrongCounts.map((t) => `${t.name} ${t.actualRows ?? 'absente'} au lieu de ${t.expectedRows}`).join(', ')}`,
    },
  ]
  if (metadata.contents === undefined) {
    checks.push({ name: 'checksums', status: 'skipped', detail: "backup antérieur aux empreintes de contenu (métadonnées version 1) : seuls les comptes sont comparés" })
  } else {
    const wrong = out.filter((t) => t.actualChecksum !== t.expectedChecksum)
    checks.push({
      name: 'checksums',
      status: wrong.length === 0 ? 'ok' : 'failed',
      detail: wrong.length === 0 ? `empreintes de contenu identiques à celles de la création (${out.length} tables)` : `contenu différent de la création : ${wrong.map((t) => t.name).join(', ')}`,
    })
  }
  return checks
}

/** The restored database's applied migrations against the committed ones. */
async function migrationStatus(db: DatabaseHandle, committed: readonly string[]): Promise<DrillCheck> {
  let applied: string[]
  try {
    applied = (await db.sql.query<{ migration_name: string }>(`SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name`)).map((r) => r.migration_name)
  } catch (error) {
    return { name: 'migrations', status: 'warning', detail: `pas de table _prisma_migrations lisible : ${describeError(error)}` }
  }
  const known = new Set(committed)
  const done = new Set(applied)
  const pending = committed.filter((m) => !done.has(m))
  const unknown = applied.filter((m) => !known.has(m))
  if (pending.length === 0 && unknown.length === 0) return { name: 'migrations', status: 'ok', detail: `${applied.length} migration(s) appliquée(s), à jour avec le dépôt` }
  const parts = [
    ...(pending.length > 0 ? [`${pending.length} migration(s) du dépôt à appliquer après restauration (${pending.join(', ')})`] : []),
    ...(unknown.length > 0 ? [`${unknown.length} migration(s) absente(s) du dépôt (${unknown.join(', ')})`] : []),
  ]
  return { name: 'migrations', status: 'warning', detail: parts.join(' ; ') }
}
