/**
 * The backup system of the spec: one object configured once, one method per verb. Methods return
 * result objects (the CLI renders them as text or `--json`); they never print or exit.
 *
 * @example
 * const backup = new AdvancedBackupSystem({
 *   databaseUrl: 'file:./prisma/dev.db',
 *   backupDir: './backups',
 *   maxBackups: 10,
 *   compressionEnabled: true,
 *   verifyIntegrity: true,
 *   exportFormats: ['sql', 'json', 'csv'],
 * })
 * const { metadata, rotation } = await backup.create()
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openDatabase } from '../db/open.ts'
import { resolveEnvironment, type ToolkitEnvironment } from '../environment.ts'
import { ToolkitError } from '../errors.ts'
import type { ProgressListener } from '../progress.ts'
import { findBackupEntry, listBackupEntries, type BackupEntry } from './catalog.ts'
import { createBackup } from './create.ts'
import { EXPORT_FORMATS, type ExportFormat } from './layout.ts'
import { sha256Hex } from './manifest.ts'
import type { BackupMetadata } from './metadata.ts'
import { planRotation, removeBackup } from './rotation.ts'
import { backupStats, type BackupStats } from './stats.ts'
import { verifyBackup, type VerifyReport } from './verify.ts'

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

export interface AdvancedBackupOptions {
  /** The database to back up; default DATABASE_URL (or file:./prisma/dev.db). */
  databaseUrl?: string
  /** Default ./backups (relative to `cwd`). */
  backupDir?: string
  /** Rotation: how many complete backups to keep. Default 10. */
  maxBackups?: number
  /** Pack each backup as backup-<ts>.tar.gz. Default true. */
  compressionEnabled?: boolean
  /** Read back and check every hash before publishing; only then is `verified` true. Default true. */
  verifyIntegrity?: boolean
  /** Default ['sql', 'json', 'csv']. */
  exportFormats?: ExportFormat[]
  cwd?: string
  environment?: ToolkitEnvironment
  now?: () => Date
  onProgress?: ProgressListener
  /** Compression threads; default one per core. */
  threads?: number
}

export interface BackupSummary {
  id: string
  path: string
  form: 'directory' | 'archive'
  metadata?: BackupMetadata
  /** Why the backup cannot be described (unreadable or edited metadata). */
  problem?: string
}

export interface CreateResult {
  metadata: BackupMetadata
  path: string
  /** Leftovers of killed runs removed first. */
  cleaned: string[]
  rotation: PruneResult
}

export interface ListResult {
  backupDir: string
  backups: BackupSummary[]
}

export interface StatsResult extends BackupStats {
  backupDir: string
}

export interface PruneResult {
  dryRun: boolean
  maxBackups: number
  kept: string[]
  removed: string[]
  keptBecauseVerified?: string
}

export class AdvancedBackupSystem {
  readonly backupDir: string
  readonly maxBackups: number
  readonly compressionEnabled: boolean
  readonly verifyIntegrity: boolean
  readonly exportFormats: ExportFormat[]
  readonly #databaseUrl: string
  readonly #options: AdvancedBackupOptions
  readonly #now: () => Date

  constructor(options: AdvancedBackupOptions = {}) {
    const environment = options.environment ?? resolveEnvironment()
    this.#options = { ...options, environment }
    this.#databaseUrl = options.databaseUrl ?? environment.databaseUrl
    this.backupDir = resolve(options.cwd ?? process.cwd(), options.backupDir ?? './backups')
    this.maxBackups = options.maxBackups ?? 10
    this.compressionEnabled = options.compressionEnabled ?? true
    this.verifyIntegrity = options.verifyIntegrity ?? true
    this.exportFormats = options.exportFormats ?? [...EXPORT_FORMATS]
    this.#now = options.now ?? (() => new Date())
    const unknown = this.exportFormats.filter((format) => !EXPORT_FORMATS.includes(format))
    if (unknown.length > 0) throw new ToolkitError(`unknown export format ${unknown.join(', ')}`, { hint: `Use ${EXPORT_FORMATS.join(', ')}.`, exitCode: 2 })
    if (!Number.isSafeInteger(this.maxBackups) || this.maxBackups < 1) {
      throw new ToolkitError(`maxBackups must be a whole number ≥ 1, got ${this.maxBackups}`, { hint: 'Use --keep 1 or more.', exitCode: 2 })
    }
  }

