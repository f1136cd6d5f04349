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
 */
import { closeSync, copyFileSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readSync, rmSync, statSync } from 'node:fs'
import Database from 'better-sqlite3'
import { ToolkitError } from '../../errors.ts'
import { commitRename, temporaryPathFor } from '../../fs/atomic.ts'
import {
  createGeneration, listGenerations, listSegmentSeqs, listSnapshots, newGenerationId, readSegmentHeader,
  snapshotDataPath, writeSegment, writeSnapshotInfo, type GenerationInfo,
} from '../../replication/layout.ts'
import { applyRetention } from '../../replication/retention.ts'
import {
  WAL_FRAME_HEADER_SIZE, applyFrames, databasePageSize, frameOffset, parseFrameHeader, positionAtHeader,
  readCommittedFrames, readWalHeaderAt, type CommittedFrames, type WalHeader, type WalPosition,
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
  | { type: 'retention'; removedSnapshots: number; removedSegments: number; removedGenerations: string[] }
  | { type: 'warning'; message: string }

export interface ReplicateOptions {
  databasePath: string
  replicaDir: string
  now?: () => Date
  /** How often the WAL is read (default 200 ms; the lag is at most about this plus a segment write). */
  pollIntervalMs?: number
  /** A fresh snapshot after this long (default 24 h); one is always taken when a generation starts. */
  snapshotEveryMs?: number
  /** Checkpoint ourselves once the WAL holds this many frames (default 1000, SQLite's own default). */
  checkpointThresholdPages?: number
  /** Same threshold in bytes of WAL; the smaller of the two applies. */
  checkpointThresholdBytes?: number
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

/**
 * Replicates until `signal` aborts, then copies what is committed, releases its locks and returns.
 * @example
 * const controller = new AbortController()
 * process.once('SIGTERM', () => controller.abort())
 * await replicate({ databasePath: 'prisma/dev.db', replicaDir: '/var/backups/pitr', signal: controller.signal })
 */
export async function replicate(options: ReplicateOptions): Promise<ReplicationSummary> {
  const replicator = new WalReplicator(options)
  try {
    replicator.start()
    while (!options.signal?.aborted) {
      await sleep(options.pollIntervalMs ?? 200, options.signal)
      replicator.tick()
    }
    replicator.copy()
    return replicator.summary()
  } finally {
    replicator.close()
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })
}

const isBusy = (error: unknown) => (error as { code?: string }).code?.startsWith('SQLITE_BUSY') === true

class WalReplicator {
  private readonly now: () => Date
  private readonly walPath: string
  private readers: [Database.Database, Database.Database] | null = null
  private control: Database.Database | null = null
  private pinned = -1
  private pinVerifiedAt = new Date(0)
  private identity = { device: 0, inode: 0 }
  private generation: GenerationInfo | null = null
  private nextSeq = 0
  private position: SqliteReplicaPosition = { pageSize: 0, wal: null }
  private lastSnapshotAt = 0
  private counts = { segmentsWritten: 0, commitsCopied: 0, snapshotsWritten: 0 }

  constructor(private readonly options: ReplicateOptions) {
    this.now = options.now ?? (() => new Date())
    this.walPath = `${options.databasePath}-wal`
  }

  private emit(event: ReplicationEvent): void {
    this.options.onEvent?.(event)
  }

  start(): void {
    mkdirSync(this.options.replicaDir, { recursive: true })
    this.open()
    const latest = listGenerations(this.options.replicaDir).pop()
    if (latest === undefined) return this.startGeneration('première réplication de cette base', null)
    const gap = this.resume(latest)
    if (gap !== null) this.startGeneration(gap.reason, { from: gap.from, to: this.now() })
  }

  private open(): void {
    const connect = () => {
      const db = new Database(this.options.databasePath, { fileMustExist: true })
      db.pragma(`busy_timeout = ${this.options.busyTimeoutMs ?? 5000}`)
      return db
    }
    try {
      this.control = connect()
      this.readers = [connect(), connect()]
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
    const header = Buffer.alloc(100)
    const fd = openSync(this.options.databasePath, 'r')
    try {
      readSync(fd, header, 0, 100, 0)
    } finally {
      closeSync(fd)
    }
    this.position = { pageSize: databasePageSize(header), wal: null }
  }

  close(): void {
    for (const db of [...(this.readers ?? []), this.control]) {
      if (db?.open) {
        if (db.inTransaction) db.prepare('ROLLBACK').run()
        db.close()
      }
    }
    this.readers = null
    this.control = null
    this.pinned = -1
  }

  /** Runs `work` holding the database's write lock (the application's writers wait); null if busy. */
  private underWriteLock<T>(work: () => T): T | null {
    const control = this.control!
    try {
      control.prepare('BEGIN IMMEDIATE').run()
    } catch (error) {
      if (isBusy(error)) return null
      throw error
    }
    try {
      return work()
    } finally {
      control.prepare('ROLLBACK').run()
    }
  }

  private beginPin(index: number): void {
    const reader = this.readers![index]!
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

  /** Committed frames after our position, following a WAL restart (by the pin, it starts from our state). */
  private scan(): { header: WalHeader; from: WalPosition; found: CommittedFrames } | null {
    const header = readWalHeaderAt(this.walPath)
    if (header === null) return null
    const current = this.position.wal
    const from = current !== null && current.salt1 === header.salt1 && current.salt2 === header.salt2 ? current : positionAtHeader(header)
    const fd = openSync(this.walPath, 'r')
    try {
      return { header, from, found: readCommittedFrames(fd, header, from) }
    } finally {
      closeSync(fd)
    }
  }

  /** Copies the newly committed transactions into one segment. */
  copy(): void {
    const result = this.scan()
    if (result === null) return
    const { header, from, found } = result
    if (found.commits.length === 0) {
      this.position = { pageSize: header.pageSize, wal: found.end }
      return
    }
    const seenAt = this.now()
    const frameSize = WAL_FRAME_HEADER_SIZE + header.pageSize
    const position: SqliteReplicaPosition = { pageSize: header.pageSize, wal: found.end }
    const bytes = writeSegment<SqliteReplicaPosition>(this.options.replicaDir, this.generation!.id, {
      version: 1,
      seq: this.nextSeq,
      commits: found.commits.map((c) => ({ seenAt: seenAt.toISOString(), payloadEnd: (c.frame - from.frame) * frameSize })),
      position,
    }, found.frames)
    this.emit({ type: 'segment-written', generation: this.generation!.id, seq: this.nextSeq, commits: found.commits.length, bytes, seenAt })
    this.nextSeq += 1
    this.position = position
    this.counts.segmentsWritten += 1
    this.counts.commitsCopied += found.commits.length
  }

  /** Moves the pin to the copied position: begin on the other connection, verify, then end the old one. */
  private refreshPin(): boolean {
    for (let attempt = 0; attempt < 5; attempt++) {
      this.copy()
      const other = this.pinned === 0 ? 1 : 0
      const at = this.now()
      this.beginPin(other)
      const after = this.scan()
      if (after === null || after.found.commits.length === 0) {
        if (this.pinned >= 0) this.endPin(this.pinned)
        this.pinned = other
        this.pinVerifiedAt = at
        return true
      }
      this.endPin(other)
    }
    return false
  }

  tick(): void {
    const stat = statSync(this.options.databasePath, { throwIfNoEntry: false })
    if (stat === undefined || stat.ino !== this.identity.inode || stat.dev !== this.identity.device) {
      if (stat === undefined) return this.emit({ type: 'warning', message: `base introuvable: ${this.options.databasePath} (réplication en attente)` })
      const lastSeen = this.lastSeenAt()
      this.close()
      this.open()
      return this.startGeneration('la base a été remplacée (restauration ou copie): nouvelle génération', { from: lastSeen, to: this.now() })
    }
    this.refreshPin()
    const frames = this.position.wal?.frame ?? 0
    const byBytes = this.options.checkpointThresholdBytes === undefined ? Infinity : Math.floor(this.options.checkpointThresholdBytes / (WAL_FRAME_HEADER_SIZE + this.position.pageSize))
    if (frames >= Math.min(this.options.checkpointThresholdPages ?? 1000, byBytes)) this.checkpoint()
    if (this.now().getTime() - this.lastSnapshotAt >= (this.options.snapshotEveryMs ?? DAY_MS)) {
      if (this.refreshPin()) {
        this.snapshot()
        this.retention()
      }
    }
  }

  private checkpoint(): void {
    const done = this.underWriteLock(() => {
      this.copy()
      if (this.pinned >= 0) this.endPin(this.pinned)
      this.pinned = -1
      const [result] = this.readers![1].pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[]
      this.pinUnderWriteLock()
      return result!
    })
    if (done === null) return this.emit({ type: 'warning', message: 'point de contrôle reporté: l’application garde le verrou d’écriture' })
    this.emit({ type: 'checkpoint', generation: this.generation!.id, walFrames: done.log, checkpointedFrames: done.checkpointed, complete: done.log === done.checkpointed })
  }

  private startGeneration(reason: string, gap: { from: Date | null; to: Date } | null): void {
    const startedAt = this.now()
    const pinned = this.underWriteLock(() => {
      // The frames already in the WAL belong to the snapshot, not to segments.
      const result = this.scan()
      this.position = result === null ? { ...this.position, wal: null } : { pageSize: result.header.pageSize, wal: result.found.end }
      this.pinUnderWriteLock()
      return true
    })
    if (pinned === null) throw new ToolkitError('impossible de démarrer la réplication: la base reste verrouillée en écriture', { hint: 'Réessayez quand l’application ne tient pas de longue transaction d’écriture, ou augmentez le délai d’attente.' })
    const stat = statSync(this.options.databasePath)
    this.generation = { version: 1, id: newGenerationId(startedAt), startedAt: startedAt.toISOString(), reason, database: { path: this.options.databasePath, device: stat.dev, inode: stat.ino } }
    createGeneration(this.options.replicaDir, this.generation)
    this.nextSeq = 0
    this.emit({ type: 'generation-started', generation: this.generation.id, reason, gap })
    if (gap !== null) {
      this.emit({ type: 'warning', message: `trou dans la réplication: les transactions validées entre ${gap.from?.toISOString() ?? 'le début'} et ${gap.to.toISOString()} ne sont pas restaurables une à une (${reason})` })
    }
    this.snapshot()
    this.retention()
  }

  /** Resumes the latest generation when the WAL still holds our position unchanged; otherwise says why not. */
  private resume(generation: GenerationInfo): { reason: string; from: Date | null } | null {
    const dir = this.options.replicaDir
    const snapshots = listSnapshots<SqliteReplicaPosition>(dir, generation.id)
    const seqs = listSegmentSeqs(dir, generation.id)
    const lastSegment = seqs.length > 0 ? readSegmentHeader<SqliteReplicaPosition>(dir, generation.id, seqs[seqs.length - 1]!) : null
    const lastSnapshot = snapshots[snapshots.length - 1]
    const lastSeen = lastSegment?.commits.at(-1)?.seenAt ?? lastSnapshot?.at ?? null
    const from = lastSeen === null ? null : new Date(lastSeen)
    if (lastSnapshot === undefined) return { reason: 'la génération précédente n’a pas de snapshot: nouvelle génération', from }
    if (generation.database.inode !== this.identity.inode || generation.database.device !== this.identity.device) {
      return { reason: 'la base a été remplacée depuis la dernière réplication: nouvelle génération', from }
    }
    const saved = lastSegment !== null && lastSegment.seq >= lastSnapshot.seq ? lastSegment.position : lastSnapshot.position
    const resumed = this.underWriteLock(() => {
      if (saved.wal === null || !this.walStillHolds(saved.wal)) return false
      this.generation = generation
      this.nextSeq = lastSegment !== null && lastSegment.seq >= lastSnapshot.seq ? lastSegment.seq + 1 : lastSnapshot.seq
      this.position = saved
      this.copy()
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

  private lastSeenAt(): Date | null {
    if (this.generation === null) return null
    const seqs = listSegmentSeqs(this.options.replicaDir, this.generation.id)
    const last = seqs.length > 0 ? readSegmentHeader(this.options.replicaDir, this.generation.id, seqs[seqs.length - 1]!).commits.at(-1)?.seenAt : undefined
    return last === undefined ? new Date(this.lastSnapshotAt) : new Date(last)
  }

  /** A physical image of the database at the pinned position, written atomically. */
  private snapshot(): void {
    const id = this.generation!.id
    const seq = this.nextSeq
    const target = snapshotDataPath(this.options.replicaDir, id, seq)
    const temporary = temporaryPathFor(target)
    const at = this.pinVerifiedAt
    const { pageSize, wal } = this.position
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
      commitRename(temporary, target)
    } catch (error) {
      rmSync(temporary, { force: true })
      throw error
    }
    const bytes = statSync(target).size
    writeSnapshotInfo<SqliteReplicaPosition>(this.options.replicaDir, id, { version: 1, seq, at: at.toISOString(), bytes, position: this.position })
    this.lastSnapshotAt = at.getTime()
    this.counts.snapshotsWritten += 1
    this.emit({ type: 'snapshot-written', generation: id, seq, bytes, at })
  }

  /**
   * Writes WAL frames 1..P over a copy of the database file. Any page a checkpoint wrote into the file
   * during the copy comes from those frames, so applying them all in order gives the exact state at P.
   * When the WAL restarted meanwhile, the pin read the database file alone, which already is the state.
   */
  private overlayWal(fd: number, wal: WalPosition): number | 'none' | 'retry' {
    const header = readWalHeaderAt(this.walPath)
    if (header === null || header.salt1 !== wal.salt1 || header.salt2 !== wal.salt2) return 'none'
    const walFd = openSync(this.walPath, 'r')
    let found: CommittedFrames
    try {
      found = readCommittedFrames(walFd, header, positionAtHeader(header))
    } finally {
      closeSync(walFd)
    }
    const commit = found.commits.find((c) => c.frame === wal.frame)
    if (commit === undefined) return readWalHeaderAt(this.walPath)?.salt1 === wal.salt1 ? 'retry' : 'none'
    applyFrames(fd, found.frames.subarray(0, wal.frame * (WAL_FRAME_HEADER_SIZE + header.pageSize)), header.pageSize)
    return commit.databasePages
  }

  private retention(): void {
    const result = applyRetention({ replicaDir: this.options.replicaDir, now: this.now(), retentionMs: this.options.retentionMs ?? 7 * DAY_MS, currentGenerationId: this.generation?.id ?? null })
    if (result.removedSnapshots + result.removedSegments + result.removedGenerations.length > 0) this.emit({ type: 'retention', ...result })
  }

  summary(): ReplicationSummary {
    return { generation: this.generation!.id, ...this.counts, position: this.position }
  }
}
