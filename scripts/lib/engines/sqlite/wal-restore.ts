/**
 * Restores a SQLite replica to a point in time: the plan (replication/plan.ts) names a snapshot and the
 * segments up to the last commit seen at or before T; their frames are written at their page numbers over
 * a copy of the snapshot, and the file is cut to the database size of that last commit.
 *
 * Why apply pages directly rather than hand SQLite a WAL file to recover: this is exactly what a
 * checkpoint does (the newest committed version of each page in place, then truncation to the commit's
 * size), it needs no forged WAL header, salts or checksums, and it is exact because snapshots are page
 * images of the same file the frames were written for. The result is then judged by SQLite itself
 * (PRAGMA integrity_check) before it is renamed into place.
 */
import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, rmSync, statSync } from 'node:fs'
import Database from 'better-sqlite3'
import { ToolkitError } from '../../errors.ts'
import { commitRename, temporaryPathFor } from '../../fs/atomic.ts'
import { readSegment, snapshotDataKey } from '../../replication/layout.ts'
import { planRestoreToTime, type ReachableRange } from '../../replication/plan.ts'
import type { ReplicaStore } from '../../replication/store.ts'
import { applyFrames } from './wal-format.ts'
import type { SqliteReplicaPosition } from './wal-replicator.ts'

export interface RestoreToTimeResult {
  outputPath: string
  generation: string
  /** When the replicator saw the last transaction restored (null: the snapshot alone). */
  lastCommitSeenAt: Date | null
  /** The restored state was the database's current state at this time. */
  stateAt: Date
  range: ReachableRange
  transactionsApplied: number
  bytes: number
}

/**
 * @example
 * const result = await restoreToTime({ replica: folderReplicaStore('/var/backups/pitr'), at: parseInstant('2026-03-01T10:15:00+01:00'), outputPath: '/tmp/restored.db' })
 */
export async function restoreToTime(options: { replica: ReplicaStore; at: Date; outputPath: string; overwrite?: boolean }): Promise<RestoreToTimeResult> {
  const { replica, outputPath } = options
  const plan = await planRestoreToTime<SqliteReplicaPosition>(replica, options.at)
  if (!options.overwrite && existsSync(outputPath)) {
    throw new ToolkitError(`le fichier de sortie existe déjà: ${outputPath}`, { hint: 'Choisissez un autre fichier de sortie, ou confirmez le remplacement.' })
  }
  const temporary = temporaryPathFor(outputPath)
  const sidecars = (path: string) => [`${path}-wal`, `${path}-shm`, `${path}-journal`]
  let transactionsApplied = 0
  try {
    await replica.getFile(snapshotDataKey(plan.generation.id, plan.snapshot.seq), temporary)
    const fd = openSync(temporary, 'r+')
    try {
      for (const segment of plan.segments) {
        const { header, payload } = await readSegment<SqliteReplicaPosition>(replica, plan.generation.id, segment)
        const pages = applyFrames(fd, segment.payloadEnd === null ? payload : payload.subarray(0, segment.payloadEnd), header.position.pageSize)
        if (pages !== null) ftruncateSync(fd, pages * header.position.pageSize)
        transactionsApplied += segment.commits
      }
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    const db = new Database(temporary, { fileMustExist: true })
    let verdict: string
    try {
      verdict = (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ')
    } finally {
      db.close()
    }
    if (verdict !== 'ok') throw new ToolkitError(`la base restaurée échoue au contrôle d’intégrité: ${verdict}`, { hint: 'Le réplica est abîmé: essayez un instant couvert par un autre snapshot.' })
    for (const path of sidecars(temporary)) rmSync(path, { force: true })
    for (const path of sidecars(outputPath)) rmSync(path, { force: true })
    commitRename(temporary, outputPath)
  } catch (error) {
    for (const path of [temporary, ...sidecars(temporary)]) rmSync(path, { force: true })
    throw error
  }
  return {
    outputPath,
    generation: plan.generation.id,
    lastCommitSeenAt: plan.lastCommitSeenAt,
    stateAt: plan.stateAt,
    range: plan.range,
    transactionsApplied,
    bytes: statSync(outputPath).size,
  }
}