  /** Backs the database up, then rotates (keeps `maxBackups`, never the newest verified one). */
  async create(): Promise<CreateResult> {
    const db = await openDatabase(this.#databaseUrl, { cwd: this.#options.cwd, environment: this.#options.environment })
    let created
    try {
      created = await createBackup({
        db,
        backupDir: this.backupDir,
        formats: this.exportFormats,
        compress: this.compressionEnabled,
        verify: this.verifyIntegrity,
        tool: toolIdentity(),
        prismaSchemaSha256: prismaSchemaHash(db.engine === 'postgres' ? 'postgres' : 'sqlite'),
        now: this.#now,
        onProgress: this.#options.onProgress,
        threads: this.#options.threads,
      })
    } finally {
      await db.close()
    }
    const rotation = await this.prune()
    return { ...created, rotation }
  }

  /** The complete backups, newest first; partial ones never appear. */
  async list(): Promise<ListResult> {
    const entries = await listBackupEntries(this.backupDir)
    return { backupDir: this.backupDir, backups: entries.map(summary) }
  }

  /** Recomputes every hash of one backup; `ok` is false on any fault. */
  verify(id: string): Promise<VerifyReport> {
    return verifyBackup(this.backupDir, id, { onProgress: this.#options.onProgress })
  }

  async stats(): Promise<StatsResult> {
    return { backupDir: this.backupDir, ...backupStats(await listBackupEntries(this.backupDir), this.#now()) }
  }

  /**
   * Keeps the `maxBackups` newest complete backups (plus the newest verified one); `dryRun`
   * returns the plan without deleting anything.
   */
  async prune(options: { dryRun?: boolean; maxBackups?: number } = {}): Promise<PruneResult> {
    const maxBackups = options.maxBackups ?? this.maxBackups
    const plan = planRotation(await listBackupEntries(this.backupDir), maxBackups)
    if (!options.dryRun) for (const entry of plan.remove) await removeBackup(this.backupDir, entry)
    return {
      dryRun: options.dryRun ?? false,
      maxBackups,
      kept: plan.keep.map((entry) => entry.id),
      removed: plan.remove.map((entry) => entry.id),
      ...(plan.keptBecauseVerified ? { keptBecauseVerified: plan.keptBecauseVerified } : {}),
    }
  }

  /** Part 2 (issue 4): restore with validation. */
  async restore(id: string): Promise<never> {
    await findBackupEntry(this.backupDir, id)
    throw new ToolkitError('restore is not implemented yet (backup system, part 2)', {
      hint: 'Until then: tar -xzf the archive (or take the folder), check it with `advanced-backup verify <id>`, and copy database.db into place with the app stopped.',
    })
  }
}

function summary(entry: BackupEntry): BackupSummary {
  const path = entry.form === 'archive' ? entry.paths.archive : entry.paths.directory
  return {
    id: entry.id,
    path,
    form: entry.form,
    ...(entry.metadata ? { metadata: entry.metadata } : {}),
    ...(entry.problem ? { problem: entry.problem } : !entry.sealValid ? { problem: 'its metadata was edited after it was written' } : {}),
  }
}

let identity: { name: string; version: string } | undefined

/** This toolkit's name and version, as metadata records them. */
export function toolIdentity(): { name: string; version: string } {
  if (identity === undefined) {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { name: string; version: string }
    identity = { name: pkg.name, version: pkg.version }
  }
  return identity
}

/** SHA-256 of the toolkit's Prisma schema for an engine family, or null when it is not there. */
export function prismaSchemaHash(dialect: 'sqlite' | 'postgres'): string | null {
  const path = join(REPO_ROOT, 'prisma', dialect, 'schema.prisma')
  return existsSync(path) ? sha256Hex(readFileSync(path)) : null
}
