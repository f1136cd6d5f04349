import assert from 'node:assert/strict'
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { openDatabase } from '../scripts/lib/db/open.ts'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { parseHeaders, startTracing, tracingOptions, withSpan } from '../scripts/lib/telemetry/tracing.ts'
import { REPO_ROOT } from './helpers/cli.ts'
import { tempDir } from './helpers/databases.ts'
import { startRecordingServer } from './helpers/http-recorder.ts'
import { resourceSpansOf, spansOf } from './helpers/otlp.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'

const SECRET_TITLE = 'Litige confidentiel Durand'

describe('OpenTelemetry tracing', () => {
  it('sends nested toolkit spans and Prisma query spans over OTLP/HTTP JSON, with parents, durations and no literal', async (t) => {
    const receiver = await startRecordingServer(t)
    const dbPath = join(tempDir(t), 'dev.db')
    copyFileSync(join(REPO_ROOT, 'prisma', 'dev.db'), dbPath)

    const tracing = await startTracing({ enabled: true, endpoint: `${receiver.url}/`, headers: 'x-api-key=cl%C3%A9%3D1,x-scope=ops', serviceName: 'ipm-test' })
    assert.equal(tracing.endpoint, `${receiver.url}/v1/traces`)
    try {
      const db = await openDatabase(`file:${dbPath}`, { environment: resolveEnvironment() })
      try {
        await withSpan('backup.create', { 'ipm.engine': 'sqlite' }, async () => {
          await withSpan('backup.snapshot', { 'ipm.step': 1 }, async () => {
            const found = await db.prisma.dossier.findMany({ where: { titre: SECRET_TITLE, priorite: 'HAUTE' }, take: 3 })
            assert.deepEqual(found, [])
          })
          await assert.rejects(withSpan('backup.verify', {}, async () => Promise.reject(new Error('somme de contrôle différente'))))
        })
      } finally {
        await db.close()
      }
    } finally {
      await tracing.shutdown()
    }

    assert.ok(receiver.requests.length >= 1)
    for (const request of receiver.requests) {
      assert.equal(request.path, '/v1/traces')
      assert.equal(request.headers['content-type'], 'application/json')
      assert.equal(request.headers['x-api-key'], 'clé=1')
      assert.equal(request.headers['x-scope'], 'ops')
    }
    const payloads = receiver.requests.map((r) => r.body.toString('utf8'))
    assert.ok(!payloads.some((p) => p.includes(SECRET_TITLE) || p.includes('HAUTE')), 'a literal left the process')
    const bodies = receiver.requests.map((r) => r.body)
    assert.ok(resourceSpansOf(bodies).every((r) => r.resource.attributes.some((a) => a.key === 'service.name' && a.value.stringValue === 'ipm-test')))
    const spans = spansOf(bodies)
    const byName = (name: string) => spans.filter((s) => s.name === name)
    const [create] = byName('backup.create')
    const [snapshot] = byName('backup.snapshot')
    const [verify] = byName('backup.verify')
    assert.ok(create && snapshot && verify, spans.map((s) => s.name).join(', '))
    assert.equal(create.parentSpanId ?? '', '')
    assert.equal(snapshot.parentSpanId, create.spanId)
    assert.equal(verify.parentSpanId, create.spanId)
    assert.equal(verify.status?.code, 2)
    assert.ok(snapshot.attributes.some((a) => a.key === 'ipm.step' && Number(a.value.intValue) === 1))
    // db.close() ran outside backup.create: its disconnect span is a trace of its own.
    assert.deepEqual(spans.filter((s) => s.traceId !== create.traceId).map((s) => s.name), ['prisma:client:disconnect'])
    for (const span of spans) {
      assert.ok(BigInt(span.endTimeUnixNano) >= BigInt(span.startTimeUnixNano), span.name)
    }
    assert.ok(BigInt(create.endTimeUnixNano) - BigInt(create.startTimeUnixNano) >= BigInt(snapshot.endTimeUnixNano) - BigInt(snapshot.startTimeUnixNano))

    // Prisma's spans (engineType "client" + driver adapter): the operation under backup.snapshot, its SQL below it, with placeholders.
    const operation = spans.find((s) => s.name === 'prisma:client:operation')
    assert.ok(operation, spans.map((s) => s.name).join(', '))
    assert.equal(operation.parentSpanId, snapshot.spanId)
    const queries = spans.filter((s) => s.name === 'prisma:client:db_query')
    assert.ok(queries.length >= 1, spans.map((s) => s.name).join(', '))
    const ids = new Map(spans.map((s) => [s.spanId, s]))
    for (const query of queries) {
      let ancestor = ids.get(query.parentSpanId ?? '')
      while (ancestor !== undefined && ancestor !== operation) ancestor = ids.get(ancestor.parentSpanId ?? '')
      assert.equal(ancestor, operation, 'a db_query span descends from the operation')
      const sql = query.attributes.find((a) => a.key === 'db.query.text' || a.key === 'db.statement')?.value.stringValue ?? ''
      assert.match(sql, /^SELECT .*FROM .*Dossier.* WHERE .*titre.* = \?/, sql)
    }
  })

  it('disabled tracing is a no-op; withSpan still runs the work', async () => {
    const tracing = await startTracing({ enabled: false })
    assert.equal(tracing.endpoint, null)
    assert.equal(await withSpan('step', {}, () => 42), 42)
    await tracing.shutdown()
  })

  it('the standard variables: the traces-specific endpoint is used as is, its headers win, OTEL_SDK_DISABLED leaves only --otel', async (t) => {
    const otel = (env: Record<string, string>) => resolveEnvironment(env).otel
    assert.equal(tracingOptions(undefined, otel({})).enabled, false)
    assert.equal(tracingOptions(true, otel({})).enabled, true)
    assert.equal(tracingOptions(undefined, otel({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).enabled, true)
    assert.equal(tracingOptions(undefined, otel({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).enabled, true)
    assert.equal(tracingOptions(undefined, otel({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' })).enabled, false)
    assert.equal(tracingOptions(true, otel({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'TRUE' })).enabled, true)

    const receiver = await startRecordingServer(t)
    const tracing = await startTracing(
      tracingOptions(
        undefined,
        otel({
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/otlp/traces`,
          OTEL_EXPORTER_OTLP_HEADERS: 'x-scope=general,x-api-key=general',
          OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-api-key=traces',
          OTEL_SERVICE_NAME: 'ipm-traces-endpoint',
        }),
      ),
    )
    assert.equal(tracing.endpoint, `${receiver.url}/otlp/traces`)
    await withSpan('backup.create', {}, async () => {})
    await tracing.shutdown()
    assert.equal(receiver.requests.length, 1)
    assert.equal(receiver.requests[0]!.path, '/otlp/traces')
    assert.equal(receiver.requests[0]!.headers['x-api-key'], 'traces')
    assert.equal(receiver.requests[0]!.headers['x-scope'], 'general')
    assert.deepEqual(spansOf(receiver.requests.map((r) => r.body)).map((s) => s.name), ['backup.create'])
    await assert.rejects(startTracing(tracingOptions(undefined, otel({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'pas une url' }))), (e: unknown) => e instanceof ToolkitError && e.message === "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT n'est pas une URL lisible")
  })

  it('reads OTEL_EXPORTER_OTLP_HEADERS and refuses a malformed one in French', () => {
    assert.deepEqual(parseHeaders('a=1, b = x%20y ,'), { a: '1', b: 'x y' })
    assert.throws(() => parseHeaders('apikey'), (e: unknown) => e instanceof ToolkitError && e.message === "OTEL_EXPORTER_OTLP_HEADERS: « apikey » n'a pas la forme clé=valeur")
  })
})
