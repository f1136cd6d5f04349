/**
 * The app-side collector: one line in the app's code,
 *
 *   const prisma = instrument(new PrismaClient({ adapter }), { sink: 'prisma/dev.db.metrics.ndjson' })
 *
 * records every Prisma operation (a fingerprint of its shape, wall time, rows, tenant) and, when
 * the client was built with `log: [{ emit: 'event', level: 'query' }]`, every SQL statement it
 * sent (fingerprint, database time), into an append-only file beside the database that
 * `database-performance-dashboard.ts --source app` reads (see `readCollectorSink`).
 *
 * Invariants: the hot path only measures and pushes a small array into a buffer; a timer
 * (unref'd: it never keeps the app alive) appends the buffer to the file; nothing but fingerprints
 * is written — the shape of the arguments with every value as `?`, SQL with every literal as `?` —
 * and tenant ids. The file is bounded: past `maxBytes` it becomes `<sink>.1` (replacing the
 * previous one) and a new file starts, so at most 2 × maxBytes are kept. A full buffer drops
 * events and counts them, never blocks the app.
 *
 * File format (NDJSON, version 1): `{"v":1,"d":"<id>","k":"op"|"sql","f":"<fingerprint>"}` defines
 * a fingerprint once per file; `[epochMs, "<id>", tenant|null, ms, rows, failed(0|1)]` is one
 * execution; `{"dropped":n,"t":epochMs}` counts dropped events.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { appendFile, readFile, rename, stat } from 'node:fs/promises'
import { ToolkitError } from '../errors.ts'
import { fingerprintId, fingerprintSql } from '../db/fingerprint.ts'
import { tenantFromArgs } from './tenant.ts'

export interface CollectorOptions {
  /** The sink file (NDJSON, append-only), usually beside the database: `<db>.metrics.ndjson`. */
  sink: string
  /** Flush the buffer every this many milliseconds. Default 1 000. */
  flushIntervalMs?: number
  /** Keep at most this many unwritten events (the rest are dropped and counted). Default 50 000. */
  maxBuffered?: number
  /** Rotate the sink past this size. Default 16 MiB. */
  maxBytes?: number
  /** Epoch milliseconds; tests pass a fixed clock. */
  now?: () => number
}

/** What `instrument` adds to the client: write out now, or stop collecting. */
export interface CollectorControl {
  /** Appends what is buffered to the sink. */
  flush(): Promise<void>
  /** Flushes and stops the timer; the client keeps working, uncollected. */
  close(): Promise<void>
}

type Event = [number, string, string | null, number, number, 0 | 1]

interface PrismaLike {
  $extends(extension: unknown): unknown
  $on?(event: 'query', listener: (event: { query: string; duration: number; timestamp: Date }) => void): void
}

const collectors = new WeakMap<object, CollectorControl>()

/**
 * Instruments the app's Prisma Client; returns the client to use instead (same API).
 * @example
 * import { instrument } from './scripts/lib/metrics/collector.ts'
 * export const prisma = instrument(new PrismaClient({ adapter }), { sink: 'prisma/dev.db.metrics.ndjson' })
 */
export function instrument<Client extends object>(client: Client, options: CollectorOptions): Client {
  const prisma = client as unknown as PrismaLike
  if (typeof prisma.$extends !== 'function') throw new ToolkitError('instrument(): ce client n\'est pas un client Prisma (pas de $extends)')
  const sink = new SinkWriter(options)
  const scope = new AsyncLocalStorage<{ tenant: string | null }>()
  const sqlIds = new Map<string, string>()

  if (typeof prisma.$on === 'function') {
    try {
      prisma.$on('query', (event) => {
        let id = sqlIds.get(event.query)
        if (id === undefined) {
          if (sqlIds.size > 2_000) sqlIds.clear()
          id = sink.define('sql', fingerprintSql(event.query))
          sqlIds.set(event.query, id)
        }
        sink.push([event.timestamp.getTime(), id, scope.getStore()?.tenant ?? null, event.duration, 0, 0])
      })
    } catch {
      // A client built without query events: operations only.
    }
  }

  const extended = prisma.$extends({
    name: 'ipm-collector',
    query: {
      async $allOperations({ model, operation, args, query }: { model?: string; operation: string; args: unknown; query: (args: unknown) => Promise<unknown> }) {
        const started = performance.now()
        const tenant = tenantFromArgs(model, args) ?? null
        let failed: 0 | 1 = 0
        let rows = 0
        try {
          // Awaited inside run(): a Prisma query is lazy and starts where it is awaited, so its SQL events see this scope.
          const result = await scope.run({ tenant }, async () => await query(args))
          rows = Array.isArray(result) ? result.length : result === null || result === undefined ? 0 : 1
          return result
        } catch (error) {
          failed = 1
          throw error
        } finally {
          const ms = performance.now() - started
          sink.push([sink.now(), sink.define('op', `${model ?? 'raw'}.${operation} ${argsShape(args)}`), tenant, ms, rows, failed])
        }
      },
    },
  }) as Client
  collectors.set(extended, sink)
  return extended
}

