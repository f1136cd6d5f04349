/**
 * Continuous replication of a SQLite database in WAL mode, the way Litestream does it: copy committed
 * WAL frames to a replica folder as they appear, noting when each commit was seen.
 *
 * Why no committed frame is ever lost (the "pin"): the replicator always holds a read transaction whose
 * snapshot is exactly the position it has copied up to (P), verified by re-reading the WAL after the
 * transaction began. SQLite then guarantees:
 * - if the pin uses a WAL read mark (frames not yet all checkpointed), no checkpoint can restart or
 *   truncate the WAL: every frame after P stays in the file until we move the pin;
 * - if the pin reads the database file alone (the WAL was fully checkpointed at P), no checkpoint can
 *   copy anything into the database file, so at most one WAL restart can happen, and it starts from
 *   the state at P.
 * So when the WAL's salts change under a pin, the new WAL continues from exactly what we copied: same
 * generation, no gap. The pin moves forward by beginning a new read transaction on a second connection,
 * checking nothing was committed past P, and only then ending the old one. Without a pin (the process was
 * down), a changed WAL proves nothing: a new generation starts with a snapshot and a warning.
 *
 * The replicator checkpoints at a threshold itself: under the write lock it copies everything, releases
 * the pin, runs a PASSIVE checkpoint and pins again, so the application's next write restarts the WAL.
 * Snapshots are physical page images (the database file plus the WAL frames up to P, written at their
 * page numbers), never VACUUM INTO: WAL frames name pages by number and VACUUM renumbers pages.
 *
 * Why a replaced database is noticed even when its inode is the same (a restore copied over the file):
 * while we run, SQLite never deletes or recreates the `-wal` (we hold connections), a legitimate WAL
 * restart increments salt-1 by exactly one, and the database file changes only by checkpoints of frames
 * we copied, so its first 100 bytes are always a page-1 version we saw, with a change counter that never
 * decreases. Any other observation means the files were changed behind SQLite's back: new generation.
 *
 * The WAL is read when `fs.watch` reports a change of the `-wal` file (at most every `minCopyIntervalMs`),
 * and at least every `pollIntervalMs` in case the file system does not report changes.
 */
