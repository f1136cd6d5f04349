import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import Database from 'better-sqlite3'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { simpleParser, type ParsedMail } from 'mailparser'
import { SMTPServer } from 'smtp-server'
import { retryAfterMs } from '../scripts/lib/alerts/_http.ts'
import type { AlertCondition } from '../scripts/lib/alerts/alert.ts'
import { createEmailChannel, createSlackChannel, createWebhookChannel } from '../scripts/lib/alerts/channels.ts'
import { alertChannelsFromEnvironment } from '../scripts/lib/alerts/config.ts'
import { notifyAlerts } from '../scripts/lib/alerts/notify.ts'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { runScriptAsync } from './helpers/cli.ts'
import { defer, tempDir } from './helpers/databases.ts'
import { closedPort, startRecordingServer, startSilentServer } from './helpers/http-recorder.ts'

const STALE: AlertCondition = {
  key: 'backup:stale:/srv/backups',
  severity: 'critical',
  title: 'Backups en danger: le dernier backup vérifié date de 30 h',
  details: ['Seuil --max-age: 26 h', 'Dossier: /srv/backups'],
}
const SMTP_PASSWORD = 'P@ss-w0rd-smtp'

function clock(start = '2025-03-01T03:00:00.000Z') {
  let now = Date.parse(start)
  return { now: () => new Date(now), advance: (ms: number) => void (now += ms) }
}

const noSleep = async () => {}

async function startSmtpServer(t: TestContext) {
  const mails: ParsedMail[] = []
  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === 'alertes' && auth.password === SMTP_PASSWORD) callback(null, { user: 'alertes' })
      else callback(new Error('Invalid username or password'))
    },
    onData(stream, _session, callback) {
      simpleParser(stream).then((mail) => {
        mails.push(mail)
        callback()
      }, callback)
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  defer(t, () => new Promise<void>((resolve) => server.close(() => resolve())))
  return { port: (server.server.address() as AddressInfo).port, mails }
}

