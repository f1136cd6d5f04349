/**
 * SQLite's point-in-time recovery, the engine's face over the WAL replicator (wal-replicator.ts) and
 * the restore to a time (wal-restore.ts): `replicate` copies the WAL continuously to a replica,
 * `stateAt` rebuilds the file as of T in a private scratch folder (integrity-checked), which the
 * restore flow then puts in place. Archiving setup and base backups are PostgreSQL's; SQLite refuses
 * them and names `replicate`, which takes its own snapshots.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ToolkitError } from '../../errors.ts'
import { formatInstant, formatRange } from '../../replication/instant.ts'
import { formatBytes as formatSize } from '../../format.ts'
import { privateScratchDir } from '../../fs/leftovers.ts'
import type { PointInTimeRecovery } from '../engine.ts'
import { replicate, type ReplicationEvent } from './wal-replicator.ts'
import { restoreToTime } from './wal-restore.ts'

const notHere = (what: string) =>
  new ToolkitError(`${what} ne concerne pas SQLite : sa restauration à un instant repose sur la réplication continue du WAL.`, {
    hint: 'Lancez `advanced-backup replicate --database file:… --dir <réplica>` (elle prend ses propres snapshots).',
    exitCode: 2,
  })

/** One French line per replication event, for the terminal or a service's journal. */
export function describeReplicationEvent(event: ReplicationEvent): string {
  switch (event.type) {
    case 'generation-started': return `nouvelle génération ${event.generation} : ${event.reason}`
    case 'resumed': return `reprise de la génération ${event.generation} à la trame ${event.frame}`
    case 'segment-written': return `segment ${event.seq} : ${event.commits} transaction(s), ${formatSize(event.bytes)}`
    case 'snapshot-written': return `snapshot ${event.seq} : ${formatSize(event.bytes)} (état du ${formatInstant(event.at)})`
    case 'checkpoint': return `point de contrôle : ${event.checkpointedFrames}/${event.walFrames} trames${event.complete ? '' : ' (incomplet : un lecteur de l’application)'}`
    case 'compaction': return `compaction : ${event.merged} segment(s) fusionné(s), ${event.removed} retiré(s)`
    case 'retention': return `rétention : ${event.removedSnapshots} snapshot(s), ${event.removedSegments} segment(s) et ${event.removedGenerations.length} génération(s) retirés`
    case 'warning': return `⚠ ${event.message}`
  }
}

export const sqlitePitr: PointInTimeRecovery = {
  async replicate(location, options) {
    if (location.engine !== 'sqlite') throw new Error(`not a SQLite location: ${location.engine}`)
    const summary = await replicate({
      databasePath: location.path,
      replica: options.replica,
      ...(options.snapshotEveryMs !== undefined ? { snapshotEveryMs: options.snapshotEveryMs } : {}),
      ...(options.retentionMs !== undefined ? { retentionMs: options.retentionMs } : {}),
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
      onEvent: (event) => {
        if (event.type !== 'segment-written') options.onEvent?.(describeReplicationEvent(event))
      },
    })
    return {
      result: { database: location.path, replica: options.replica.label, ...summary },
      lines: [
        `Réplication arrêtée proprement : ${location.path} → ${options.replica.label}`,
        `   Génération ${summary.generation} : ${summary.commitsCopied} transaction(s) copiée(s) en ${summary.segmentsWritten} segment(s), ${summary.snapshotsWritten} snapshot(s)`,
        '   Tout ce qui était validé a été copié ; une relance reprend à cette position.',
      ],
    }
  },
  setup: async () => { throw notHere('`pitr setup`') },
  backup: async () => { throw notHere('`pitr backup`') },
  async stateAt(location, options) {
    if (location.engine !== 'sqlite') throw new Error(`not a SQLite location: ${location.engine}`)
    if (options.replica === undefined) {
      throw new ToolkitError('restore --at sur SQLite lit le réplica de la réplication continue : indiquez-le.', { hint: 'Ajoutez --replica <dossier|s3://…|azure://…> (le --dir donné à `replicate`).', exitCode: 2 })
    }
    // A kept rebuild is the operator's (never swept); any other is named after this process, so the next
    // restore removes what a killed one left.
    const scratch = options.keepScratch
      ? await mkdtemp(join(options.scratchDir ?? tmpdir(), 'ipm-pitr-kept-'))
      : await privateScratchDir('ipm-pitr-', options.scratchDir)
    try {
      const rebuilt = await restoreToTime({ replica: options.replica, at: options.at, outputPath: join(scratch, 'database.db') })
      const reachedAt = rebuilt.lastCommitSeenAt ?? rebuilt.stateAt
      const keptPath = options.keepScratch ? rebuilt.outputPath : null
      return {
        kind: 'database',
        url: `file:${rebuilt.outputPath}`,
        reachedAt,
        kept: options.keepScratch,
        close: async () => { if (!options.keepScratch) await rm(scratch, { recursive: true, force: true }) },
        report: {
          result: { engine: 'sqlite', at: options.at.toISOString(), reachedAt: reachedAt.toISOString(), lastCommitSeenAt: rebuilt.lastCommitSeenAt?.toISOString() ?? null, generation: rebuilt.generation, transactionsApplied: rebuilt.transactionsApplied, range: { from: rebuilt.range.from.toISOString(), to: rebuilt.range.to.toISOString() }, integrity: 'ok', ...(keptPath !== null ? { keptPath } : {}) },
          lines: [
            `Instant demandé : ${formatInstant(options.at)} ; atteint : ${formatInstant(reachedAt)} (${rebuilt.lastCommitSeenAt === null ? 'état du snapshot' : 'dernière transaction vue par le réplicateur à cet instant'}).`,
            `   Génération ${rebuilt.generation}, ${rebuilt.transactionsApplied} transaction(s) rejouée(s) sur le snapshot ; intégrité SQLite : ok. Plage restaurable : ${formatRange(rebuilt.range.from, rebuilt.range.to)}.`,
            ...(keptPath !== null ? [`   Base reconstruite gardée : ${keptPath}`] : []),
          ],
        },
      }
    } catch (error) {
      await rm(scratch, { recursive: true, force: true })
      throw error
    }
  },
}
