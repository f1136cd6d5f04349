/**
 * What a replica can restore, and the plan to reach a time T: the generation that covers T, its newest
 * snapshot at or before T, and the segments up to the last commit the replicator saw at or before T.
 * Engine-independent: positions stay opaque, only seen-times and payload offsets are read.
 */
import { ToolkitError } from '../errors.ts'
import { listGenerations, listSegmentSeqs, listSnapshots, readSegmentHeader, type GenerationInfo, type SnapshotInfo } from './layout.ts'

export interface ReachableRange {
  from: Date
  to: Date
}

interface GenerationTimeline<Position> {
  generation: GenerationInfo
  snapshots: SnapshotInfo<Position>[]
  from: Date
  to: Date
}

export interface RestorePlan<Position> {
  generation: GenerationInfo
  snapshot: SnapshotInfo<Position>
  /** Segments to apply in order; only the first `payloadEnd` bytes of each. */
  segments: { seq: number; payloadEnd: number }[]
  /** When the replicator saw the last commit applied (null when the snapshot alone is the answer). */
  lastCommitSeenAt: Date | null
  /** The state restored was the database's current state at this time (≤ T). */
  stateAt: Date
  range: ReachableRange
}

function timelines<Position>(replicaDir: string): GenerationTimeline<Position>[] {
  const result: GenerationTimeline<Position>[] = []
  for (const generation of listGenerations(replicaDir)) {
    const snapshots = listSnapshots<Position>(replicaDir, generation.id)
    if (snapshots.length === 0) continue
    let to = Date.parse(snapshots[snapshots.length - 1]!.at)
    const seqs = listSegmentSeqs(replicaDir, generation.id)
    const last = seqs.length > 0 ? readSegmentHeader<Position>(replicaDir, generation.id, seqs[seqs.length - 1]!) : null
    const lastCommit = last?.commits[last.commits.length - 1]
    if (lastCommit !== undefined) to = Math.max(to, Date.parse(lastCommit.seenAt))
    result.push({ generation, snapshots, from: new Date(snapshots[0]!.at), to: new Date(to) })
  }
  return result
}

const frenchTime = (date: Date) => date.toISOString()

/**
 * The span of times a replica can restore: from its oldest kept snapshot to its newest commit.
 * @example const { from, to } = reachableRange('/var/backups/pitr')
 */
export function reachableRange(replicaDir: string): ReachableRange {
  const all = timelines(replicaDir)
  if (all.length === 0) {
    throw new ToolkitError(`aucun réplica restaurable dans ${replicaDir}`, { hint: 'Lancez d’abord la réplication continue (replicate) vers ce dossier.' })
  }
  return { from: new Date(Math.min(...all.map((t) => t.from.getTime()))), to: new Date(Math.max(...all.map((t) => t.to.getTime()))) }
}

/**
 * Plans a restore to `at`; refuses (one French line with the reachable range) a time outside the replica.
 * @example const plan = planRestoreToTime('/var/backups/pitr', new Date('2026-03-01T10:15:00+01:00'))
 */
export function planRestoreToTime<Position>(replicaDir: string, at: Date): RestorePlan<Position> {
  const range = reachableRange(replicaDir)
  const t = at.getTime()
  if (Number.isNaN(t) || t < range.from.getTime() || t > range.to.getTime()) {
    throw new ToolkitError(`instant hors de la plage restaurable: ${Number.isNaN(t) ? 'date invalide' : frenchTime(at)} (plage: ${frenchTime(range.from)} → ${frenchTime(range.to)})`, {
      hint: `Choisissez un instant entre ${frenchTime(range.from)} et ${frenchTime(range.to)}.`,
    })
  }
  const timeline = timelines<Position>(replicaDir).filter((g) => g.from.getTime() <= t).pop()!
  const snapshot = timeline.snapshots.filter((s) => Date.parse(s.at) <= t).pop()!
  const segments: { seq: number; payloadEnd: number }[] = []
  let lastCommitSeenAt: Date | null = null
  for (const seq of listSegmentSeqs(replicaDir, timeline.generation.id).filter((s) => s >= snapshot.seq)) {
    const header = readSegmentHeader<Position>(replicaDir, timeline.generation.id, seq)
    const included = header.commits.filter((c) => Date.parse(c.seenAt) <= t)
    if (included.length === 0) break
    segments.push({ seq, payloadEnd: included[included.length - 1]!.payloadEnd })
    lastCommitSeenAt = new Date(included[included.length - 1]!.seenAt)
    if (included.length < header.commits.length) break
  }
  const stateAt = lastCommitSeenAt ?? new Date(snapshot.at)
  return { generation: timeline.generation, snapshot, segments, lastCommitSeenAt, stateAt, range }
}
