/**
 * What a replica can restore, and the plan to reach a time T: the generation that covers T, its newest
 * snapshot at or before T, and the segments up to the last commit the replicator saw at or before T.
 * Engine-independent: positions stay opaque, only seen-times and payload offsets are read. The
 * generation's index gives each segment's seen-time span, so only the one segment that straddles T is
 * opened to find the exact commit.
 */
import { ToolkitError } from '../errors.ts'
import { formatInstant, formatRange } from './instant.ts'
import { listGenerations, listSnapshots, readSegmentHeader, readSegmentIndex, type GenerationInfo, type SegmentIndexEntry, type SegmentRef, type SnapshotInfo } from './layout.ts'
import type { ReplicaStore } from './store.ts'

export interface ReachableRange {
  from: Date
  to: Date
}

interface GenerationTimeline<Position> {
  generation: GenerationInfo
  snapshots: SnapshotInfo<Position>[]
  segments: SegmentIndexEntry[]
  from: Date
  to: Date
}

export interface RestorePlan<Position> {
  generation: GenerationInfo
  snapshot: SnapshotInfo<Position>
  /** Segments to apply in order: the first `payloadEnd` bytes of each uncompressed payload (null: all of it), holding `commits` transactions. */
  segments: (SegmentRef & { payloadEnd: number | null; commits: number })[]
  /** When the replicator saw the last commit applied (null when the snapshot alone is the answer). */
  lastCommitSeenAt: Date | null
  /** The state restored was the database's current state at this time (≤ T). */
  stateAt: Date
  range: ReachableRange
}

async function timelines<Position>(store: ReplicaStore): Promise<GenerationTimeline<Position>[]> {
  const result: GenerationTimeline<Position>[] = []
  for (const generation of await listGenerations(store)) {
    const snapshots = await listSnapshots<Position>(store, generation.id)
    if (snapshots.length === 0) continue
    const { entries } = await readSegmentIndex(store, generation.id)
    const segments = entries.filter((e) => e.first >= snapshots[0]!.seq)
    const lastSeen = segments.at(-1)?.lastSeenAt
    const to = Math.max(Date.parse(snapshots.at(-1)!.at), lastSeen === undefined ? -Infinity : Date.parse(lastSeen))
    result.push({ generation, snapshots, segments, from: new Date(snapshots[0]!.at), to: new Date(to) })
  }
  return result
}

function rangeOf(all: GenerationTimeline<unknown>[], store: ReplicaStore): ReachableRange {
  if (all.length === 0) {
    throw new ToolkitError(`aucun réplica restaurable dans ${store.label}`, { hint: 'Lancez d’abord la réplication continue (replicate) vers ce dossier.' })
  }
  return { from: new Date(Math.min(...all.map((t) => t.from.getTime()))), to: new Date(Math.max(...all.map((t) => t.to.getTime()))) }
}

/**
 * The span of times a replica can restore: from its oldest kept snapshot to its newest commit.
 * @example const { from, to } = await reachableRange(folderReplicaStore('/var/backups/pitr'))
 */
export async function reachableRange(store: ReplicaStore): Promise<ReachableRange> {
  return rangeOf(await timelines(store), store)
}

/**
 * Plans a restore to `at`; refuses (one French line with the reachable range) a time outside the replica.
 * @example const plan = await planRestoreToTime(store, new Date('2026-03-01T10:15:00+01:00'))
 */
export async function planRestoreToTime<Position>(store: ReplicaStore, at: Date): Promise<RestorePlan<Position>> {
  const all = await timelines<Position>(store)
  const range = rangeOf(all, store)
  const t = at.getTime()
  if (Number.isNaN(t) || t < range.from.getTime() || t > range.to.getTime()) {
    throw new ToolkitError(`Instant ${Number.isNaN(t) ? '(date invalide)' : formatInstant(at)} hors de la plage restaurable (${formatRange(range.from, range.to)}).`, {
      hint: `Choisissez un instant ${formatRange(range.from, range.to)}, avec son fuseau horaire.`,
      exitCode: 2,
    })
  }
  const timeline = all.filter((g) => g.from.getTime() <= t).pop()!
  const snapshot = timeline.snapshots.filter((s) => Date.parse(s.at) <= t).pop()!
  const segments: RestorePlan<Position>['segments'] = []
  let lastCommitSeenAt: Date | null = null
  for (const entry of timeline.segments.filter((e) => e.first >= snapshot.seq)) {
    if (Date.parse(entry.firstSeenAt) > t) break
    if (Date.parse(entry.lastSeenAt) <= t) {
      segments.push({ first: entry.first, last: entry.last, payloadEnd: null, commits: entry.commits })
      lastCommitSeenAt = new Date(entry.lastSeenAt)
      continue
    }
    const header = await readSegmentHeader<Position>(store, timeline.generation.id, entry)
    const included = header.commits.filter((c) => Date.parse(c.seenAt) <= t)
    segments.push({ first: entry.first, last: entry.last, payloadEnd: included.at(-1)!.payloadEnd, commits: included.length })
    lastCommitSeenAt = new Date(included.at(-1)!.seenAt)
    break
  }
  const stateAt = lastCommitSeenAt ?? new Date(snapshot.at)
  return { generation: timeline.generation, snapshot, segments, lastCommitSeenAt, stateAt, range }
}
