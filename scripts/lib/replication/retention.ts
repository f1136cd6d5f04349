/**
 * Retention of a replica: keeps every snapshot taken within `retentionMs` plus the newest one before that
 * (it is the base of the oldest restorable times), the segments that follow each kept snapshot's
 * generation base, and the current generation; removes everything else. Never removes a segment the
 * oldest kept snapshot of its generation needs.
 */
import { rmSync } from 'node:fs'
import { fsyncPath } from '../fs/atomic.ts'
import { generationDir, generationsDir, listGenerations, listSegmentSeqs, listSnapshots, segmentPath, snapshotFiles } from './layout.ts'

export interface RetentionResult {
  removedSnapshots: number
  removedSegments: number
  removedGenerations: string[]
}

/**
 * @example applyRetention({ replicaDir, now: new Date(), retentionMs: 7 * 86_400_000, currentGenerationId })
 */
export function applyRetention(options: { replicaDir: string; now: Date; retentionMs: number; currentGenerationId: string | null }): RetentionResult {
  const { replicaDir } = options
  const cutoff = options.now.getTime() - options.retentionMs
  const generations = listGenerations(replicaDir).map((generation) => ({ generation, snapshots: listSnapshots(replicaDir, generation.id) }))
  const all = generations.flatMap((g) => g.snapshots.map((s) => ({ id: g.generation.id, seq: s.seq, at: Date.parse(s.at) }))).sort((a, b) => a.at - b.at)
  const base = all.filter((s) => s.at < cutoff).pop()
  const kept = new Set(all.filter((s) => s.at >= cutoff || s === base).map((s) => `${s.id}/${s.seq}`))
  const result: RetentionResult = { removedSnapshots: 0, removedSegments: 0, removedGenerations: [] }
  for (const { generation, snapshots } of generations) {
    const keptHere = snapshots.filter((s) => kept.has(`${generation.id}/${s.seq}`))
    if (keptHere.length === 0 && generation.id !== options.currentGenerationId) {
      rmSync(generationDir(replicaDir, generation.id), { recursive: true, force: true })
      result.removedGenerations.push(generation.id)
      continue
    }
    const oldestKept = keptHere[0]?.seq ?? 0
    for (const snapshot of snapshots) {
      if (kept.has(`${generation.id}/${snapshot.seq}`) || (keptHere.length === 0 && snapshot === snapshots[snapshots.length - 1])) continue
      for (const path of snapshotFiles(replicaDir, generation.id, snapshot.seq)) rmSync(path, { force: true })
      result.removedSnapshots += 1
    }
    for (const seq of listSegmentSeqs(replicaDir, generation.id)) {
      if (seq >= oldestKept) break
      rmSync(segmentPath(replicaDir, generation.id, seq), { force: true })
      result.removedSegments += 1
    }
  }
  if (result.removedGenerations.length > 0) fsyncPath(generationsDir(replicaDir))
  return result
}
