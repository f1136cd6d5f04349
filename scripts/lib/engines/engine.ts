/**
 * What the toolkit asks of a database engine. Each folder beside this file (sqlite/, postgres/,
 * d1/) holds the same files and exports one `Engine`; `index.ts` picks it from a URL. Callers ask
 * the `Engine` and never test which one they hold.
 *
 * A new capability (tenant restore, point-in-time recovery, index advice…) is one more member
 * here and one more file in every engine folder, wired in that folder's `engine.ts`.
 */
import type { InPlaceRead, Snapshot, SnapshotOptions } from './snapshot.ts'
import type { IndexLab } from './index-lab.ts'
import type { StatementSnapshotResult } from './postgres/statements.ts'
import type { DatabaseHandle, SqlConnection, SqlDialect, SqlHandle, SqlValue } from '../db/connection.ts'
import type { DatabaseLocation, EngineName } from '../db/url.ts'
import type { ToolkitEnvironment } from '../environment.ts'
import type { ValueCodecFor } from '../db/table-reader.ts'
import type { MetricsEngine } from './metrics-engine.ts'
import type { TenantSession } from '../tenant-restore/session.ts'
import type { ReplicaStore } from '../replication/store.ts'
import type { ValueKind } from '../migration/conversion.ts'

export interface UrlContext {
  /** Base of relative paths (SQLite files, D1 state folders). */
  cwd: string
  /** Where `d1://local` keeps its state. */
  d1PersistDir: string
}

export interface OpenOptions {
  redactedUrl: string
  /** SQLite: create a missing file (its directory must exist). */
  create: boolean
  environment: ToolkitEnvironment
}

/** Per table: rows the metadata records and rows found after a restore. */
export interface RowCount {
  name: string
  expected: number
  actual: number | null
}

export interface RestoredCheck {
  counts: RowCount[]
  integrity: string
  foreignKeyViolations: number
}

/** What an engine's restore reads of the backup's metadata.json (backup/metadata.ts's `BackupMetadata` has it all). */
export interface RestoredBackupMetadata {
  id: string
  /** Rows per table, as the snapshot had them: step 4 compares them. */
  tables: readonly { name: string; rows: number }[]
  schema: { prismaSchemaSha256: string | null; newestMigration: string | null }
  files: readonly { path: string; size: number }[]
  /** Sum of the content files' sizes. */
  contentSize: number
}

/** What the restore flow hands an engine: the parts of the flow the engine cannot know. */
export interface RestoreContext {
  metadata: RestoredBackupMetadata
  /** Accept another schema (--force); on a server, also accept a non-empty target. */
  force: boolean
  /** A full backup of an open database into the backup folder (a server's safety copy). */
  exportDatabase(db: DatabaseHandle): Promise<SafetyExport>
  /** The toolkit's Prisma schema hash for the backup's dialect (this engine's, unless the backup comes from another engine). */
  prismaSchemaSha256: string | null
  /** A private folder of this restore, removed after it. */
  scratchDir: string
  /**
   * Called once inside step 3, when part of the new database is written and before it replaces
   * the old one (the crash tests' `restore:mid-replace` kill point).
   */
  midReplace(): void
}

/** A server's safety copy (step 2): a full backup of the target, in the backup folder. */
export interface SafetyExport {
  id: string
  path: string
  /** Writes this backup's restore artefact, its hashes checked again, to `dest`: how a failed step 4 loads it back. */
  materialize(dest: string): Promise<void>
  /** The command that loads it back by hand, for when that fails (the target's URL redacted). */
  restoreCommand: string
}

/** A restore's target, opened by its engine: the engine-specific steps of the one restore flow (backup/restore/flow.ts). */
export interface RestoreTarget {
  /** The path or redacted URL, as printed. */
  readonly display: string
  readonly exists: boolean
  /** What the target is, after the engine's label: `file` or `database`. */
  readonly noun: string
  /** Where the current database will be kept, as printed before consent (null: nothing to keep, or decided when taken). */
  readonly plannedSafetyCopy: string | null
  /** The file name the artefact gets when a dry run rebuilds it in a scratch folder. */
  readonly scratchName: string
  /** What a dry run says of steps 2 and 3, and whether it can check the rebuilt artefact (step 4). */
  readonly rehearsal: { safetyDetail: string; replaceDetail: string; checks: boolean }
  /** Refuses (ToolkitError) a target this backup must not replace: other schema, in use, not empty without --force. */
  assertReplaceable(context: RestoreContext): Promise<void>
  /** Step 2: keeps the current database; returns where, or null when there was nothing to keep. */
  safetyCopy(context: RestoreContext): Promise<{ path: string | null; detail: string }>
  /**
   * Where step 1 writes its verified copy of the artefact (restore reads a backup once): a new name
   * beside a file target, on its filesystem, so that step 3 only renames it (a killed run's copy is a
   * leftover the next restore removes); null for the restore's scratch folder (a server, a dry run).
   */
  stagingPath(): string | null
  /** Step 3: `materialize` writes the backup's artefact to a path the engine chooses, which then becomes the database. */
  replace(materialize: (dest: string) => Promise<void>, context: RestoreContext): Promise<string>
  /**
   * Step 4 started early, on the staged copy (`stagingPath`) of a full backup's artefact, as soon as
   * step 1 has written it and found its hash right, while step 1 goes on verifying the rest: step 3
   * only renames that file, so `check` can take the result (a SQLite file). `close` stops it when the
   * restore goes no further. Says how many threads it runs, and when they are done.
   */
  checkStaged?(staged: string): { threads: number; done: Promise<void> }
  /** Step 4: the database (or, in a dry run, the rebuilt artefact at `path`) checked against the metadata. */
  check(path: string | null, context: RestoreContext): Promise<{ value: RestoredCheck; detail: string }>
  /**
   * After a failed check: puts the previous database back (the safety copy of step 2), or empties
   * the target again when it had none. Never throws: returns one French line saying what was put
   * back, or, when that failed, the exact command that does it by hand.
   */
  undo(safetyCopy: string | null, context: RestoreContext): Promise<string>
  /** Bytes of the restored database (of the rebuilt artefact at `path` in a dry run). */
  size(path: string | null, context: RestoreContext): Promise<number>
  close(): Promise<void>
}

