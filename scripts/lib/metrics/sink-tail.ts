/**
 * Follows the collector's sink (format in collector.ts) for the live dashboard: each `read` hands
 * over the executions appended since the previous one, each exactly once, without re-reading the
 * file. The position is a byte offset in the file identified by its inode; when the app rotates the
 * sink (`<sink>` → `<sink>.1`), the rest of the old file is read from `.1` before the new one.
 *
 * Bounded and non-blocking: reads go by chunks of `chunkBytes` (the event loop runs between them)
 * and a read stops after `maxBytesPerRead` (the rest waits for the next read, reported as
 * `backlogBytes`), so memory holds one window's aggregates, never the file. The first read starts
 * at `since` (the files are scanned, only later executions are kept).
 */
import { open, stat } from 'node:fs/promises'
import { parseSinkLine } from './collector.ts'

export interface SinkExecution {
  /** Epoch milliseconds. */
  at: number
  id: string
  kind: 'op' | 'sql'
  /** The definition's fingerprint (an operation shape or SQL, every value as `?`). */
  fingerprint: string
  tenant: string | null
  ms: number
  rows: number
  failed: boolean
}

export interface SinkRead {
  /** False while the sink does not exist yet (the app has not written). */
  found: boolean
  bytes: number
  /** Bytes already in the sink left for the next read (`maxBytesPerRead` reached). */
  backlogBytes: number
  /** Events the app's collector dropped (its buffer was full). */
  droppedEvents: number
  /** Executions whose fingerprint definition was never seen. */
  undefinedEvents: number
  /** The sink rotated more than once between two reads: the executions of a whole file were missed. */
  missedFiles: number
}

export interface SinkTail {
  /** Calls `visit` for every execution appended since the previous read. */
  read(visit: (execution: SinkExecution) => void): Promise<SinkRead>
}

export interface SinkTailOptions {
  /** The first read keeps executions at or after this instant (epoch ms); default: all. */
  since?: number
  /** Default 8 MiB. */
  maxBytesPerRead?: number
  /** Default 256 KiB (about 4 000 lines parsed between two turns of the event loop). */
  chunkBytes?: number
}

const MAX_DEFINITIONS = 50_000

/**
 * @example const tail = tailCollectorSink('prisma/dev.db.metrics.ndjson', { since: Date.now() - 5_000 }); await tail.read((e) => count(e))
 */
export function tailCollectorSink(path: string, options: SinkTailOptions = {}): SinkTail {
  const maxBytesPerRead = options.maxBytesPerRead ?? 8 << 20
  const chunkBytes = options.chunkBytes ?? 256 << 10
  const definitions = new Map<string, { kind: 'op' | 'sql'; fingerprint: string }>()
  // The file being followed and where its unread bytes start; undefined before the first read found it.
  let current: { ino: string; offset: number } | undefined
  let partial: Buffer = Buffer.alloc(0)
  let since = options.since

  const parseLine = (raw: string, visit: (execution: SinkExecution) => void, result: SinkRead) => {
    const line = parseSinkLine(raw)
    if (line?.type === 'execution') {
      if (since !== undefined && line.at < since) return
      const definition = definitions.get(line.id)
      if (definition === undefined) {
        result.undefinedEvents++
        return
      }
      visit({ at: line.at, id: line.id, kind: definition.kind, fingerprint: definition.fingerprint, tenant: line.tenant, ms: line.ms, rows: line.rows, failed: line.failed })
    } else if (line?.type === 'definition') {
      if (definitions.size >= MAX_DEFINITIONS && !definitions.has(line.id)) definitions.clear()
      definitions.set(line.id, { kind: line.kind, fingerprint: line.fingerprint })
    } else if (line?.type === 'dropped' && (since === undefined || line.at >= since)) result.droppedEvents += line.count
  }

  /** Reads `file` from `offset` up to `budget` bytes (whole lines; a cut last line waits in `partial`); returns the new offset. */
  const readFrom = async (file: string, offset: number, budget: number, visit: (execution: SinkExecution) => void, result: SinkRead): Promise<{ offset: number; size: number }> => {
    const handle = await open(file, 'r')
    try {
      const { size } = await handle.stat()
      const buffer = Buffer.alloc(chunkBytes)
      while (offset < size && result.bytes < budget) {
        const { bytesRead } = await handle.read(buffer, 0, Math.min(chunkBytes, size - offset, budget - result.bytes), offset)
        if (bytesRead === 0) break
        offset += bytesRead
        result.bytes += bytesRead
        const data = partial.length === 0 ? buffer.subarray(0, bytesRead) : Buffer.concat([partial, buffer.subarray(0, bytesRead)])
        const end = data.lastIndexOf(0x0a)
        // Copied: `buffer` is reused by the next chunk.
        partial = Buffer.from(end === -1 ? data : data.subarray(end + 1))
        if (end !== -1) for (const line of data.subarray(0, end).toString('utf8').split('\n')) parseLine(line, visit, result)
        // Lets the server answer between chunks.
        await new Promise<void>((resolve) => setImmediate(resolve))
      }
      return { offset, size }
    } finally {
      await handle.close()
    }
  }

  // A file is its inode *and* its birth time: ext4 hands a freed inode number to the next new file at once.
  const inode = (file: string) => stat(file).then((s) => `${s.dev}:${s.ino}:${s.birthtimeMs}`, () => undefined)

  return {
    async read(visit) {
      const result: SinkRead = { found: true, bytes: 0, backlogBytes: 0, droppedEvents: 0, undefinedEvents: 0, missedFiles: 0 }
      const ino = await inode(path)
      if (current === undefined) {
        // First read: the rotated file, then the sink, from their start (only executions since `since` kept).
        const rotated = `${path}.1`
        const rotatedIno = await inode(rotated)
        if (rotatedIno !== undefined) {
          const { offset } = await readFrom(rotated, 0, Number.POSITIVE_INFINITY, visit, result)
          partial = Buffer.alloc(0)
          if (ino === undefined) {
            // Only the rotated file so far: followed from its end, the new sink will be read from its start.
            current = { ino: rotatedIno, offset }
            since = undefined
            return result
          }
        }
        if (ino === undefined) {
          result.found = false
          return result
        }
        const { offset } = await readFrom(path, 0, Number.POSITIVE_INFINITY, visit, result)
        current = { ino, offset }
        since = undefined
        return result
      }
      if (ino !== current.ino) {
        // Rotated: the followed file is now `.1` (finish it), or it is gone too (a whole file missed).
        const rotated = `${path}.1`
        if ((await inode(rotated)) === current.ino) {
          const { offset, size } = await readFrom(rotated, current.offset, maxBytesPerRead, visit, result)
          if (offset < size) {
            current.offset = offset
            result.backlogBytes = size - offset
            return result
          }
        } else result.missedFiles++
        partial = Buffer.alloc(0)
        if (ino === undefined) {
          current = undefined
          result.found = result.bytes > 0
          return result
        }
        current = { ino, offset: 0 }
      }
      const { offset, size } = await readFrom(path, current.offset, maxBytesPerRead, visit, result)
      // Truncated under us (another tool): start over from its beginning next time.
      if (size < current.offset) {
        current.offset = 0
        partial = Buffer.alloc(0)
      } else current.offset = offset
      result.backlogBytes = Math.max(0, size - current.offset)
      return result
    },
  }
}