import { closeSync, copyFileSync, fsyncSync, ftruncateSync, openSync, readSync, rmSync, statSync, watch, type FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'
import Database from 'better-sqlite3'
import { ToolkitError } from '../../errors.ts'
import { compactSegments } from '../../replication/compaction.ts'
import {
  createGeneration, listGenerations, listSegments, listSnapshots, newGenerationId, readSegmentHeader, snapshotDataKey,
  writeSegment, writeSnapshotInfo, type GenerationInfo,
} from '../../replication/layout.ts'
import { applyRetention } from '../../replication/retention.ts'
import type { ReplicaStore } from '../../replication/store.ts'
import {
  WAL_FRAME_HEADER_SIZE, applyFrames, databasePageSize, frameOffset, parseFrameHeader, positionAtHeader,
  readCommittedFrames, readWalHeaderAt, validFrameBatches, type WalHeader, type WalPosition,
} from './wal-format.ts'

/** The replica position of a SQLite generation: the WAL incarnation and frame copied up to (null: empty WAL). */
export interface SqliteReplicaPosition {
  pageSize: number
  wal: WalPosition | null
}

export type ReplicationEvent =
  | { type: 'generation-started'; generation: string; reason: string; gap: { from: Date | null; to: Date } | null }
  | { type: 'resumed'; generation: string; frame: number }
  | { type: 'segment-written'; generation: string; seq: number; commits: number; bytes: number; seenAt: Date }
  | { type: 'snapshot-written'; generation: string; seq: number; bytes: number; at: Date }
  | { type: 'checkpoint'; generation: string; walFrames: number; checkpointedFrames: number; complete: boolean }
  | { type: 'compaction'; generation: string; merged: number; removed: number }
  | { type: 'retention'; removedSnapshots: number; removedSegments: number; removedGenerations: string[] }
  | { type: 'warning'; message: string }

export interface ReplicateOptions {
  databasePath: string
  /** Where the replica is written (a folder today: folderReplicaStore(dir)). */
  replica: ReplicaStore
  now?: () => Date
  /** Read the WAL at least this often even when no change is reported (default 500 ms; with `watch` off, the lag is about this). */
  pollIntervalMs?: number
  /** After a reported change, wait at least this long since the previous read (default 100 ms): bounds segments per second. */
  minCopyIntervalMs?: number
  /** Be woken by fs.watch on the `-wal` file (default true). */
  watch?: boolean
  /** A fresh snapshot after this long (default 24 h); one is always taken when a generation starts. */
  snapshotEveryMs?: number
  /** Checkpoint ourselves once the WAL holds this many frames (default 1000, SQLite's own default). */
  checkpointThresholdPages?: number
  /** Same threshold in bytes of WAL; the smaller of the two applies. */
  checkpointThresholdBytes?: number
  /** Merge the small segments written since the last compaction this often (default 60 s). */
  compactEveryMs?: number
  /** Keep snapshots and segments needed to restore any time in this window (default 7 days). */
  retentionMs?: number
  /** How long to wait for the application's write lock when checkpointing or starting a generation (default 5 s). */
  busyTimeoutMs?: number
  onEvent?: (event: ReplicationEvent) => void
  signal?: AbortSignal
}

export interface ReplicationSummary {
  generation: string
  segmentsWritten: number
  commitsCopied: number
  snapshotsWritten: number
  position: SqliteReplicaPosition
}

const DAY_MS = 86_400_000
/** Frames copied into one poll segment at most (plus one transaction): memory stays bounded after a long pause. */
const MAX_SEGMENT_PAYLOAD = 16 << 20
/** Uncompressed payload of a merged segment at most. */
const MAX_MERGED_PAYLOAD = 64 << 20
const DATABASE_HEADER_SIZE = 100

/**
 * Replicates until `signal` aborts, then copies what is committed, releases its locks and returns.
 * @example
 * const controller = new AbortController()
 * process.once('SIGTERM', () => controller.abort())
 * await replicate({ databasePath: 'prisma/dev.db', replica: folderReplicaStore('/var/backups/pitr'), signal: controller.signal })
 */
export async function replicate(options: ReplicateOptions): Promise<ReplicationSummary> {
  const replicator = new WalReplicator(options)
  const wakeup = new Wakeup()
  let watcher: FSWatcher | null = null
  try {
    await replicator.start()
    if (options.watch !== false) watcher = watchWal(options.databasePath, () => wakeup.notify())
    while (!options.signal?.aborted) {
      await wakeup.wait(options.pollIntervalMs ?? 500, options.signal)
      if (options.signal?.aborted) break
      await replicator.tick()
      await wakeup.pause(options.minCopyIntervalMs ?? 100, options.signal)
    }
    await replicator.finalCopy()
    return replicator.summary()
  } finally {
    watcher?.close()
    await replicator.settle()
    replicator.close()
  }
}

/** Watches the database's folder (the `-wal` file itself may be created later) for changes of the `-wal`; null where fs.watch is unsupported. */
function watchWal(databasePath: string, onChange: () => void): FSWatcher | null {
  const walName = `${basename(databasePath)}-wal`
  try {
    const watcher = watch(dirname(databasePath), { persistent: false }, (_event, filename) => {
      if (filename === null || filename === walName) onChange()
    })
    // A watcher error (folder removed, too many watches) leaves the periodic read as the only trigger.
    watcher.on('error', () => watcher.close())
    return watcher
  } catch {
    return null
  }
}

/** A wake-up flag: `wait` returns at the first notification (kept if it came earlier), the timeout or the abort. */
class Wakeup {
  private pending = false
  private resolve: (() => void) | null = null

  notify(): void {
    this.pending = true
    this.resolve?.()
  }

  wait(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined
      const done = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        this.pending = false
        this.resolve = null
        resolve()
      }
      if (this.pending || signal?.aborted) return done()
      timer = setTimeout(done, timeoutMs)
      this.resolve = done
      signal?.addEventListener('abort', done, { once: true })
    })
  }

  /** Sleeps without consuming a notification. */
  pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve()
      const timer = setTimeout(done, ms)
      signal?.addEventListener('abort', done, { once: true })
      function done() {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        resolve()
      }
    })
  }
}