/** The collector of an instrumented client (to flush or close it). */
export function collectorOf(client: object): CollectorControl {
  const control = collectors.get(client)
  if (control === undefined) throw new ToolkitError('ce client n\'a pas été instrumenté par instrument()')
  return control
}

/** Keys whose values are structure (field names, sort directions, flags), kept as they are. */
const STRUCTURE = new Set(['select', 'include', 'orderBy', 'distinct', 'by', 'omit', '_count', '_sum', '_avg', '_min', '_max', 'mode'])

/**
 * The shape of a Prisma operation's arguments, every value as `?` (lists of values as `[?]`).
 * @example argsShape({ where: { tenantId: 'x', statut: { in: ['A', 'B'] } }, take: 20 }) // '{where:{tenantId:?,statut:{in:[?]}},take:?}'
 */
export function argsShape(args: unknown, keep = false): string {
  if (Array.isArray(args)) {
    if (args.length === 0) return '[]'
    if (!keep && args.every((v) => v === null || typeof v !== 'object' || v instanceof Date)) return '[?]'
    return `[${[...new Set(args.map((v) => argsShape(v, keep)))].join(',')}]`
  }
  if (args === null || args === undefined) return keep ? String(args) : '?'
  if (typeof args === 'object' && !(args instanceof Date) && !(args instanceof Uint8Array)) {
    return `{${Object.entries(args as Record<string, unknown>).map(([k, v]) => `${k}:${argsShape(v, keep || STRUCTURE.has(k))}`).join(',')}}`
  }
  return keep && (typeof args === 'string' || typeof args === 'boolean') ? String(args) : '?'
}

class SinkWriter implements CollectorControl {
  readonly now: () => number
  private buffer: string[] = []
  private definitions = new Map<string, string>()
  private written = new Set<string>()
  private dropped = 0
  private pending: Promise<void> = Promise.resolve()
  private timer: NodeJS.Timeout | undefined
  private readonly maxBuffered: number
  private readonly maxBytes: number

  constructor(private readonly options: CollectorOptions) {
    this.now = options.now ?? Date.now
    this.maxBuffered = options.maxBuffered ?? 50_000
    this.maxBytes = options.maxBytes ?? 16 << 20
    this.timer = setInterval(() => void this.flush().catch(() => {}), options.flushIntervalMs ?? 1_000)
    this.timer.unref()
  }

  /** The id of a fingerprint; its definition is written before the first event that uses it. */
  define(kind: 'op' | 'sql', fingerprint: string): string {
    const key = `${kind}\u0000${fingerprint}`
    let id = this.definitions.get(key)
    if (id === undefined) {
      id = fingerprintId(fingerprint)
      this.definitions.set(key, id)
      if (this.definitions.size > 10_000) this.definitions.clear()
    }
    if (!this.written.has(id)) {
      this.written.add(id)
      this.buffer.push(JSON.stringify({ v: 1, d: id, k: kind, f: fingerprint }))
    }
    return id
  }

  push(event: Event): void {
    if (this.buffer.length >= this.maxBuffered) {
      this.dropped++
      return
    }
    this.buffer.push(JSON.stringify(event))
  }

  flush(): Promise<void> {
    this.pending = this.pending.then(() => this.write())
    return this.pending
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    await this.flush()
  }

  private async write(): Promise<void> {
    if (this.dropped > 0) {
      this.buffer.push(JSON.stringify({ dropped: this.dropped, t: this.now() }))
      this.dropped = 0
    }
    if (this.buffer.length === 0) return
    let lines = this.buffer
    this.buffer = []
    const size = await stat(this.options.sink).then((s) => s.size, () => 0)
    const text = `${lines.join('\n')}\n`
    if (size > 0 && size + Buffer.byteLength(text) > this.maxBytes) {
      await rename(this.options.sink, `${this.options.sink}.1`)
      // A new file: its fingerprints are defined again before use.
      const redefined = [...this.definitions].filter(([, id]) => lines.some((line) => line.includes(`"${id}"`)))
      this.written = new Set(redefined.map(([, id]) => id))
      lines = [
        ...redefined.map(([key, id]) => {
          const [kind, fingerprint] = key.split('\u0000') as ['op' | 'sql', string]
          return JSON.stringify({ v: 1, d: id, k: kind, f: fingerprint })
        }),
        ...lines.filter((line) => !line.startsWith('{"v":1')),
      ]
      await appendFile(this.options.sink, `${lines.join('\n')}\n`)
      return
    }
    await appendFile(this.options.sink, text)
  }
}

