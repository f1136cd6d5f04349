/**
 * OpenTelemetry tracing of the toolkit's own runs: spans of its steps (`withSpan`) and of every
 * Prisma query (`@prisma/instrumentation`, which works with driver adapters and `engineType = "client"`),
 * sent over OTLP/HTTP (JSON) to `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`.
 * The standard variables are passed in by the caller (this module never reads the variables itself).
 * SQL leaves the process fingerprinted: every SQL-bearing attribute has its literals replaced by `?`.
 */
import type { Attributes } from '@opentelemetry/api'
import type { ToolkitEnvironment } from '../environment.ts'
import { ToolkitError } from '../errors.ts'

// The API is loaded by startTracing when tracing is on. Off, nothing of OpenTelemetry is loaded:
// its dozens of CommonJS files cost every start ~0.05 s (bench/startup.ts), for no-op spans.
let api: typeof import('@opentelemetry/api') | undefined

/** The OpenTelemetry API once tracing is on (step-spans.ts draws its spans with it); undefined when off. */
export function tracingApi(): typeof import('@opentelemetry/api') | undefined {
  return api
}

export const TRACER_NAME = 'ia-poste-manager'
export const DEFAULT_SERVICE_NAME = 'ia-poste-manager-db-toolkit'

export interface TracingOptions {
  /** `--otel` or OTEL_EXPORTER_OTLP_ENDPOINT set; false returns a no-op handle. */
  enabled: boolean
  /** OTEL_EXPORTER_OTLP_ENDPOINT, e.g. `http://127.0.0.1:4318` (`/v1/traces` is appended). */
  endpoint?: string
  /** OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: the full URL of the traces, used as is; wins over `endpoint`. */
  tracesEndpoint?: string
  /** OTEL_EXPORTER_OTLP_HEADERS, `key=value,key2=value2` (values URL-encoded), or already parsed. */
  headers?: string | Record<string, string>
  /** OTEL_EXPORTER_OTLP_TRACES_HEADERS: the same form; a header named in both takes this value. */
  tracesHeaders?: string | Record<string, string>
  /** OTEL_SERVICE_NAME. */
  serviceName?: string
  /** Exporter timeout per request; default 10 s. */
  timeoutMs?: number
}

export interface Tracing {
  enabled: boolean
  /** Where spans go (no headers: they may carry an API key). */
  endpoint: string | null
  /** Sends every pending span, then stops tracing. */
  shutdown(): Promise<void>
}

/**
 * The options of `startTracing` from `--otel` and the standard variables: on with `--otel`, or when
 * an endpoint variable is set and OTEL_SDK_DISABLED is not `true`.
 * @example const tracing = await startTracing(tracingOptions(options.otel, environment.otel))
 */
export function tracingOptions(flag: boolean | undefined, otel: ToolkitEnvironment['otel']): TracingOptions {
  const fromVariables = (otel.endpoint !== undefined || otel.tracesEndpoint !== undefined) && otel.sdkDisabled !== true
  return {
    enabled: flag === true || fromVariables,
    ...(otel.endpoint !== undefined ? { endpoint: otel.endpoint } : {}),
    ...(otel.tracesEndpoint !== undefined ? { tracesEndpoint: otel.tracesEndpoint } : {}),
    ...(otel.headers !== undefined ? { headers: otel.headers } : {}),
    ...(otel.tracesHeaders !== undefined ? { tracesHeaders: otel.tracesHeaders } : {}),
    ...(otel.serviceName !== undefined ? { serviceName: otel.serviceName } : {}),
  }
}

/**
 * Tracing on (`enabled`) loads the OpenTelemetry SDK and the Prisma instrumentation; off, nothing
 * heavy is loaded (every script starts with this call: the SDK costs a quarter of a second to load).
 * @example
 * const tracing = await startTracing({ enabled: true, endpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT, headers: env.OTEL_EXPORTER_OTLP_HEADERS, serviceName: env.OTEL_SERVICE_NAME })
 * try { await withSpan('backup.create', { 'ipm.engine': 'sqlite' }, () => createBackup(options)) } finally { await tracing.shutdown() }
 */
export async function startTracing(options: TracingOptions): Promise<Tracing> {
  if (!options.enabled) return { enabled: false, endpoint: null, shutdown: async () => {} }
  const variable = options.tracesEndpoint !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT'
  let url: URL
  try {
    url = new URL(options.tracesEndpoint ?? `${(options.endpoint ?? 'http://localhost:4318').replace(/\/+$/, '')}/v1/traces`)
  } catch {
    throw new ToolkitError(`${variable} n'est pas une URL lisible`, { hint: `Exemple: ${variable}=http://127.0.0.1:4318${variable.includes('TRACES') ? '/v1/traces' : ''}` })
  }
  const headers = { ...parseHeaders(options.headers), ...parseHeaders(options.tracesHeaders, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS') }
  api = await import('@opentelemetry/api')
  const { startExporting } = await import('./exporter.ts')
  return startExporting(url, { headers, serviceName: options.serviceName || DEFAULT_SERVICE_NAME, timeoutMs: options.timeoutMs ?? 10_000 })
}

/**
 * Runs `fn` inside a span (a child of the current one); an error marks the span and is rethrown.
 * Without `startTracing` it only runs `fn`.
 * @example const result = await withSpan('restore.replace', { 'ipm.backup.id': id }, () => replaceDatabase(paths))
 */
export async function withSpan<T>(name: string, attributes: Attributes, fn: () => Promise<T> | T): Promise<T> {
  if (api === undefined) return fn()
  const { SpanStatusCode, trace } = api
  return trace.getTracer(TRACER_NAME).startActiveSpan(name, { attributes, startTime: preciseNow() }, async (span) => {
    try {
      return await fn()
    } catch (error) {
      span.recordException(error instanceof Error ? { name: error.name, message: error.message } : String(error))
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
      throw error
    } finally {
      span.end(preciseNow())
    }
  })
}

/**
 * Epoch milliseconds with the sub-millisecond part. The SDK's default start time is `Date.now()`
 * (whole milliseconds) while its end times are sub-millisecond: spans that meet (a step ending as
 * the next starts, the last step ending with its command) must all start from this clock.
 */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now()
}

/**
 * OTEL_EXPORTER_OTLP_HEADERS → a record (W3C baggage-like `k=v` pairs, URL-encoded).
 * @example parseHeaders('api-key=abc%3D,x-tenant=ops') // { 'api-key': 'abc=', 'x-tenant': 'ops' }
 */
export function parseHeaders(headers: string | Record<string, string> | undefined, variable = 'OTEL_EXPORTER_OTLP_HEADERS'): Record<string, string> {
  if (headers === undefined) return {}
  if (typeof headers !== 'string') return { ...headers }
  const parsed: Record<string, string> = {}
  for (const pair of headers.split(',')) {
    const at = pair.indexOf('=')
    if (pair.trim() === '') continue
    if (at <= 0) throw new ToolkitError(`${variable}: « ${pair.split('=')[0]!.trim()} » n'a pas la forme clé=valeur`, { hint: `Exemple: ${variable}=api-key=…,x-scope=ops` })
    parsed[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(pair.slice(at + 1).trim())
  }
  return parsed
}