const isBusy = (error: unknown) => (error as { code?: string }).code?.startsWith('SQLITE_BUSY') === true

const isUnreadable = (error: unknown) => /^SQLITE_(IOERR|CORRUPT|NOTADB|CANTOPEN)/.test((error as { code?: string }).code ?? '')

/** Thrown when the WAL no longer continues what was copied; the replicator starts a new generation. */
class ContinuityLost extends Error {}

const changeCounter = (header: Buffer) => header.readUInt32BE(24)

class WalReplicator {
  private readonly now: () => Date
  private readonly walPath: string
  private readonly store: ReplicaStore
  private readers: [Database.Database, Database.Database] | null = null
  private control: Database.Database | null = null
  private checkpointer: Database.Database | null = null
  private pinned = -1
  private pinVerifiedAt = new Date(0)
  private identity = { device: 0, inode: 0 }
  private walIdentity: { device: number; inode: number } | null = null
  /** Page-1 headers the database file may show: each version copied and not yet known to be checkpointed over. */
  private knownHeaders = new Map<string, number>()
  private databaseHeader: Buffer = Buffer.alloc(0)
  private generation: GenerationInfo | null = null
  private nextSeq = 0
  private position: SqliteReplicaPosition = { pageSize: 0, wal: null }
  private lastSnapshotAt = 0
  private lastCompactionAt = 0
  private lastCommitSeenAt: Date | null = null
  /** Set when continuity was lost and the new generation could not start yet. */
  private restart: { reason: string; from: Date } | null = null
  private compaction: Promise<void> | null = null
  private counts = { segmentsWritten: 0, commitsCopied: 0, snapshotsWritten: 0 }

  constructor(private readonly options: ReplicateOptions) {
    this.now = options.now ?? (() => new Date())
    this.walPath = `${options.databasePath}-wal`
    this.store = options.replica
  }

  private emit(event: ReplicationEvent): void {
    this.options.onEvent?.(event)
  }

  async start(): Promise<void> {
    this.open()
    this.lastCompactionAt = this.now().getTime()
    const latest = (await listGenerations(this.store)).pop()
    if (latest === undefined) return this.startGeneration('première réplication de cette base', null)
    const gap = await this.resume(latest)
    if (gap !== null) await this.startGeneration(gap.reason, { from: gap.from, to: this.now() })
  }

  private open(): void {
    const connect = (readonly: boolean) => {
      const db = new Database(this.options.databasePath, { fileMustExist: true, readonly })
      db.pragma(`busy_timeout = ${this.options.busyTimeoutMs ?? 5000}`)
      return db
    }
    try {
      this.control = connect(false)
      this.checkpointer = connect(false)
      // Read-only: SQLite never checkpoints (nor deletes the WAL) when a read-only connection closes.
      this.readers = [connect(true), connect(true)]
    } catch (error) {
      this.close()
      throw new ToolkitError(`impossible d’ouvrir la base à répliquer: ${this.options.databasePath}`, { cause: error, hint: 'Vérifiez le chemin de la base et les droits de lecture et d’écriture sur son dossier.' })
    }
    if (String(this.control.pragma('journal_mode', { simple: true })) !== 'wal') {
      this.close()
      throw new ToolkitError(`la base n’est pas en mode WAL: ${this.options.databasePath}`, { hint: 'Passez-la en mode WAL une fois (PRAGMA journal_mode=WAL) avant de lancer la réplication continue.' })
    }
    const stat = statSync(this.options.databasePath)
    this.identity = { device: stat.dev, inode: stat.ino }
    this.position = { pageSize: databasePageSize(this.readDatabaseHeader()), wal: null }
  }

  private readDatabaseHeader(): Buffer {
    const header = Buffer.alloc(DATABASE_HEADER_SIZE)
    const fd = openSync(this.options.databasePath, 'r')
    try {
      readSync(fd, header, 0, DATABASE_HEADER_SIZE, 0)
    } finally {
      closeSync(fd)
    }
    return header
  }