/** Per-fingerprint statistics read from a sink: the same numbers the dashboard shows for its own operations. */
export interface SinkFingerprint {
  id: string
  kind: 'op' | 'sql'
  fingerprint: string
  count: number
  failed: number
  rows: number
  durations: number[]
  /** Executions per tenant (unattributed under `null`). */
  tenants: Map<string | null, { count: number; totalMs: number }>
}

export interface SinkWindow {
  fingerprints: SinkFingerprint[]
  droppedEvents: number
  /** Executions whose fingerprint definition was lost (file rotated between definition and use). */
  undefinedEvents: number
}

/** One line of the sink, decoded: an execution, a fingerprint's definition, or events dropped under load. */
export type SinkLine =
  | { type: 'execution'; at: number; id: string; tenant: string | null; ms: number; rows: number; failed: boolean }
  | { type: 'definition'; id: string; kind: 'op' | 'sql'; fingerprint: string }
  | { type: 'dropped'; count: number; at: number }

/**
 * The one reader of the sink's line format (the writer is above); undefined for an empty line, a line
 * cut by a crash mid-append, or anything else this version does not know.
 * @example parseSinkLine('[1767000000000,"f1","tenant-demo",3.2,1,0]') // { type: 'execution', … }
 */
export function parseSinkLine(line: string): SinkLine | undefined {
  if (line === '') return undefined
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return undefined
  }
  if (Array.isArray(value)) {
    const [at, id, tenant, ms, rows, failed] = value as Event
    return { type: 'execution', at, id, tenant, ms, rows, failed: failed === 1 }
  }
  if (typeof value !== 'object' || value === null) return undefined
  const record = value as { d?: unknown; k?: unknown; f?: unknown; dropped?: unknown; t?: unknown }
  if (typeof record.d === 'string') return { type: 'definition', id: record.d, kind: record.k === 'sql' ? 'sql' : 'op', fingerprint: typeof record.f === 'string' ? record.f : '' }
  if (typeof record.dropped === 'number') return { type: 'dropped', count: record.dropped, at: typeof record.t === 'number' ? record.t : 0 }
  return undefined
}

/**
 * Reads the sink (the rotated file first), keeping executions at or after `since` and before `until`.
 * @example const window = await readCollectorSink('prisma/dev.db.metrics.ndjson', { since: Date.now() - 5 * 60_000 })
 */
export async function readCollectorSink(path: string, options: { since?: number; until?: number } = {}): Promise<SinkWindow> {
  const byId = new Map<string, SinkFingerprint>()
  let droppedEvents = 0
  let undefinedEvents = 0
  let found = false
  for (const file of [`${path}.1`, path]) {
    let text: string
    try {
      text = await readFile(file, 'utf8')
      found = true
    } catch {
      continue
    }
    for (const raw of text.split('\n')) {
      const line = parseSinkLine(raw)
      if (line?.type === 'execution') {
        if ((options.since !== undefined && line.at < options.since) || (options.until !== undefined && line.at >= options.until)) continue
        const entry = byId.get(line.id)
        if (entry === undefined) {
          undefinedEvents++
          continue
        }
        entry.count++
        entry.durations.push(line.ms)
        entry.rows += line.rows
        entry.failed += line.failed ? 1 : 0
        const perTenant = entry.tenants.get(line.tenant) ?? { count: 0, totalMs: 0 }
        perTenant.count++
        perTenant.totalMs += line.ms
        entry.tenants.set(line.tenant, perTenant)
      } else if (line?.type === 'definition') {
        if (!byId.has(line.id)) byId.set(line.id, { id: line.id, kind: line.kind, fingerprint: line.fingerprint, count: 0, failed: 0, rows: 0, durations: [], tenants: new Map() })
      } else if (line?.type === 'dropped' && (options.since === undefined || line.at >= options.since)) droppedEvents += line.count
    }
  }
  if (!found) throw new ToolkitError(`aucun fichier de mesures ${path}`, { hint: "installez le collecteur dans l'app: prisma = instrument(prisma, { sink }) (voir le README)" })
  return { fingerprints: [...byId.values()].filter((f) => f.count > 0), droppedEvents, undefinedEvents }
}