/** One result of an engine's integrity checks on a restored database. */
export interface IntegrityFinding {
  /** `integrity`, `foreign-keys`, `amcheck`. */
  name: string
  status: 'ok' | 'failed' | 'skipped'
  /** French, no data values. */
  detail: string
}

/** A throwaway database of this engine (restore drills), and how to drop it. */
export interface ScratchDatabase {
  /** What a restore targets (may hold a password: never print it). */
  url: string
  /** As printed. */
  display: string
  /** Drops it (a file engine's database goes with the drill's folder). */
  drop(): Promise<void>
  /**
   * Whether another connection may read it while the restore's step 4 checks it (a SQLite file),
   * so that a drill's content checksums start then, on the other cores.
   */
  readableWhileChecked: boolean
}

export interface ScratchDatabases {
  /**
   * A new empty database for a drill: a file in `workDir`, a local D1 in `workDir`, a temporary
   * PostgreSQL database on the server of `serverUrl`.
   */
  create(options: { workDir: string; serverUrl?: string }): Promise<ScratchDatabase>
  /** Drops the scratch databases of drills whose process is gone (killed); returns their names. */
  cleanLeftovers(options: { serverUrl?: string }): Promise<string[]>
  /**
   * The engine's own integrity checks of a restored database (integrity_check, foreign keys,
   * amcheck). `restored` is what the restore's step 4 found in that same database just before: an
   * engine whose restore already ran a check reports it instead of running it twice.
   */
  integrity(db: DatabaseHandle, restored: RestoredCheck): Promise<IntegrityFinding[]>
}

/** Where point-in-time recovery keeps its state and how it runs (one bag for every engine; each reads what it needs). */
export interface PitrSettings {
  environment: ToolkitEnvironment
  /** PostgreSQL: pgbackrest.conf, stanza, PostgreSQL binaries, OS user owning the cluster, scratch folder. */
  pgbackrestConfig?: string
  stanza?: string
  repoPath?: string
  pgBinDir?: string
  runAs?: string
  scratchDir?: string
  signal?: AbortSignal
}

/** A PITR result: the JSON object `--json` prints, and its French lines for a person. */
export interface PitrReport {
  result: Record<string, unknown>
  lines: string[]
}

/**
 * The database as it was at T. `database`: a copy to read from (a SQLite file rebuilt from the
 * replica, a PostgreSQL cluster restored on a scratch port), which the restore flow then copies into
 * the target; `restored-in-place`: the service restored the database itself (D1 Time Travel).
 */
export type StateAt =
  | {
      kind: 'database'
      /** The copy's URL, to open with this engine (a private socket or a scratch file). */
      url: string
      /** The commit the copy ends with, as exact as the engine knows it. */
      reachedAt: Date | null
      report: PitrReport
      /** Left running for inspection (--keep-scratch): the caller must not copy nor close it. */
      kept: boolean
      /** Removes the copy (nothing for a kept one). */
      close(): Promise<void>
    }
  | { kind: 'restored-in-place'; reachedAt: Date; report: PitrReport }

/** Point-in-time recovery: each engine does what it can and refuses the rest with its own way in French. */
export interface PointInTimeRecovery {
  /** Continuous replication to `replica` until `signal` aborts (SQLite's WAL); a refusal naming the engine's way otherwise. */
  replicate(location: DatabaseLocation, options: PitrSettings & { replica: ReplicaStore; snapshotEveryMs?: number; retentionMs?: number; onEvent?: (line: string) => void }): Promise<PitrReport>
  /** Checks (or with `apply` writes) what archiving needs. */
  setup(location: DatabaseLocation, options: PitrSettings & { apply: boolean; redactedUrl: string }): Promise<PitrReport>
  /** One base backup of the archive (pgBackRest). */
  backup(location: DatabaseLocation, options: PitrSettings): Promise<PitrReport>
  /** The state at `at` (refused with the reachable range when out of it). `replica`: SQLite's replica. */
  stateAt(location: DatabaseLocation, options: PitrSettings & { at: Date; replica?: ReplicaStore; keepScratch: boolean }): Promise<StateAt>
}

