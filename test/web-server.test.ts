import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { startDashboardServer, type DashboardServer, type HistoryPoint } from '../scripts/lib/web/server.ts'
import { redactLiterals } from '../scripts/lib/db/fingerprint.ts'
import type { DashboardSnapshot } from '../scripts/lib/web/snapshot.ts'
import { defer } from './helpers/databases.ts'
import { LITERAL_IN_PLAN, sampleSnapshot } from './helpers/web.ts'

type Cleanup = Parameters<typeof defer>[0]

async function start(t: Cleanup, options: Partial<Parameters<typeof startDashboardServer>[0]> = {}): Promise<DashboardServer> {
  const server = await startDashboardServer({ port: 0, intervalMs: 60_000, collect: async () => sampleSnapshot(), ...options })
  defer(t, () => server.close())
  return server
}

describe('web dashboard server', () => {
  it('refuses a non-loopback address without a token, in one French line', async () => {
    await assert.rejects(
      startDashboardServer({ host: '0.0.0.0', port: 0, collect: async () => sampleSnapshot() }),
      (error: unknown) =>
        error instanceof ToolkitError &&
        error.message === "refus d'écouter sur 0.0.0.0 sans jeton: tout le réseau verrait les métriques de la base" &&
        error.hint === 'Ajoutez --token <jeton> (ou DASHBOARD_TOKEN), ou écoutez sur 127.0.0.1.',
    )
  })

  it('binds 127.0.0.1 by default and serves the snapshot, the page, uPlot and /metrics with no literal value', async (t) => {
    const server = await start(t)
    assert.equal(server.host, '127.0.0.1')
    assert.equal(server.url, `http://127.0.0.1:${server.port}/`)
    const snapshot = (await (await fetch(`${server.url}api/snapshot`)).json()) as DashboardSnapshot
    assert.deepEqual((snapshot.metrics.recommendations[0]!.evidence as { plan: string[] }).plan, ['Seq Scan on Dossier (Filter: (("tenantId" = ?::text) AND (priorite > ?)))'])
    assert.equal(snapshot.metrics.globalMetrics.totalQueries, 11)
    const page = await fetch(server.url)
    assert.equal(page.headers.get('content-type'), 'text/html; charset=UTF-8')
    const html = await page.text()
    assert.match(html, /<html lang="fr">/)
    assert.ok(!html.includes('cdn') && !html.includes('https://'), 'no remote asset')
    const uplot = await fetch(`${server.url}assets/uPlot.iife.min.js`)
    assert.equal(uplot.status, 200)
    assert.match(await uplot.text(), /uPlot/)
    const metrics = await fetch(`${server.url}metrics`)
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    assert.match(await metrics.text(), /^ipm_db_operations_total\{engine="postgres",outcome="ok"\} 11$/m)
    for (const path of ['api/snapshot', 'api/history', 'metrics', '']) {
      assert.ok(!(await (await fetch(`${server.url}${path}`)).text()).includes(LITERAL_IN_PLAN), `/${path} holds a literal`)
    }
  })

  it('with a token, every request needs it (header or ?token=)', async (t) => {
    const server = await start(t, { host: '127.0.0.1', token: 'jeton-de-test-42' })
    for (const path of ['', 'api/snapshot', 'metrics', 'events', 'assets/uPlot.min.css']) {
      const response = await fetch(`${server.url}${path}`)
      assert.equal(response.status, 401, path)
      assert.equal(await response.text(), 'Jeton manquant ou invalide.\n')
    }
    assert.equal((await fetch(`${server.url}metrics`, { headers: { authorization: 'Bearer jeton-de-test-41' } })).status, 401)
    assert.equal((await fetch(`${server.url}metrics`, { headers: { authorization: 'Bearer jeton-de-test-42' } })).status, 200)
    assert.equal((await fetch(`${server.url}api/snapshot`, { headers: { 'x-dashboard-token': 'jeton-de-test-42' } })).status, 200)
    const page = await fetch(`${server.url}?token=jeton-de-test-42`)
    assert.equal(page.status, 200)
    assert.match(await page.text(), /src="\/assets\/dashboard\.js\?token=jeton-de-test-42"/)
  })

  it('with a token it listens beyond the loopback (0.0.0.0), and every request still needs the token', async (t) => {
    const server = await start(t, { host: '0.0.0.0', token: 'jeton-reseau' })
    assert.equal(server.url, `http://0.0.0.0:${server.port}/`)
    const local = `http://127.0.0.1:${server.port}/`
    assert.equal((await fetch(`${local}api/snapshot`)).status, 401)
    assert.equal((await fetch(`${local}metrics`, { headers: { authorization: 'Bearer jeton-reseau' } })).status, 200)
  })

  it('pushes a new snapshot over Server-Sent Events at each collection', async (t) => {
    let current = sampleSnapshot()
    const server = await start(t, { collect: async () => current })
    const controller = new AbortController()
    defer(t, () => controller.abort())
    const response = await fetch(`${server.url}events`, { signal: controller.signal })
    assert.equal(response.headers.get('content-type'), 'text/event-stream')
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ''
    const nextEvent = async () => {
      while (!buffer.includes('\n\n')) buffer += (await reader.read()).value ?? ''
      const [event, rest] = [buffer.slice(0, buffer.indexOf('\n\n')), buffer.slice(buffer.indexOf('\n\n') + 2)]
      buffer = rest
      return JSON.parse(event.split('\n').find((line) => line.startsWith('data: '))!.slice(6))
    }
    assert.equal((await nextEvent()).collectedAt, '2025-03-01T10:00:00.000Z')
    current = sampleSnapshot({ collectedAt: '2025-03-01T10:00:05.000Z', firstId: 12 })
    await server.refresh()
    assert.equal((await nextEvent()).collectedAt, '2025-03-01T10:00:05.000Z')
    const history = (await (await fetch(`${server.url}api/history`)).json()) as HistoryPoint[]
    assert.deepEqual(history.map((p) => p.t), [Date.parse('2025-03-01T10:00:00Z') / 1000, Date.parse('2025-03-01T10:00:05Z') / 1000])
  })

  it('masks quoted strings and compared numbers in plans and messages', () => {
    assert.equal(redactLiterals(`Index Scan using x on Client (Index Cond: (id = 'abc'::text)) rows=3`), 'Index Scan using x on Client (Index Cond: (id = ?::text)) rows=?', 'a number after = may be a value: masked too')
    assert.equal(redactLiterals('SEARCH Dossier USING INDEX i (tenantId=? AND priorite>?)'), 'SEARCH Dossier USING INDEX i (tenantId=? AND priorite>?)')
    assert.equal(redactLiterals('(montant >= 1500.5) AND (b <> -2)'), '(montant >= ?) AND (b <> ?)')
    assert.equal(redactLiterals('(x = 1.5e3) AND (y = 5"z") LIMIT 20'), '(x = ?) AND (y = ?"z") LIMIT ?', 'an exponent, a number touching a quote, a bare number')
  })
})