  /**
   * Closes every connection without letting SQLite checkpoint on close: the read-write ones are closed
   * while a read-only one holds a read transaction (the closing checkpoint needs an exclusive lock), then
   * the read-only ones. After files were replaced behind SQLite's back, a closing checkpoint would write
   * the old WAL's pages into the new database and delete the application's new WAL.
   */
  close(): void {
    const holder = this.readers?.find((db) => db.open)
    try {
      if (holder !== undefined && !holder.inTransaction) this.beginPinOn(holder)
    } catch {
      // Unreadable files: the closing checkpoint cannot read them either.
    }
    for (const db of [this.control, this.checkpointer, ...(this.readers ?? [])]) {
      if (db?.open) {
        try {
          if (db.inTransaction) db.prepare('ROLLBACK').run()
        } finally {
          db.close()
        }
      }
    }
    this.readers = null
    this.control = null
    this.checkpointer = null
    this.pinned = -1
  }

  /** Runs `work` holding the database's write lock (the application's writers wait); null if busy. */
  private async underWriteLock<T>(work: () => Promise<T>): Promise<T | null> {
    const control = this.control!
    try {
      control.prepare('BEGIN IMMEDIATE').run()
    } catch (error) {
      if (isBusy(error)) return null
      throw error
    }
    try {
      return await work()
    } finally {
      control.prepare('ROLLBACK').run()
    }
  }

  private beginPin(index: number): void {
    this.beginPinOn(this.readers![index]!)
  }

  private beginPinOn(reader: Database.Database): void {
    reader.prepare('BEGIN').run()
    reader.prepare('SELECT count(*) FROM sqlite_master').get()
  }

  private endPin(index: number): void {
    const reader = this.readers![index]!
    if (reader.inTransaction) reader.prepare('COMMIT').run()
  }

  /** Pins at the current end of the WAL; only valid while holding the write lock (nothing can move). */
  private pinUnderWriteLock(): void {
    if (this.pinned >= 0) this.endPin(this.pinned)
    this.pinVerifiedAt = this.now()
    this.beginPin(0)
    this.pinned = 0
  }

  /** Where to read from in the current WAL: our position, or the start of a WAL restarted from our state. */
  private startOf(header: WalHeader): WalPosition {
    const current = this.position.wal
    if (current === null || (current.salt1 === header.salt1 && current.salt2 === header.salt2)) return current ?? positionAtHeader(header)
    if (header.salt1 !== ((current.salt1 + 1) >>> 0)) {
      throw new ContinuityLost('le WAL ne fait pas suite à la position copiée (fichiers modifiés hors de SQLite): nouvelle génération')
    }
    return positionAtHeader(header)
  }

  /** Records the page-1 versions among frames, which a checkpoint may later write into the database file. */
  private learnHeaders(frames: Buffer): void {
    const frameSize = WAL_FRAME_HEADER_SIZE + this.position.pageSize
    for (let offset = 0; offset + frameSize <= frames.length; offset += frameSize) {
      if (frames.readUInt32BE(offset) !== 1) continue
      const header = frames.subarray(offset + WAL_FRAME_HEADER_SIZE, offset + WAL_FRAME_HEADER_SIZE + DATABASE_HEADER_SIZE)
      this.knownHeaders.set(header.toString('hex'), changeCounter(header))
    }
  }

  /** Copies the newly committed transactions into segments (one, unless more than MAX_SEGMENT_PAYLOAD is waiting). */
  private async copy(): Promise<void> {
    for (;;) {
      const header = readWalHeaderAt(this.walPath)
      if (header === null) return
      const from = this.startOf(header)
      const fd = openSync(this.walPath, 'r')
      let found
      try {
        found = readCommittedFrames(fd, header, from, MAX_SEGMENT_PAYLOAD)
      } finally {
        closeSync(fd)
      }
      const position: SqliteReplicaPosition = { pageSize: header.pageSize, wal: found.end }
      if (found.commits.length === 0) {
        this.position = position
        return
      }
      const seenAt = this.now()
      const frameSize = WAL_FRAME_HEADER_SIZE + header.pageSize
      const seq = this.nextSeq
      const bytes = await writeSegment<SqliteReplicaPosition>(this.store, this.generation!.id, {
        first: seq,
        last: seq,
        commits: found.commits.map((c) => ({ seenAt: seenAt.toISOString(), payloadEnd: (c.frame - from.frame) * frameSize })),
        position,
      }, found.frames)
      this.learnHeaders(found.frames)
      this.emit({ type: 'segment-written', generation: this.generation!.id, seq, commits: found.commits.length, bytes, seenAt })
      this.nextSeq += 1
      this.position = position
      this.lastCommitSeenAt = seenAt
      this.counts.segmentsWritten += 1
      this.counts.commitsCopied += found.commits.length
    }
  }

