/**
 * The live dashboard server (hono on Node's http):
 *   GET /             the page (French), rendered in the browser from /api/snapshot and /events
 *   GET /api/snapshot the latest snapshot, JSON (sanitised: no literal value): the six tests'
 *                     analysis (`metrics`), or the app's real traffic of the last window (`traffic`)
 *   GET /api/history  per-fingerprint p50/p95/p99 and calls of the recent snapshots, for the charts
 *   GET /events       Server-Sent Events: a `snapshot` event at each collection
 *   GET /metrics      Prometheus text (prom-client, one registry per server)
 *   GET /assets/…     uPlot from node_modules/uplot/dist and the page's script (no CDN)
 * Binds 127.0.0.1 by default. Any other address needs a token; with a token every request must carry
 * it (`Authorization: Bearer`, `X-Dashboard-Token` or `?token=`), compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { streamSSE } from 'hono/streaming'
import { ToolkitError, describeError } from '../errors.ts'
import { renderPage } from './page.ts'
import { createPrometheusExporter, type PrometheusExporter } from './prometheus.ts'
import { isTrafficSnapshot, sanitizeSnapshot, type ServedSnapshot } from './snapshot.ts'
import type { TrafficObservations } from '../metrics/live-traffic.ts'

export const DEFAULT_DASHBOARD_PORT = 4319
export const DEFAULT_INTERVAL_MS = 5_000
/** Points kept for the charts (one per collection: 10 minutes at the default interval). */
export const HISTORY_LENGTH = 120

export interface DashboardServerOptions {
  /** Default 127.0.0.1. Anything but a loopback address requires `token`. */
  host?: string
  /** Default 4319; 0 picks a free port. */
  port?: number
  /** `--token` / `DASHBOARD_TOKEN`, resolved by the caller. */
  token?: string
  /**
   * Produces a fresh snapshot (the dashboard's analysis, or the app's traffic of the window since the
   * last call, and the backup status). `observations` (the window's times, for the histogram) go to
   * /metrics only and are never served.
   */
  collect: () => Promise<ServedSnapshot & { observations?: TrafficObservations }>
  /** Between collections; default 5 s. */
  intervalMs?: number
  now?: () => Date
  /** Fingerprint label cap of /metrics (see prometheus.ts). */
  maxFingerprints?: number
  /** A collection failed (the last good snapshot stays served). */
  onCollectError?: (error: unknown) => void
}

export interface HistoryPoint {
  /** Unix seconds. */
  t: number
  /** Per fingerprint: calls and times of the snapshot's window; percentiles null when the source has none (pg_stat_statements). */
  fingerprints: Record<string, { count: number; p50Ms: number | null; p95Ms: number | null; p99Ms: number | null; meanMs: number }>
}

export interface DashboardServer {
  /** `http://host:port/`, without the token. */
  url: string
  host: string
  port: number
  exporter: PrometheusExporter
  /** Collects now and pushes the snapshot to every open page (what the timer does). */
  refresh(): Promise<void>
  latest(): ServedSnapshot
  /** Stops the timer, ends the event streams, closes the server. */
  close(): Promise<void>
}

const LOOPBACK = /^(?:127(?:\.\d{1,3}){3}|::1|localhost|\[::1\])$/i

/**
 * Starts the server after a first collection (a failing `collect` fails the start).
 * @example const server = await startDashboardServer({ collect: async () => snapshot }); console.log(server.url)
 */
