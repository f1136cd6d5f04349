/** What an OTLP/HTTP JSON trace export holds, as the recording server received it (test/helpers/http-recorder.ts). */

export interface OtlpAttribute {
  key: string
  value: { stringValue?: string; intValue?: number | string }
}

export interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  startTimeUnixNano: string
  endTimeUnixNano: string
  attributes: OtlpAttribute[]
  status?: { code?: number }
}

export interface OtlpResourceSpans {
  resource: { attributes: OtlpAttribute[] }
  scopeSpans: { spans: OtlpSpan[] }[]
}

/** Every resource of every request body. */
export function resourceSpansOf(bodies: readonly Buffer[]): OtlpResourceSpans[] {
  return bodies.flatMap((body) => (JSON.parse(body.toString('utf8')) as { resourceSpans: OtlpResourceSpans[] }).resourceSpans)
}

/** Every span of every request body, whatever resource and scope it came in. */
export function spansOf(bodies: readonly Buffer[]): OtlpSpan[] {
  return resourceSpansOf(bodies).flatMap((r) => r.scopeSpans.flatMap((s) => s.spans))
}