/**
 * A new database of this engine that a backup of ANOTHER engine is loaded into, from its logical
 * export (backup/restore/logical.ts applies the committed migrations and inserts the rows), then
 * turned into this engine's restore artefact for the one restore flow.
 */
export interface LogicalScratch {
  /** Open and empty. */
  db: DatabaseHandle
  /** Writes the loaded database as this engine's `restoreArtefact` to `dest` (which must not exist). */
  writeArtefact(dest: string): Promise<void>
  /** Closes and removes the scratch database. */
  drop(): Promise<void>
}

/** Loading another engine's logical export (cross-engine restore): engines/<engine>/logical-load.ts. */
export interface LogicalLoad {
  /** The value to bind for a canonical value (tenant-restore/canonical.ts) of `kind` into a column of this engine. */
  bindValue(kind: ValueKind, canonical: string, declaredType: string): SqlValue
  /** A scratch database of this engine: a file in `scratchDir`, or a temporary database on the target's server. */
  openScratch(options: { target: DatabaseLocation; scratchDir: string; environment: ToolkitEnvironment }): Promise<LogicalScratch>
}

export interface Engine {
  readonly name: EngineName
  /** How the engine is named to a person: `SQLite`, `PostgreSQL`, `D1`. */
  readonly label: string
  /** The SQL dialect, which is also the Prisma schema it uses. */
  readonly dialect: SqlDialect
  /** Whether `url` names a database of this engine (by its scheme). */
  ownsUrl(url: string): boolean
  parseUrl(url: string, context: UrlContext): DatabaseLocation
  open(location: DatabaseLocation, options: OpenOptions): Promise<DatabaseHandle>
  /** The database without its Prisma Client (backups): the driver alone is loaded. */
  openSql(location: DatabaseLocation, options: OpenOptions): Promise<SqlHandle>
  /** The folder of a local emulator's state (a local D1), which the toolkit may prepare or tell to delete; undefined for a real database. */
  localState(location: DatabaseLocation): string | undefined
  /** Why `location` cannot be opened with this environment (a remote D1 without its API token), with the fix; undefined when it can. */
  missingCredentials(location: DatabaseLocation, environment: ToolkitEnvironment): { reason: string; hint: string } | undefined
  /** One instant of the database captured into a staging folder (backup/create). */
  snapshot(db: SqlHandle, options: SnapshotOptions): Promise<Snapshot>
  /**
   * The same reads without capturing anything, for exports alone (backup/create/export-only.ts);
   * absent where an export needs the snapshot (PostgreSQL's SQL export is database.sql, D1 is rebuilt into a file).
   */
  readonly readInPlace?: (db: SqlHandle) => Promise<InPlaceRead>
  /** How a column's values are written in data.json and the CSV files (db/values.ts). */
  readonly valueCodec: ValueCodecFor
  /** The dashboard's probes: catalog, plans, cache, connections, storage. */
  readonly metrics: MetricsEngine
  /** Where index advice is proven: a scratch copy (`scratch`) or, to apply one, the database itself. */
  openIndexLab(db: DatabaseHandle, options: { scratch: boolean }): Promise<IndexLab>
  /** The server's own per-statement statistics (PostgreSQL's pg_stat_statements); absent where the engine keeps none. */
  readonly snapshotStatements?: (sql: SqlConnection, now: () => number) => Promise<StatementSnapshotResult>
  /** The backup file a restore loads: `database.db` or `database.sql`. */
  readonly restoreArtefact: string
  /**
   * The file or folder a restore into `location` locks (`<path>.restore-lock`, backup/restore/target-lock.ts)
   * from before it opens the target to its end: a SQLite file, a local D1's state folder; null when the
   * engine locks otherwise (PostgreSQL: an advisory lock, in openRestoreTarget) or cannot (a remote D1),
   * and when the folder it would sit in does not exist (lockableBeside).
   */
  restoreLockFile(location: DatabaseLocation): string | null
  /** Opens a restore target (path or URL already parsed). */
  openRestoreTarget(location: DatabaseLocation, options: { environment: ToolkitEnvironment; dryRun: boolean; redactedUrl: string }): Promise<RestoreTarget>
  /** Building this engine's restore artefact from another engine's backup (its logical export); its module loads on first use. */
  logicalLoad(): Promise<LogicalLoad>
  /** Exact reads of a tenant's rows and one write transaction (tenant-restore/, engines/<engine>/tenant-restore.ts). */
  openTenantSession(db: DatabaseHandle): Promise<TenantSession>
  /** Scratch databases of restore drills (backup/drill/). */
  readonly scratch: ScratchDatabases
  /** Point-in-time recovery (replication or archiving, and the state at an instant). */
  readonly pitr: PointInTimeRecovery
}
