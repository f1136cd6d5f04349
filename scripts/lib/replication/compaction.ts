/**
 * Compaction of a generation's small segments (one per poll) into larger ones. Nothing is dropped:
 * every commit keeps its seen-time and its offset in the merged payload, so a restore can still stop
 * at each of them; only the intermediate versions of a page could be dropped, and they are exactly
 * what a restore to an intermediate commit needs. The gain is compression across polls (the same pages
 * recur) and far fewer objects.
 *
 * A merged segment never spans a snapshot boundary (a snapshot at seq s is the state before segment s,
 * and a restore from it starts at a segment's beginning). Order of writes: the merged segment, then the
 * deletion of those it holds, then the index; a crash in between leaves superseded segments that
 * listing ignores, or index lines naming gone segments, which readers skip.
 */
import {
  deleteSegment, listSegmentObjects, readSegment, readSegmentIndex, resolveSegments, writeSegment,
  writeSegmentIndex, type SegmentIndexEntry, type SegmentRef,
} from './layout.ts'
import type { ReplicaStore } from './store.ts'

export interface CompactionResult {
  /** Merged segments written. */
  merged: number
  /** Segment objects removed (merged ones and leftovers of an interrupted compaction). */
  removed: number
}

/**
 * Merges runs of poll segments (first = last) of generation `id`, each run at most `maxPayloadBytes`
 * of uncompressed payload and never across one of `snapshotSeqs`; then rewrites the index.
 * @example await compactSegments(store, generationId, { snapshotSeqs: [0, 7200], maxPayloadBytes: 64 << 20 })
 */
export async function compactSegments(store: ReplicaStore, id: string, options: { snapshotSeqs: number[]; maxPayloadBytes: number }): Promise<CompactionResult> {
  const result: CompactionResult = { merged: 0, removed: 0 }
  const { live, superseded } = resolveSegments(await listSegmentObjects(store, id))
  for (const ref of superseded) {
    await deleteSegment(store, id, ref)
    result.removed += 1
  }
  const boundaries = new Set(options.snapshotSeqs)
  const runs: SegmentRef[][] = []
  let run: SegmentRef[] = []
  for (const ref of live) {
    const single = ref.first === ref.last
    const previous = run.at(-1)
    if (!single || boundaries.has(ref.first) || (previous !== undefined && previous.last + 1 !== ref.first)) {
      if (run.length > 1) runs.push(run)
      run = []
    }
    if (single) run.push(ref)
  }
  if (run.length > 1) runs.push(run)

  for (const candidates of runs) {
    let chunk: { payloads: Buffer[]; commits: { seenAt: string; payloadEnd: number }[]; refs: SegmentRef[]; bytes: number; position: unknown } = { payloads: [], commits: [], refs: [], bytes: 0, position: null }
    const flush = async () => {
      if (chunk.refs.length > 1) {
        const merged = { first: chunk.refs[0]!.first, last: chunk.refs.at(-1)!.last }
        await writeSegment(store, id, { ...merged, commits: chunk.commits, position: chunk.position }, Buffer.concat(chunk.payloads, chunk.bytes))
        result.merged += 1
        for (const ref of chunk.refs) {
          await deleteSegment(store, id, ref)
          result.removed += 1
        }
      }
      chunk = { payloads: [], commits: [], refs: [], bytes: 0, position: null }
    }
    for (const ref of candidates) {
      const { header, payload } = await readSegment(store, id, ref)
      if (chunk.bytes > 0 && chunk.bytes + payload.length > options.maxPayloadBytes) await flush()
      chunk.commits.push(...header.commits.map((c) => ({ seenAt: c.seenAt, payloadEnd: chunk.bytes + c.payloadEnd })))
      chunk.payloads.push(payload)
      chunk.refs.push(ref)
      chunk.bytes += payload.length
      chunk.position = header.position
    }
    await flush()
  }
  await refreshSegmentIndex(store, id)
  return result
}

/** Rewrites a generation's index from its live segments (reading only those the index lacks). */
export async function refreshSegmentIndex(store: ReplicaStore, id: string): Promise<SegmentIndexEntry[]> {
  const { entries } = await readSegmentIndex(store, id)
  await writeSegmentIndex(store, id, entries)
  return entries
}
