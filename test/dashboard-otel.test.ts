/**
 * `database-performance-dashboard --otel`: one analysis of a copy of the dev database, traced to a
 * local OTLP/HTTP receiver. The analysis is one trace: `dashboard.analyze`, one child span per test of
 * the spec (`dashboard.test.1` … `dashboard.test.6`, in order, inside it) and Prisma's spans of every
 * query beneath it. No value the tests query with (tenant id, statuses, priorities) leaves the process.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT, runScriptAsync } from './helpers/cli.ts'
import { tempDir } from './helpers/databases.ts'
import { startRecordingServer } from './helpers/http-recorder.ts'
import { spansOf } from './helpers/otlp.ts'

// What test 4 filters on (a tenant of the dev database, its name, the statuses and priorities asked for).
const VALUES = ['tenant-demo', 'Cabinet Demo', 'OUVERT', 'EN_COURS', 'EN_ATTENTE', 'NORMALE', 'HAUTE', 'URGENTE']

test('--otel: one analysis is one trace, the six tests as ordered child spans, the Prisma queries beneath, no value', async (t) => {
  const dir = tempDir(t, 'ipm-dashboard-otel-')
  copyFileSync(join(REPO_ROOT, 'prisma', 'dev.db'), join(dir, 'dev.db'))
  const receiver = await startRecordingServer(t)
  const result = await runScriptAsync('scripts/database-performance-dashboard.ts', ['--otel', '--json', '--output', join(dir, 'metrics.json')], {
    cwd: dir,
    env: { DATABASE_URL: `file:${join(dir, 'dev.db')}`, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: 'ipm-dashboard-test', ALERT_WEBHOOK_URL: '', SLACK_WEBHOOK_URL: '', SMTP_URL: '', ALERT_EMAIL_TO: '' },
  })
  assert.equal(result.status, 0, result.stderr)
  const metrics = JSON.parse(result.stdout) as { tests: { number: number; status: string }[] }
  assert.deepEqual(metrics.tests.map((r) => r.status), ['passed', 'passed', 'passed', 'passed', 'passed', 'passed'])

  const spans = spansOf(receiver.requests.map((r) => r.body))
  const [analyze, ...more] = spans.filter((s) => s.name === 'dashboard.analyze')
  assert.ok(analyze, spans.map((s) => s.name).join(', '))
  assert.equal(more.length, 0)
  assert.equal(analyze.parentSpanId ?? '', '')
  const [start, end] = [BigInt(analyze.startTimeUnixNano), BigInt(analyze.endTimeUnixNano)]
  assert.ok(end > start)

  const tests = spans.filter((s) => s.name.startsWith('dashboard.test.')).sort((a, b) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1))
  assert.deepEqual(tests.map((s) => s.name), ['dashboard.test.1', 'dashboard.test.2', 'dashboard.test.3', 'dashboard.test.4', 'dashboard.test.5', 'dashboard.test.6'])
  for (const [index, span] of tests.entries()) {
    assert.equal(span.traceId, analyze.traceId, span.name)
    assert.equal(span.parentSpanId, analyze.spanId, span.name)
    const [from, to] = [BigInt(span.startTimeUnixNano), BigInt(span.endTimeUnixNano)]
    assert.ok(from >= start && to <= end && to > from, `${span.name} lies inside dashboard.analyze and lasts`)
    const next = tests[index + 1]
    if (next !== undefined) assert.ok(to <= BigInt(next.startTimeUnixNano), `${span.name} ends before ${next.name}`)
  }

  // Prisma's spans: every operation of the analysis in its trace, directly under it; each SQL span descends from one.
  const operations = spans.filter((s) => s.name === 'prisma:client:operation' && s.traceId === analyze.traceId)
  assert.ok(operations.length >= 10, `${operations.length} operations`)
  for (const operation of operations) assert.equal(operation.parentSpanId, analyze.spanId)
  const byId = new Map(spans.map((s) => [s.spanId, s]))
  const queries = spans.filter((s) => s.name === 'prisma:client:db_query')
  assert.ok(queries.length >= operations.length)
  for (const query of queries) {
    let ancestor = byId.get(query.parentSpanId ?? '')
    while (ancestor !== undefined && ancestor.name !== 'prisma:client:operation') ancestor = byId.get(ancestor.parentSpanId ?? '')
    assert.ok(ancestor, 'a db_query span descends from an operation')
    const sql = query.attributes.find((a) => a.key === 'db.query.text' || a.key === 'db.statement')?.value.stringValue ?? ''
    assert.match(sql, /^(SELECT|WITH|PRAGMA|EXPLAIN)\b/i, sql)
  }
  const dossierQuery = queries.map((q) => q.attributes.find((a) => a.key === 'db.query.text' || a.key === 'db.statement')?.value.stringValue ?? '').find((sql) => /FROM .*Dossier.* WHERE .*tenantId/.test(sql))
  assert.ok(dossierQuery, 'the SQL of test 4 is traced')
  assert.match(dossierQuery, /tenantId.* = \?/)

  for (const request of receiver.requests) {
    const body = request.body.toString('utf8')
    for (const value of VALUES) assert.ok(!body.includes(value), `${value} left the process`)
    assert.match(body, /"service\.name".*"ipm-dashboard-test"/)
  }
})
