/**
 * `advanced-backup --otel`: a real create then restore, traced to a local OTLP/HTTP receiver. Each
 * command is one trace: the command's span, and one child span per step the backup library announces
 * (the kill-point events), one after the other, inside it. No value of the data leaves the process.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { CREATE_STEPS, RESTORE_STEPS } from '../scripts/lib/backup/kill-points.ts'
import { runScriptAsync } from './helpers/cli.ts'
import { tempDir } from './helpers/databases.ts'
import { closedPort, startRecordingServer } from './helpers/http-recorder.ts'
import { spansOf, type OtlpSpan } from './helpers/otlp.ts'

const SECRET = 'Litige confidentiel Durand'

/** The command's span and its step spans: the steps in order, each inside the command and before the next. */
function checkTrace(spans: OtlpSpan[], root: string, expectedSteps: readonly string[]): void {
  const [command, ...others] = spans.filter((s) => s.name === root)
  assert.ok(command, `${root} among ${spans.map((s) => s.name).join(', ')}`)
  assert.equal(others.length, 0)
  assert.equal(command.parentSpanId ?? '', '')
  const prefix = expectedSteps[0]!.split(':')[0]!
  const steps = spans.filter((s) => s.traceId === command.traceId && s.name.startsWith(`${prefix}:`)).sort((a, b) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1))
  assert.deepEqual(steps.map((s) => s.name).sort(), [...expectedSteps].sort())
  for (const [index, step] of steps.entries()) {
    assert.equal(step.parentSpanId, command.spanId, step.name)
    const [start, end] = [BigInt(step.startTimeUnixNano), BigInt(step.endTimeUnixNano)]
    assert.ok(start >= BigInt(command.startTimeUnixNano) && end <= BigInt(command.endTimeUnixNano), `${step.name} lies inside ${root}`)
    assert.ok(end >= start, step.name)
    const next = steps[index + 1]
    if (next !== undefined) assert.ok(end <= BigInt(next.startTimeUnixNano), `${step.name} ends before ${next.name} starts: ${end} > ${next.startTimeUnixNano}`)
  }
}

test('--otel: create and restore send one trace each, the steps as ordered child spans, no data value', async (t) => {
  const dir = tempDir(t, 'ipm-otel-')
  const db = new Database(join(dir, 'app.db'))
  db.exec('CREATE TABLE dossier (id INTEGER PRIMARY KEY, titre TEXT)')
  db.prepare('INSERT INTO dossier (titre) VALUES (?)').run(SECRET)
  db.close()
  const receiver = await startRecordingServer(t)
  const env = { DATABASE_URL: 'file:./app.db', OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_SERVICE_NAME: 'ipm-backup-test', IPM_BACKUP_KILL_AT: '', ALERT_WEBHOOK_URL: '', SLACK_WEBHOOK_URL: '', SMTP_URL: '', ALERT_EMAIL_TO: '' }

  const created = await runScriptAsync('scripts/advanced-backup.ts', ['--dir', 'backups', '--otel', '--json', 'create'], { cwd: dir, env: { ...env, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url } })
  assert.equal(created.status, 0, created.stderr)
  const id = (JSON.parse(created.stdout) as { metadata: { id: string } }).metadata.id
  const afterCreate = receiver.requests.length
  assert.ok(afterCreate >= 1, 'spans were sent before the process exited')
  const createSpans = spansOf(receiver.requests.map((r) => r.body))
  // No rotation delete (a single backup): every other step of a compressed backup, in order.
  checkTrace(createSpans, 'advanced-backup create', CREATE_STEPS.filter((s) => s.startsWith('create:') && s !== 'create:before-rotation-delete'))

  const [untraced, unreachable] = await Promise.all([
    runScriptAsync('scripts/advanced-backup.ts', ['--dir', 'backups', '--quiet', 'restore', id, '--yes', '--to', join(dir, 'restored.db')], { cwd: dir, env }),
    closedPort().then((port) =>
      runScriptAsync('scripts/advanced-backup.ts', ['--dir', 'backups', '--otel', '--quiet', 'restore', id, '--yes', '--to', join(dir, 'restored1.db')], { cwd: dir, env: { ...env, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` } }),
    ),
  ])
  assert.equal(untraced.status, 0, untraced.stderr)
  assert.equal(receiver.requests.length, afterCreate, 'without --otel and without the variable, nothing is sent')
  assert.equal(unreachable.status, 0, 'an unreachable collector never fails a restore')
  assert.match(unreachable.stderr, /^⚠ traces OpenTelemetry non envoyées: .*ECONNREFUSED/m)
  const traced = await runScriptAsync('scripts/advanced-backup.ts', ['--dir', 'backups', '--quiet', 'restore', id, '--yes', '--to', join(dir, 'restored2.db')], { cwd: dir, env: { ...env, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url } })
  assert.equal(traced.status, 0, traced.stderr)
  const restoreSpans = spansOf(receiver.requests.slice(afterCreate).map((r) => r.body))
  checkTrace(restoreSpans, 'advanced-backup restore', RESTORE_STEPS)
  // The check step reads the restored database through Prisma: its query spans join the restore's trace.
  const restoreRoot = restoreSpans.find((s) => s.name === 'advanced-backup restore')!
  const operations = restoreSpans.filter((s) => s.name === 'prisma:client:operation')
  assert.ok(operations.length > 0)
  for (const operation of operations) assert.equal(operation.parentSpanId, restoreRoot.spanId)
  assert.ok(restoreSpans.filter((s) => s.name === 'prisma:client:db_query').every((s) => s.traceId === restoreRoot.traceId))

  for (const request of receiver.requests) {
    assert.equal(request.path, '/v1/traces')
    assert.ok(!request.body.toString('utf8').includes(SECRET), 'a data value left the process')
    assert.match(request.body.toString('utf8'), /"service\.name".*"ipm-backup-test"/)
  }
})