describe('alerts', () => {
  it('sends the alert by e-mail to a real SMTP server, then the "résolu" message, never the password', async (t) => {
    const smtp = await startSmtpServer(t)
    const statePath = join(tempDir(t), 'alert-state.json')
    const email = createEmailChannel({ smtpUrl: `smtp://alertes:${encodeURIComponent(SMTP_PASSWORD)}@127.0.0.1:${smtp.port}`, to: 'astreinte@cabinet.test', from: 'IPM <ipm@cabinet.test>' })
    assert.equal(email.target, `smtp://alertes:****@127.0.0.1:${smtp.port}`)
    const time = clock()

    const fired = await notifyAlerts({ source: 'advanced-backup check', firing: [STALE], channels: [email], statePath, now: time.now })
    assert.deepEqual(fired.deliveries, [{ key: STALE.key, channel: 'email', status: 'firing', outcome: 'sent' }])
    time.advance(10 * 60_000)
    const cleared = await notifyAlerts({ source: 'advanced-backup check', firing: [], channels: [email], statePath, now: time.now })
    assert.deepEqual(cleared.resolved, [STALE.key])
    assert.deepEqual(cleared.deliveries, [{ key: STALE.key, channel: 'email', status: 'resolved', outcome: 'sent' }])

    assert.equal(smtp.mails.length, 2)
    const [alert, resolved] = smtp.mails as [ParsedMail, ParsedMail]
    assert.equal(alert.subject, '[IA Poste Manager] 🔴 Alerte critique — Backups en danger: le dernier backup vérifié date de 30 h')
    assert.deepEqual(alert.from?.value, [{ address: 'ipm@cabinet.test', name: 'IPM' }])
    assert.equal((Array.isArray(alert.to) ? alert.to[0] : alert.to)?.text, 'astreinte@cabinet.test')
    assert.equal(alert.headers.get('x-ipm-alert-key'), STALE.key)
    assert.equal(
      alert.text,
      'Seuil --max-age: 26 h\nDossier: /srv/backups\nActif depuis 2025-03-01T03:00:00.000Z.\nSource: advanced-backup check · clé: backup:stale:/srv/backups · 2025-03-01T03:00:00.000Z\n',
    )
    assert.equal(resolved.subject, '[IA Poste Manager] ✅ Résolu — Backups en danger: le dernier backup vérifié date de 30 h')
    assert.match(resolved.text ?? '', /^Seuil --max-age: 26 h\nDossier: \/srv\/backups\nLe problème est résolu \(actif depuis 2025-03-01T03:00:00.000Z\)\.\n/)
    for (const mail of smtp.mails) assert.ok(!mail.text?.includes(SMTP_PASSWORD) && !mail.subject?.includes(SMTP_PASSWORD))
    assert.ok(!readFileSync(statePath, 'utf8').includes(SMTP_PASSWORD))
    // The resolved alert is kept (hold-down history), nothing else is left beside the state file.
    assert.deepEqual(readdirSync(join(statePath, '..')), ['alert-state.json'])
  })

  it('a refused SMTP login is reported with the password masked', async (t) => {
    const smtp = await startSmtpServer(t)
    const wrong = 'Wr0ng-Secret-xyz'
    const email = createEmailChannel({ smtpUrl: `smtp://alertes:${wrong}@127.0.0.1:${smtp.port}`, to: 'a@cabinet.test', sleep: noSleep, retry: { attempts: 2 } })
    const error = await email.send({ status: 'firing', source: 's', key: 'k', severity: 'warning', title: 't', details: [], since: 'x', at: 'y' }).then(() => undefined, (e: Error) => e)
    assert.ok(error instanceof Error)
    assert.match(error.message, new RegExp(`^email smtp://alertes:\\*\\*\\*\\*@127\\.0\\.0\\.1:${smtp.port}: `))
    assert.ok(!error.message.includes(wrong), error.message)
    assert.equal(smtp.mails.length, 0)
  })

  it('Slack: a 429 with Retry-After is honoured, then the block message is delivered', async (t) => {
    const slack = await startRecordingServer(t, (_request, index) => (index === 0 ? { status: 429, headers: { 'retry-after': '7' }, body: 'rate_limited' } : { status: 200, body: 'ok' }))
    const sleeps: number[] = []
    const channel = createSlackChannel(`${slack.url}/services/T000/B000/secret-path`, { sleep: async (ms) => void sleeps.push(ms) })
    assert.equal(channel.target, `${slack.url}/…`)
    const result = await notifyAlerts({ source: 'dashboard', firing: [{ key: 'p95:abc', severity: 'warning', title: 'p95 de 340 ms au-dessus du seuil de 250 ms' }], channels: [channel], statePath: join(tempDir(t), 's.json'), now: clock().now })
    assert.deepEqual(result.deliveries.map((d) => d.outcome), ['sent'])
    assert.deepEqual(sleeps, [7_000])
    assert.equal(slack.requests.length, 2)
    const body = JSON.parse(slack.requests[1]!.body.toString('utf8'))
    assert.equal(slack.requests[1]!.path, '/services/T000/B000/secret-path')
    assert.equal(slack.requests[1]!.headers['content-type'], 'application/json')
    assert.deepEqual(body, {
      text: '🔴 Alerte avertissement — p95 de 340 ms au-dessus du seuil de 250 ms',
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: '🔴 Alerte avertissement — p95 de 340 ms au-dessus du seuil de 250 ms', emoji: true } },
        { type: 'section', text: { type: 'mrkdwn', text: 'Actif depuis 2025-03-01T03:00:00.000Z.' } },
        { type: 'context', elements: [{ type: 'mrkdwn', text: 'Source: dashboard · clé: p95:abc · 2025-03-01T03:00:00.000Z' }] },
      ],
    })
  })

  it('Retry-After as an HTTP date, and exponential backoff on 5xx', async (t) => {
    assert.equal(retryAfterMs('Sat, 01 Mar 2025 03:00:30 GMT', new Date('2025-03-01T03:00:00Z')), 30_000)
    assert.equal(retryAfterMs(null, new Date()), undefined)
    const hook = await startRecordingServer(t, (_r, index) => ({ status: index < 3 ? 503 : 200 }))
    const sleeps: number[] = []
    await createWebhookChannel(hook.url, { sleep: async (ms) => void sleeps.push(ms), retry: { baseDelayMs: 500 } }).send({ status: 'firing', source: 's', key: 'k', severity: 'warning', title: 't', details: [], since: 'x', at: 'y' })
    assert.deepEqual(sleeps, [500, 1_000, 2_000])
    assert.equal(hook.requests.length, 4)
  })

  it('100 flaps in a simulated hour notify each channel at most twice, then the state converges', async (t) => {
    const slack = await startRecordingServer(t)
    const hook = await startRecordingServer(t)
    const statePath = join(tempDir(t), 'state.json')
    const channels = [createSlackChannel(slack.url), createWebhookChannel(hook.url)]
    const time = clock()
    const held: string[] = []
    for (let flap = 0; flap < 100; flap++) {
      const result = await notifyAlerts({ source: 'dashboard', firing: flap % 2 === 0 ? [STALE] : [], channels, statePath, now: time.now })
      held.push(...result.deliveries.filter((d) => d.outcome === 'held').map((d) => d.channel))
      time.advance(36_000)
    }
    assert.equal(slack.requests.length, 2)
    assert.equal(hook.requests.length, 2)
    assert.deepEqual(hook.requests.map((r) => JSON.parse(r.body.toString()).status), ['firing', 'resolved'])
    assert.equal(held.length, 2 * 49, "each later onset is held back (the clears need no message: the channels were last told résolu)")
    // An hour after the first message, the condition still firing reaches the channels once more.
    const later = await notifyAlerts({ source: 'dashboard', firing: [STALE], channels, statePath, now: time.now })
    assert.deepEqual(later.deliveries.map((d) => `${d.channel}:${d.status}:${d.outcome}`).sort(), ['slack:firing:sent', 'webhook:firing:sent'])
    time.advance(60_000)
    const again = await notifyAlerts({ source: 'dashboard', firing: [STALE], channels, statePath, now: time.now })
    assert.deepEqual(again.deliveries, [], 'deduplicated: the same condition is not sent twice')
  })

  it('a channel that refuses connections does not block the others, and is retried on the next run', async (t) => {
    const slack = await startRecordingServer(t)
    const deadPort = await closedPort()
    const statePath = join(tempDir(t), 'state.json')
    const sleeps: number[] = []
    const sleep = async (ms: number) => void sleeps.push(ms)
    const dead = createWebhookChannel(`http://127.0.0.1:${deadPort}/hook`, { sleep })
    const result = await notifyAlerts({ source: 'backup', firing: [STALE], channels: [dead, createSlackChannel(slack.url, { sleep })], statePath, now: clock().now })
    const byChannel = Object.fromEntries(result.deliveries.map((d) => [d.channel, d]))
    assert.equal(byChannel.slack?.outcome, 'sent')
    assert.equal(byChannel.webhook?.outcome, 'failed')
    assert.match(byChannel.webhook?.error ?? '', new RegExp(`^webhook http://127\\.0\\.0\\.1:${deadPort}/…: `))
    assert.deepEqual(sleeps, [1_000, 2_000, 4_000])
    assert.equal(slack.requests.length, 1)

    const revived = await startRecordingServer(t)
    const retry = await notifyAlerts({ source: 'backup', firing: [STALE], channels: [createWebhookChannel(revived.url), createSlackChannel(slack.url)], statePath, now: clock().now })
    assert.deepEqual(retry.deliveries, [{ key: STALE.key, channel: 'webhook', status: 'firing', outcome: 'sent' }])
    assert.equal(slack.requests.length, 1)
  })

  it('a backup whose alert channels are all unreachable still succeeds and exits 0; the channels are told on the next run', async (t) => {
    const dir = tempDir(t, 'ipm-alert-backup-')
    const db = new Database(join(dir, 'app.db'))
    db.exec("CREATE TABLE dossier (id INTEGER PRIMARY KEY, titre TEXT); INSERT INTO dossier (titre) VALUES ('un'), ('deux')")
    db.close()
    const hook = await startRecordingServer(t)
    const smtp = await startSmtpServer(t)
    const dead = await closedPort()
    const backup = (args: string[], channels: Record<string, string>) =>
      runScriptAsync('scripts/advanced-backup.ts', ['--dir', 'backups', ...args], {
        cwd: dir,
        env: { TZ: 'UTC', DATABASE_URL: 'file:./app.db', ALERT_STATE_FILE: '', IPM_BACKUP_KILL_AT: '', SLACK_WEBHOOK_URL: '', ALERT_WEBHOOK_URL: '', SMTP_URL: '', ALERT_EMAIL_TO: '', ...channels },
      })
    const working = { ALERT_WEBHOOK_URL: `${hook.url}/hooks/secret`, SMTP_URL: `smtp://alertes:${encodeURIComponent(SMTP_PASSWORD)}@127.0.0.1:${smtp.port}`, ALERT_EMAIL_TO: 'astreinte@cabinet.test' }
    const unreachable = {
      ALERT_WEBHOOK_URL: `http://127.0.0.1:${dead}/hooks/secret`,
      SLACK_WEBHOOK_URL: `http://127.0.0.1:${dead}/services/T000/B000/secret`,
      SMTP_URL: `smtp://alertes:${encodeURIComponent(SMTP_PASSWORD)}@127.0.0.1:${dead}`,
      ALERT_EMAIL_TO: 'astreinte@cabinet.test',
    }

    // No backup yet: the check fires, the webhook and the mailbox are told.
    const empty = await backup(['check'], working)
    assert.equal(empty.status, 1, empty.stderr)
    assert.equal(hook.requests.length, 1)
    assert.equal(smtp.mails.length, 1)

    // The nightly run (create, then check) while every channel is down: the backup is made, the exit code is 0.
    const monitor = await backup(['monitor'], unreachable)
    assert.equal(monitor.status, 0, monitor.stdout + monitor.stderr)
    assert.match(monitor.stdout, /✅ Backups en bonne santé/)
    for (const channel of ['webhook', 'email']) assert.match(monitor.stdout, new RegExp(`✗ résolution non envoyée \\(${channel}\\): ${channel} \\S+`))
    assert.ok(!(monitor.stdout + monitor.stderr).includes(SMTP_PASSWORD) && !(monitor.stdout + monitor.stderr).includes('secret'), 'no secret printed')
    const listed = await backup(['list', '--json'], {})
    assert.equal((JSON.parse(listed.stdout) as { backups: unknown[] }).backups.length, 1)
    const created = await backup(['create', '--quiet'], unreachable)
    assert.equal(created.status, 0, created.stderr)

    // The channels are back: the next check tells them the problem is resolved, once.
    const healthy = await backup(['check'], working)
    assert.equal(healthy.status, 0, healthy.stdout)
    assert.deepEqual(hook.requests.map((r) => JSON.parse(r.body.toString('utf8')).status), ['firing', 'resolved'])
    assert.deepEqual(smtp.mails.map((m) => m.headers.get('x-ipm-alert-status')), ['firing', 'resolved'])
  })

  it('channels that accept the connection and never answer are cut at the run\'s deadline; the notification stays due and the next run sends it', async (t) => {
    const silent = await startSilentServer(t)
    const statePath = join(tempDir(t), 'state.json')
    // The real retry policy (4 attempts of 10 s) and the real sleep: only the deadline can end this run early.
    const hanging = [
      createWebhookChannel(`${silent.url}/hooks/secret`),
      createSlackChannel(`${silent.url}/services/T/B/secret`),
      createEmailChannel({ smtpUrl: `smtp://alertes:${encodeURIComponent(SMTP_PASSWORD)}@127.0.0.1:${silent.port}`, to: 'astreinte@cabinet.test' }),
    ]
    // nodemailer is loaded by the first e-mail: loaded here, so that every channel has connected well before the deadline.
    await import('nodemailer')
    const result = await notifyAlerts({ source: 'backup', firing: [STALE], channels: hanging, statePath, now: clock().now, deadlineMs: 1_500 })
    assert.deepEqual(result.deliveries.map((d) => [d.channel, d.outcome]).sort(), [['email', 'failed'], ['slack', 'failed'], ['webhook', 'failed']])
    for (const d of result.deliveries) assert.match(d.error ?? '', /délai des alertes dépassé, nouvel essai au prochain lancement/, d.channel)
    assert.ok(silent.connections() >= 3, 'each channel connected')
    assert.ok(!JSON.stringify(result).includes(SMTP_PASSWORD) && !JSON.stringify(result).includes('secret'))
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as { alerts: Record<string, { channels: Record<string, { notified: string | null }> }> }
    assert.deepEqual(Object.values(state.alerts[STALE.key]!.channels).map((c) => c.notified), [null, null, null], 'nothing counted as told')

    const hook = await startRecordingServer(t)
    const next = await notifyAlerts({ source: 'backup', firing: [STALE], channels: [createWebhookChannel(`${hook.url}/hooks/secret`)], statePath, now: clock().now })
    assert.deepEqual(next.deliveries, [{ key: STALE.key, channel: 'webhook', status: 'firing', outcome: 'sent' }])
  })

  it('a nightly monitor whose webhook never answers makes its backup and exits 0 at the 15 s deadline (not 47 s of retries); the next check tells the webhook', async (t) => {
    const dir = tempDir(t, 'ipm-alert-silent-')
    const db = new Database(join(dir, 'app.db'))
    db.exec("CREATE TABLE dossier (id INTEGER PRIMARY KEY, titre TEXT); INSERT INTO dossier (titre) VALUES ('un')")
    db.close()
    const hook = await startRecordingServer(t)
    const silent = await startSilentServer(t)
    const backup = (args: string[], webhook: string) =>
      runScriptAsync('scripts/advanced-backup.ts', ['--dir', 'backups', ...args], {
        cwd: dir,
        env: { TZ: 'UTC', DATABASE_URL: 'file:./app.db', ALERT_STATE_FILE: '', IPM_BACKUP_KILL_AT: '', SLACK_WEBHOOK_URL: '', SMTP_URL: '', ALERT_EMAIL_TO: '', ALERT_WEBHOOK_URL: webhook },
      })
    const empty = await backup(['check'], `${hook.url}/hooks/secret`)
    assert.equal(empty.status, 1, empty.stderr)
    assert.equal(hook.requests.length, 1)

    const monitor = await backup(['monitor'], `${silent.url}/hooks/secret`)
    assert.equal(monitor.status, 0, monitor.stdout + monitor.stderr)
    assert.match(monitor.stdout, /✅ Backups en bonne santé/)
    // The first attempt's 10 s timeout, 1 s of backoff, then the second attempt is cut by the deadline at 15 s.
    assert.match(monitor.stdout, /✗ résolution non envoyée \(webhook\): webhook http:\/\/127\.0\.0\.1:\d+\/…: délai des alertes dépassé, nouvel essai au prochain lancement \(/)
    assert.ok(silent.connections() >= 1)

    const healthy = await backup(['check'], `${hook.url}/hooks/secret`)
    assert.equal(healthy.status, 0, healthy.stdout)
    assert.deepEqual(hook.requests.map((r) => JSON.parse(r.body.toString('utf8')).status), ['firing', 'resolved'])
  })

  it('the state survives between processes (one cron run after another)', async (t) => {
    const hook = await startRecordingServer(t)
    const statePath = join(tempDir(t), 'state.json')
    const run = async (now: string, firing: { key: string; title: string }[]) => {
      const child = await runScriptAsync('test/fixtures/notify-alerts-child.ts', [JSON.stringify({ webhookUrl: hook.url, statePath, now, firing })])
      assert.equal(child.status, 0, child.stderr)
      return JSON.parse(child.stdout) as { deliveries: { outcome: string; status: string }[] }
    }
    const condition = { key: 'drill:failed', title: "L'exercice de restauration a échoué" }
    assert.deepEqual((await run('2025-03-01T03:00:00Z', [condition])).deliveries.map((d) => d.status), ['firing'])
    assert.deepEqual((await run('2025-03-01T04:00:00Z', [condition])).deliveries, [])
    assert.deepEqual((await run('2025-03-01T05:00:00Z', [])).deliveries.map((d) => d.status), ['resolved'])
    assert.deepEqual(hook.requests.map((r) => JSON.parse(r.body.toString()).text), [
      "[child] 🔴 Alerte critique — L'exercice de restauration a échoué",
      "[child] ✅ Résolu — L'exercice de restauration a échoué",
    ])
  })

  it('channels come from the environment values passed in; half an e-mail configuration is refused', () => {
    assert.deepEqual(alertChannelsFromEnvironment({}), [])
    const channels = alertChannelsFromEnvironment({ SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T/B/x', SMTP_URL: 'smtp://u:pw@mail:587', ALERT_EMAIL_TO: 'a@b.fr' })
    assert.deepEqual(channels.map((c) => [c.name, c.target]), [['slack', 'https://hooks.slack.com/…'], ['email', 'smtp://u:****@mail:587']])
    assert.throws(() => alertChannelsFromEnvironment({ SMTP_URL: 'smtp://u:pw@mail:587' }), (e: unknown) => e instanceof ToolkitError && e.message === 'alertes e-mail: SMTP_URL est défini sans ALERT_EMAIL_TO' && !e.message.includes('pw'))
    assert.throws(() => alertChannelsFromEnvironment({ SMTP_URL: 'http://mail', ALERT_EMAIL_TO: 'a@b.fr' }), /SMTP_URL: protocole http: non pris en charge/)
  })
})
