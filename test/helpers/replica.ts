/**
 * Waiting on a replica of the continuous replication (SQLite PITR). Segments are merged as they age,
 * so counting them proves nothing; what a test needs is "the replicator has seen a commit made at or
 * after this instant", which the replica's reachable range says.
 */
import { reachableRange } from '../../scripts/lib/replication/plan.ts'
import type { ReplicaStore } from '../../scripts/lib/replication/store.ts'

/** Resolves once the replica holds a commit seen at or after `since` (epoch ms): take `since` before the write. */
export async function replicaHasSeen(store: ReplicaStore, since: number): Promise<void> {
  for (;;) {
    // No generation yet (the first snapshot is being written) reads as "not yet".
    const range = await reachableRange(store).catch(() => undefined)
    if (range !== undefined && range.to.getTime() >= since) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