export async function startDashboardServer(options: DashboardServerOptions): Promise<DashboardServer> {
  const host = options.host ?? '127.0.0.1'
  const token = options.token === undefined || options.token === '' ? undefined : options.token
  if (!LOOPBACK.test(host) && token === undefined) {
    throw new ToolkitError(`refus d'écouter sur ${host} sans jeton: tout le réseau verrait les métriques de la base`, {
      hint: 'Ajoutez --token <jeton> (ou DASHBOARD_TOKEN), ou écoutez sur 127.0.0.1.',
      exitCode: 2,
    })
  }
  const now = options.now ?? (() => new Date())
  const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS
  const exporter = createPrometheusExporter({ maxFingerprints: options.maxFingerprints })
  const listeners = new Set<(snapshot: ServedSnapshot) => void>()
  const history: HistoryPoint[] = []
  let latest: ServedSnapshot

  const collectOnce = async (): Promise<void> => {
    const { observations, ...collected } = await options.collect()
    const snapshot = sanitizeSnapshot({ ...collected, collectedAt: collected.collectedAt ?? now().toISOString() } as ServedSnapshot)
    latest = snapshot
    exporter.update(snapshot, observations)
    history.push({ t: Date.parse(snapshot.collectedAt) / 1000, fingerprints: historyOf(snapshot) })
    if (history.length > HISTORY_LENGTH) history.shift()
    for (const listener of listeners) listener(snapshot)
  }
  try {
    await collectOnce()
  } catch (error) {
    throw new ToolkitError(`première collecte des métriques impossible: ${describeError(error)}`, { cause: error })
  }

  const assets = assetFiles()
  const app = new Hono()
  if (token !== undefined) {
    const expected = digest(token)
    app.use('*', async (c, next) => {
      const bearer = /^Bearer\s+(.+)$/i.exec(c.req.header('authorization') ?? '')?.[1]
      const given = bearer ?? c.req.header('x-dashboard-token') ?? c.req.query('token') ?? ''
      if (!timingSafeEqual(digest(given), expected)) return c.text('Jeton manquant ou invalide.\n', 401, { 'www-authenticate': 'Bearer' })
      await next()
    })
  }
  app.use('*', async (c, next) => {
    await next()
    c.header('x-content-type-options', 'nosniff')
    c.header('cache-control', 'no-store')
  })
  app.get('/', (c) => c.html(renderPage({ token: c.req.query('token') === undefined ? undefined : token })))
  app.get('/api/snapshot', (c) => c.json(latest))
  app.get('/api/history', (c) => c.json(history))
  app.get('/metrics', async (c) => c.body(await exporter.render(), 200, { 'content-type': exporter.contentType }))
  app.get('/assets/:name', (c) => {
    const asset = assets.get(c.req.param('name'))
    return asset === undefined ? c.notFound() : c.body(asset.body, 200, { 'content-type': asset.type })
  })
  app.get('/events', (c) =>
    streamSSE(c, async (stream) => {
      let queue = Promise.resolve()
      const push = (snapshot: ServedSnapshot) => {
        queue = queue.then(() => stream.writeSSE({ event: 'snapshot', data: JSON.stringify(snapshot) })).catch(() => undefined)
      }
      listeners.add(push)
      stream.onAbort(() => void listeners.delete(push))
      push(latest)
      // Keeps the response open; a comment line every 15 s keeps proxies from closing it.
      while (!stream.aborted && !stream.closed) {
        await stream.sleep(15_000)
        if (!stream.aborted) await stream.write(': keep-alive\n\n')
      }
    }),
  )

  const server = await new Promise<Server>((resolve, reject) => {
    const created = serve({ fetch: app.fetch, hostname: host, port: options.port ?? DEFAULT_DASHBOARD_PORT }, () => resolve(created as Server)) as Server
    created.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new ToolkitError(`écoute sur ${host}:${options.port ?? DEFAULT_DASHBOARD_PORT} impossible: ${error.code === 'EADDRINUSE' ? 'port déjà utilisé' : describeError(error)}`, {
          hint: 'Choisissez un autre port avec --port.',
          cause: error,
        }),
      ),
    )
  })
  const port = (server.address() as AddressInfo).port

  let refreshing: Promise<void> | undefined
  const refresh = () =>
    (refreshing ??= collectOnce()
      .catch((error) => options.onCollectError?.(error))
      .finally(() => (refreshing = undefined)))
  const timer = setInterval(() => void refresh(), intervalMs)

  return {
    url: `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}/`,
    host,
    port,
    exporter,
    refresh,
    latest: () => latest,
    close: async () => {
      clearInterval(timer)
      listeners.clear()
      await refreshing
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
  }
}

/** The chart point of a snapshot: per fingerprint, what its window measured. */
function historyOf(snapshot: ServedSnapshot): HistoryPoint['fingerprints'] {
  const rows = isTrafficSnapshot(snapshot)
    ? snapshot.traffic.statements.map((s) => [s.id, { count: s.calls, p50Ms: s.p50Ms, p95Ms: s.p95Ms, p99Ms: s.p99Ms, meanMs: s.meanMs }] as const)
    : snapshot.metrics.fingerprints.map((f) => [f.id, { count: f.count, p50Ms: f.p50Ms, p95Ms: f.p95Ms, p99Ms: f.p99Ms, meanMs: f.meanMs }] as const)
  return Object.fromEntries(rows)
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

// uPlot comes from the installed package (works offline); the page script sits beside this file.
function assetFiles(): Map<string, { body: string; type: string }> {
  const uplotDist = dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'))
  const here = dirname(fileURLToPath(import.meta.url))
  return new Map([
    ['uPlot.iife.min.js', { body: readFileSync(join(uplotDist, 'uPlot.iife.min.js'), 'utf8'), type: 'text/javascript; charset=utf-8' }],
    ['uPlot.min.css', { body: readFileSync(join(uplotDist, 'uPlot.min.css'), 'utf8'), type: 'text/css; charset=utf-8' }],
    ['dashboard.js', { body: readFileSync(join(here, 'dashboard-page.js'), 'utf8'), type: 'text/javascript; charset=utf-8' }],
  ])
}