  /** Whether nothing is committed past our position. */
  private caughtUp(): boolean {
    const header = readWalHeaderAt(this.walPath)
    if (header === null) return true
    const from = this.startOf(header)
    const fd = openSync(this.walPath, 'r')
    try {
      for (const batch of validFrameBatches(fd, header, from)) if (batch.commits.length > 0) return false
      return true
    } finally {
      closeSync(fd)
    }
  }

  /** Moves the pin to the copied position: begin on the other connection, verify, then end the old one. */
  private async refreshPin(): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      await this.copy()
      const other = this.pinned === 0 ? 1 : 0
      const at = this.now()
      this.beginPin(other)
      if (this.caughtUp()) {
        if (this.pinned >= 0) this.endPin(this.pinned)
        this.pinned = other
        this.pinVerifiedAt = at
        return true
      }
      this.endPin(other)
    }
    return false
  }

  async tick(): Promise<void> {
    if (this.restart !== null) return this.startGenerationAgain()
    try {
      const replaced = this.replacedBecause()
      if (replaced === 'missing') return this.emit({ type: 'warning', message: `base introuvable: ${this.options.databasePath} (réplication en attente)` })
      if (replaced !== null) throw new ContinuityLost(replaced)
      await this.refreshPin()
      const frames = this.position.wal?.frame ?? 0
      const byBytes = this.options.checkpointThresholdBytes === undefined ? Infinity : Math.floor(this.options.checkpointThresholdBytes / (WAL_FRAME_HEADER_SIZE + this.position.pageSize))
      if (frames >= Math.min(this.options.checkpointThresholdPages ?? 1000, byBytes)) await this.checkpoint()
      if (this.now().getTime() - this.lastSnapshotAt >= (this.options.snapshotEveryMs ?? DAY_MS) && await this.refreshPin()) {
        await this.snapshot()
        await this.retention()
      }
      if (this.now().getTime() - this.lastCompactionAt >= (this.options.compactEveryMs ?? 60_000)) this.compact()
    } catch (error) {
      // A file copied over the database while we read it shows as a short read or a corrupt page: our
      // pin and position are then meaningless, so continuity is lost just as when we detect it.
      if (!(error instanceof ContinuityLost) && !isUnreadable(error)) throw error
      const reason = error instanceof ContinuityLost ? error.message : `lecture de la base impossible (${(error as { code: string }).code}; fichier remplacé pendant la lecture?): nouvelle génération`
      this.restart = { reason, from: this.lastCommitSeenAt ?? new Date(this.lastSnapshotAt) }
      await this.startGenerationAgain()
    }
  }

  /** Reopens the database and starts a new generation; retried at the next tick while the files stay unreadable (a copy in progress). */
  private async startGenerationAgain(): Promise<void> {
    const { reason, from } = this.restart!
    try {
      this.close()
      this.open()
      await this.startGeneration(reason, { from, to: this.now() })
      this.restart = null
    } catch (error) {
      if (!isUnreadable(error) && !(error instanceof ToolkitError)) throw error
      this.close()
      this.emit({ type: 'warning', message: `nouvelle génération reportée: ${error instanceof Error ? error.message : String(error)}` })
    }
  }

  /** Copies what is committed before stopping; a lost continuity is left to the next run, which starts a new generation. */
  async finalCopy(): Promise<void> {
    if (this.restart !== null) return
    try {
      await this.copy()
    } catch (error) {
      if (!(error instanceof ContinuityLost)) throw error
    }
  }

  /** Why the database's files were changed behind SQLite's back (null: they were not; 'missing': no file now). */
  private replacedBecause(): string | 'missing' | null {
    const stat = statSync(this.options.databasePath, { throwIfNoEntry: false })
    if (stat === undefined) return 'missing'
    if (stat.ino !== this.identity.inode || stat.dev !== this.identity.device) return 'la base a été remplacée (restauration ou copie): nouvelle génération'
    const wal = statSync(this.walPath, { throwIfNoEntry: false })
    if (this.walIdentity === null && wal !== undefined) this.walIdentity = { device: wal.dev, inode: wal.ino }
    if (this.walIdentity !== null && (wal === undefined || wal.ino !== this.walIdentity.inode || wal.dev !== this.walIdentity.device)) {
      return 'le fichier -wal a été supprimé ou remplacé hors de SQLite (restauration manuelle?): nouvelle génération'
    }
    for (let attempt = 0; ; attempt++) {
      const header = this.readDatabaseHeader()
      if (header.equals(this.databaseHeader)) return null
      const counter = this.knownHeaders.get(header.toString('hex'))
      if (counter !== undefined && counter >= changeCounter(this.databaseHeader)) {
        this.databaseHeader = header
        for (const [key, value] of this.knownHeaders) if (value < counter) this.knownHeaders.delete(key)
        return null
      }
      // A checkpoint may be writing page 1 at this very moment: read it once more before concluding.
      if (attempt === 1) return 'la base a été écrasée sur place (restauration ou copie sur le même fichier): nouvelle génération'
    }
  }

  /** Reads the whole WAL from its header (under the write lock): our position, and the page-1 versions a checkpoint may still write. */
  private learnWalUnderWriteLock(): void {
    this.knownHeaders.clear()
    this.databaseHeader = this.readDatabaseHeader()
    this.knownHeaders.set(this.databaseHeader.toString('hex'), changeCounter(this.databaseHeader))
    const wal = statSync(this.walPath, { throwIfNoEntry: false })
    this.walIdentity = wal === undefined ? null : { device: wal.dev, inode: wal.ino }
    const header = readWalHeaderAt(this.walPath)
    if (header === null) {
      this.position = { ...this.position, wal: null }
      return
    }
    let end = positionAtHeader(header)
    const fd = openSync(this.walPath, 'r')
    try {
      for (const batch of validFrameBatches(fd, header, end)) {
        const last = batch.commits.at(-1)
        if (last === undefined) continue
        this.learnHeaders(batch.bytes.subarray(0, (last.frame - batch.firstFrame + 1) * (WAL_FRAME_HEADER_SIZE + header.pageSize)))
        end = { salt1: header.salt1, salt2: header.salt2, frame: last.frame, checksum: last.checksum }
      }
    } finally {
      closeSync(fd)
    }
    this.position = { pageSize: header.pageSize, wal: end }
  }

  private async checkpoint(): Promise<void> {
    const done = await this.underWriteLock(async () => {
      await this.copy()
      if (this.pinned >= 0) this.endPin(this.pinned)
      this.pinned = -1
      const [result] = this.checkpointer!.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[]
      this.pinUnderWriteLock()
      return result!
    })
    if (done === null) return this.emit({ type: 'warning', message: 'point de contrôle reporté: l’application garde le verrou d’écriture' })
    this.emit({ type: 'checkpoint', generation: this.generation!.id, walFrames: done.log, checkpointedFrames: done.checkpointed, complete: done.log === done.checkpointed })
  }

  /** Starts a compaction in the background (at most one at a time): new commits keep being copied meanwhile. */
  private compact(): void {
    this.lastCompactionAt = this.now().getTime()
    if (this.compaction !== null) return
    this.compaction = this.compactGeneration(this.generation!.id)
      .catch((error: unknown) => this.emit({ type: 'warning', message: `compaction reportée: ${error instanceof Error ? error.message : String(error)}` }))
      .finally(() => { this.compaction = null })
  }

  /** Waits for a background compaction to end. */
  async settle(): Promise<void> {
    await this.compaction
  }

  private async compactGeneration(id: string): Promise<void> {
    const snapshotSeqs = (await listSnapshots(this.store, id)).map((s) => s.seq)
    const result = await compactSegments(this.store, id, { snapshotSeqs, maxPayloadBytes: MAX_MERGED_PAYLOAD })
    if (result.merged + result.removed > 0) this.emit({ type: 'compaction', generation: id, ...result })
  }

  private async startGeneration(reason: string, gap: { from: Date | null; to: Date } | null): Promise<void> {
    const startedAt = this.now()
    const pinned = await this.underWriteLock(async () => {
      // The frames already in the WAL belong to the snapshot, not to segments.
      this.learnWalUnderWriteLock()
      this.pinUnderWriteLock()
      return true
    })
    if (pinned === null) throw new ToolkitError('impossible de démarrer la réplication: la base reste verrouillée en écriture', { hint: 'Réessayez quand l’application ne tient pas de longue transaction d’écriture, ou augmentez le délai d’attente.' })
    const stat = statSync(this.options.databasePath)
    this.generation = { version: 2, id: newGenerationId(startedAt), startedAt: startedAt.toISOString(), reason, database: { path: this.options.databasePath, device: stat.dev, inode: stat.ino } }
    await createGeneration(this.store, this.generation)
    this.nextSeq = 0
    this.lastCommitSeenAt = null
    this.emit({ type: 'generation-started', generation: this.generation.id, reason, gap })
    if (gap !== null) {
      this.emit({ type: 'warning', message: `trou dans la réplication: les transactions validées entre ${gap.from?.toISOString() ?? 'le début'} et ${gap.to.toISOString()} ne sont pas restaurables une à une (${reason})` })
    }
    await this.snapshot()
    await this.retention()
  }

  /** Resumes the latest generation when the WAL still holds our position unchanged; otherwise says why not. */
  private async resume(generation: GenerationInfo): Promise<{ reason: string; from: Date | null } | null> {
    const snapshots = await listSnapshots<SqliteReplicaPosition>(this.store, generation.id)
    const lastRef = (await listSegments(this.store, generation.id)).at(-1)
    const lastSegment = lastRef === undefined ? null : await readSegmentHeader<SqliteReplicaPosition>(this.store, generation.id, lastRef)
    const lastSnapshot = snapshots.at(-1)
    const lastSeen = lastSegment?.commits.at(-1)?.seenAt ?? lastSnapshot?.at ?? null
    const from = lastSeen === null ? null : new Date(lastSeen)
    if (lastSnapshot === undefined) return { reason: 'la génération précédente n’a pas de snapshot: nouvelle génération', from }
    if (generation.database.inode !== this.identity.inode || generation.database.device !== this.identity.device) {
      return { reason: 'la base a été remplacée depuis la dernière réplication: nouvelle génération', from }
    }
    const segmentIsNewer = lastSegment !== null && lastSegment.last >= lastSnapshot.seq
    const saved = segmentIsNewer ? lastSegment.position : lastSnapshot.position
    const resumed = await this.underWriteLock(async () => {
      if (saved.wal === null || !this.walStillHolds(saved.wal)) return false
      this.generation = generation
      this.nextSeq = segmentIsNewer ? lastSegment.last + 1 : lastSnapshot.seq
      this.lastCommitSeenAt = from
      // The database file and the WAL up to the saved position are trusted as they are now.
      this.learnWalUnderWriteLock()
      this.position = saved
      await this.copy()
      this.pinUnderWriteLock()
      return true
    })
    if (resumed !== true) return { reason: 'le WAL a été recyclé pendant l’arrêt de la réplication (point de contrôle de l’application): nouvelle génération', from }
    this.lastSnapshotAt = Date.parse(lastSnapshot.at)
    this.emit({ type: 'resumed', generation: generation.id, frame: saved.wal!.frame })
    return null
  }

  /** Whether the WAL is still the incarnation of `position` and holds its frame unchanged. */
  private walStillHolds(position: WalPosition): boolean {
    const header = readWalHeaderAt(this.walPath)
    if (header === null || header.salt1 !== position.salt1 || header.salt2 !== position.salt2) return false
    if (position.frame === 0) return header.checksum[0] === position.checksum[0] && header.checksum[1] === position.checksum[1]
    const bytes = Buffer.alloc(WAL_FRAME_HEADER_SIZE)
    const fd = openSync(this.walPath, 'r')
    try {
      if (readSync(fd, bytes, 0, bytes.length, frameOffset(position.frame, header.pageSize)) !== bytes.length) return false
    } finally {
      closeSync(fd)
    }
    const frame = parseFrameHeader(bytes)
    return frame.salt1 === position.salt1 && frame.salt2 === position.salt2 && frame.checksum[0] === position.checksum[0] && frame.checksum[1] === position.checksum[1]
  }

  /** A physical image of the database at the pinned position, built locally then stored atomically. */
  private async snapshot(): Promise<void> {
    const id = this.generation!.id
    const seq = this.nextSeq
    const key = snapshotDataKey(id, seq)
    const temporary = this.store.stagingPathFor(key)
    const at = this.pinVerifiedAt
    const { pageSize, wal } = this.position
    let bytes: number
    try {
      for (let attempt = 0; ; attempt++) {
        copyFileSync(this.options.databasePath, temporary)
        const fd = openSync(temporary, 'r+')
        try {
          const overlay = wal === null || wal.frame === 0 ? 'none' : this.overlayWal(fd, wal)
          if (overlay === 'retry' && attempt < 3) continue
          if (overlay === 'retry') throw new ToolkitError('snapshot impossible: le WAL change pendant la copie', { hint: 'Relancez la réplication.' })
          if (typeof overlay === 'number') ftruncateSync(fd, overlay * pageSize)
          fsyncSync(fd)
        } finally {
          closeSync(fd)
        }
        break
      }
      bytes = statSync(temporary).size
      await this.store.putFile(key, temporary)
    } catch (error) {
      rmSync(temporary, { force: true })
      throw error
    }
    await writeSnapshotInfo<SqliteReplicaPosition>(this.store, id, { seq, at: at.toISOString(), bytes, position: this.position })
    this.lastSnapshotAt = at.getTime()
    this.counts.snapshotsWritten += 1
    this.emit({ type: 'snapshot-written', generation: id, seq, bytes, at })
  }

  /**
   * Writes WAL frames 1..P over a copy of the database file, batch by batch (bounded memory). Any page a
   * checkpoint wrote into the file during the copy comes from those frames, so applying them all in
   * order gives the exact state at P. When the WAL restarted meanwhile, the pin read the database file
   * alone, which already is the state.
   */
  private overlayWal(fd: number, wal: WalPosition): number | 'none' | 'retry' {
    const header = readWalHeaderAt(this.walPath)
    if (header === null || header.salt1 !== wal.salt1 || header.salt2 !== wal.salt2) return 'none'
    const frameSize = WAL_FRAME_HEADER_SIZE + header.pageSize
    const walFd = openSync(this.walPath, 'r')
    try {
      for (const batch of validFrameBatches(walFd, header, positionAtHeader(header))) {
        const wanted = Math.min(batch.bytes.length, (wal.frame - batch.firstFrame + 1) * frameSize)
        applyFrames(fd, batch.bytes.subarray(0, wanted), header.pageSize)
        const commit = batch.commits.find((c) => c.frame === wal.frame)
        if (commit !== undefined) return commit.databasePages
        if (wanted < batch.bytes.length) break
      }
    } finally {
      closeSync(walFd)
    }
    // Frames of an incarnation that ended during the copy may have been applied: start again from a fresh copy.
    return 'retry'
  }

  private async retention(): Promise<void> {
    const result = await applyRetention({ store: this.store, now: this.now(), retentionMs: this.options.retentionMs ?? 7 * DAY_MS, currentGenerationId: this.generation?.id ?? null })
    if (result.removedSnapshots + result.removedSegments + result.removedGenerations.length > 0) this.emit({ type: 'retention', ...result })
  }

  summary(): ReplicationSummary {
    return { generation: this.generation!.id, ...this.counts, position: this.position }
  }
}
