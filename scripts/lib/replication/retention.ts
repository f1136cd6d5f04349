/**
 * Retention of a replica: keeps every snapshot taken within `retentionMs` plus the newest one before that
 * (it is the base of the oldest restorable times), the segments that follow each kept snapshot's
 * generation base, and the current generation; removes everything else. Never removes a segment the
 * oldest kept snapshot of its generation needs.
 */
import { deleteSegment, deleteSnapshot, listGenerations, listSegmentObjects, listSnapshots, removeGeneration } from './layout.ts'
import type { ReplicaStore } from './store.ts'

export interface RetentionResult {
  removedSnapshots: number
  removedSegments: number
  removedGenerations: string[]
}

/**
 * @example await applyRetention({ store, now: new Date(), retentionMs: 7 * 86_400_000, currentGenerationId })
 */
export async function applyRetention(options: { store: ReplicaStore; now: Date; retentionMs: number; currentGenerationId: string | null }): Promise<RetentionResult> {
  const { store } = options
  const cutoff = options.now.getTime() - options.retentionMs
  const generations = []
  for (const generation of await listGenerations(store)) generations.push({ generation, snapshots: await listSnapshots(store, generation.id) })
  const all = generations.flatMap((g) => g.snapshots.map((s) => ({ id: g.generation.id, seq: s.seq, at: Date.parse(s.at) }))).sort((a, b) => a.at - b.at)
  const base = all.filter((s) => s.at < cutoff).pop()
  const kept = new Set(all.filter((s) => s.at >= cutoff || s === base).map((s) => `${s.id}/${s.seq}`))
  const result: RetentionResult = { removedSnapshots: 0, removedSegments: 0, removedGenerations: [] }
  for (const { generation, snapshots } of generations) {
    const keptHere = snapshots.filter((s) => kept.has(`${generation.id}/${s.seq}`))
    if (keptHere.length === 0 && generation.id !== options.currentGenerationId) {
      await removeGeneration(store, generation.id)
      result.removedGenerations.push(generation.id)
      continue
    }
    const oldestKept = keptHere[0]?.seq ?? 0
    for (const snapshot of snapshots) {
      if (kept.has(`${generation.id}/${snapshot.seq}`) || (keptHere.length === 0 && snapshot === snapshots[snapshots.length - 1])) continue
      await deleteSnapshot(store, generation.id, snapshot.seq)
      result.removedSnapshots += 1
    }
    // A merged segment never spans a snapshot boundary, so `last < oldestKept` removes whole objects only.
    for (const ref of await listSegmentObjects(store, generation.id)) {
      if (ref.last >= oldestKept) continue
      await deleteSegment(store, generation.id, ref)
      result.removedSegments += 1
    }
  }
  return result
}
