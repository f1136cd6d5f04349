/**
 * The OpenTelemetry SDK side of tracing, loaded by `startTracing` only when tracing is on: the Node
 * tracer provider, the OTLP/HTTP (JSON) exporter, `@prisma/instrumentation`, and the processor that
 * fingerprints SQL attributes before any span leaves the process.
 */
import { context, propagation, trace } from '@opentelemetry/api'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, NodeTracerProvider, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-node'
import { PrismaInstrumentation, registerInstrumentations } from '@prisma/instrumentation'
import { fingerprintSql } from '../db/fingerprint.ts'

/** Span attributes that may hold SQL (current and older semantic conventions, Prisma's). */
const SQL_ATTRIBUTES = ['db.query.text', 'db.statement', 'db.query.summary']

/** Registers a tracer provider exporting to `url` (…/v1/traces) until `shutdown()`. */
export function startExporting(url: URL, options: { headers: Record<string, string>; serviceName: string; timeoutMs: number }): { enabled: true; endpoint: string; shutdown(): Promise<void> } {
  const exporter = new OTLPTraceExporter({ url: url.href, headers: options.headers, timeoutMillis: options.timeoutMs })
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName }),
    spanProcessors: [new FingerprintSqlProcessor(), new BatchSpanProcessor(exporter)],
  })
  provider.register()
  const prisma = new PrismaInstrumentation()
  const unregister = registerInstrumentations({ tracerProvider: provider, instrumentations: [prisma] })
  let stopped: Promise<void> | undefined
  return {
    enabled: true,
    endpoint: url.origin + url.pathname,
    shutdown: () =>
      (stopped ??= (async () => {
        try {
          await provider.forceFlush()
          await provider.shutdown()
        } finally {
          unregister()
          trace.disable()
          context.disable()
          propagation.disable()
        }
      })()),
  }
}

// Runs before the exporter's processor: the span is ended and not yet serialised.
class FingerprintSqlProcessor implements SpanProcessor {
  onStart(): void {}
  onEnd(span: ReadableSpan): void {
    const attributes = span.attributes as Record<string, unknown>
    for (const key of SQL_ATTRIBUTES) {
      const value = attributes[key]
      if (typeof value === 'string') attributes[key] = fingerprintSql(value)
    }
  }
  forceFlush(): Promise<void> {
    return Promise.resolve()
  }
  shutdown(): Promise<void> {
    return Promise.resolve()
  }
}
