/**
 * D1 Time Travel through its HTTP API. The real API (api.cloudflare.com) cannot be reached from here:
 * a local node:http server stands in for it, and the tests pin the exact requests we send
 * (method, path, query, headers) and what we make of its answers, errors included.
 */
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { runScriptAsync } from './helpers/cli.ts'
import { getD1Bookmark, restoreD1At, restoreD1ToBookmark } from '../scripts/lib/engines/d1/pitr.ts'

const ACCOUNT = '0123456789abcdef0123456789abcdef'
const DATABASE = '6f0c2b1e-8a3d-4c2b-9f1e-2d3c4b5a6978'
const TOKEN = 'tok-SECRET-9f8e7d6c5b4a'
const NOW = new Date('2026-03-01T13:00:00.000Z')
const BEFORE_RESTORE = '00000085-0000024c-00004e2f-0a83ea2fceebc654de0640c422be4653'
const AFTER_RESTORE = '00000086-00000001-00004e2f-1b94fb30dffcd765ef1751d533cf5764'

interface Seen {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: string
}

describe('D1 Time Travel API calls', () => {
  const seen: Seen[] = []
  let answer: (request: Seen) => { status: number; body: string } = () => ({ status: 500, body: '' })
  const server = createServer((request, response) => {
    let body = ''
    request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk))
    request.on('end', () => {
      const entry = { method: request.method ?? '', url: request.url ?? '', headers: request.headers, body }
      seen.push(entry)
      const { status, body: out } = answer(entry)
      response.writeHead(status, { 'content-type': 'application/json' }).end(out)
    })
  })
  let apiBase = ''
  const base = () => ({ accountId: ACCOUNT, databaseId: DATABASE, token: TOKEN, fetch, apiBase, now: () => NOW })

  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    apiBase = `http://127.0.0.1:${(server.address() as AddressInfo).port}/client/v4`
  })
  after(() => new Promise<void>((resolve) => server.close(() => resolve())))

  const ok = (result: object) => ({ status: 200, body: JSON.stringify({ success: true, errors: [], messages: [], result }) })

  test('restoreD1At reads the current bookmark, then POSTs restore?timestamp=T with the token in the Authorization header only', async () => {
    seen.length = 0
    answer = (request) => (request.url.includes('/time_travel/bookmark') ? ok({ bookmark: BEFORE_RESTORE }) : ok({ bookmark: AFTER_RESTORE, previous_bookmark: BEFORE_RESTORE, message: 'Database restored successfully' }))
    const at = new Date('2026-02-27T08:30:15.250Z')
    const result = await restoreD1At({ ...base(), at })
    assert.deepEqual(result, { at, undoBookmark: BEFORE_RESTORE, restoredBookmark: AFTER_RESTORE, message: 'Database restored successfully' })
    assert.deepEqual(seen.map((s) => [s.method, s.url, s.body]), [
      ['GET', `/client/v4/accounts/${ACCOUNT}/d1/database/${DATABASE}/time_travel/bookmark`, ''],
      ['POST', `/client/v4/accounts/${ACCOUNT}/d1/database/${DATABASE}/time_travel/restore?timestamp=2026-02-27T08%3A30%3A15.250Z`, ''],
    ])
    for (const request of seen) {
      assert.equal(request.headers.authorization, `Bearer ${TOKEN}`)
      assert.equal(request.headers.accept, 'application/json')
      assert.equal(request.url.includes(TOKEN), false)
    }
  })

  test('getD1Bookmark at an instant asks bookmark?timestamp=…, and restoreD1ToBookmark undoes with ?bookmark=…', async () => {
    seen.length = 0
    answer = (request) => (request.method === 'GET' ? ok({ bookmark: AFTER_RESTORE }) : ok({ bookmark: BEFORE_RESTORE }))
    assert.equal(await getD1Bookmark({ ...base(), at: new Date('2026-02-28T00:00:00Z') }), AFTER_RESTORE)
    const undone = await restoreD1ToBookmark({ ...base(), bookmark: BEFORE_RESTORE })
    assert.deepEqual(undone, { at: undefined, undoBookmark: AFTER_RESTORE, restoredBookmark: BEFORE_RESTORE, message: undefined })
    assert.deepEqual(seen.map((s) => `${s.method} ${s.url.replace(/^.*time_travel/, '')}`), [
      'GET /bookmark?timestamp=2026-02-28T00%3A00%3A00.000Z',
      'GET /bookmark',
      `POST /restore?bookmark=${BEFORE_RESTORE}`,
    ])
  })

  test('an API error becomes one French line with the HTTP status and the API\'s message, never the token (even when echoed)', async () => {
    seen.length = 0
    answer = (request) => (request.method === 'GET' ? ok({ bookmark: BEFORE_RESTORE }) : { status: 403, body: JSON.stringify({ success: false, errors: [{ code: 10000, message: `Authentication error for ${TOKEN}` }], messages: [], result: null }) })
    await assert.rejects(restoreD1At({ ...base(), at: new Date('2026-02-28T12:00:00Z') }), (error: unknown) => {
      assert.ok(error instanceof ToolkitError)
      assert.equal(error.message, 'La restauration Time Travel de D1 a échoué (HTTP 403) : 10000 Authentication error for ****.')
      assert.equal(error.hint, 'Vérifiez le jeton CLOUDFLARE_D1_TOKEN et son droit D1 Edit sur ce compte.')
      assert.equal(JSON.stringify({ message: error.message, hint: error.hint, stack: error.stack }).includes(TOKEN), false)
      return true
    })
    answer = () => ({ status: 502, body: '<html>Bad gateway</html>' })
    await assert.rejects(getD1Bookmark(base()), { message: 'La lecture du bookmark D1 a échoué (HTTP 502) : réponse illisible.' })
  })

  test('an unreachable API, an instant outside the 30 days or in the future, and malformed ids are refused before any restore', async () => {
    seen.length = 0
    await assert.rejects(getD1Bookmark({ ...base(), apiBase: 'http://127.0.0.1:1/client/v4' }), (error: unknown) => error instanceof ToolkitError && /^La lecture du bookmark D1 a échoué : API Cloudflare injoignable/.test(error.message) && !error.message.includes(TOKEN))
    await assert.rejects(restoreD1At({ ...base(), at: new Date('2026-01-01T00:00:00Z') }), {
      message: 'Instant 2026-01-01T00:00:00.000Z hors de la plage de Time Travel de D1 (du 2026-01-30T13:00:00.000Z au 2026-03-01T13:00:00.000Z).',
    })
    await assert.rejects(restoreD1At({ ...base(), at: new Date('2026-03-01T13:00:01Z') }), /hors de la plage de Time Travel/)
    await assert.rejects(restoreD1At({ ...base(), databaseId: '../../zones', at: new Date('2026-02-28T00:00:00Z') }), /Identifiant de base D1 invalide/)
    await assert.rejects(restoreD1At({ ...base(), token: '', at: new Date('2026-02-28T00:00:00Z') }), /Jeton Cloudflare absent/)
    assert.deepEqual(seen, [])
  })

  test('advanced-backup restore --at on a remote D1: a confirmation first, then the same two calls, the undo bookmark printed, the token nowhere', async () => {
    seen.length = 0
    answer = (request) => (request.url.includes('/time_travel/bookmark') ? ok({ bookmark: BEFORE_RESTORE }) : ok({ bookmark: AFTER_RESTORE, previous_bookmark: BEFORE_RESTORE, message: 'Database restored successfully' }))
    // Within D1's 30 days of Time Travel, whenever the test runs.
    const at = new Date(Date.now() - 3_600_000)
    const env = { CLOUDFLARE_API_BASE: apiBase, CLOUDFLARE_D1_TOKEN: TOKEN }
    const args = ['--dir', 'backups', '--database', `d1://${ACCOUNT}/${DATABASE}`, 'restore', '--at', at.toISOString()]
    const dir = mkdtempSync(join(tmpdir(), 'ipm-d1-pitr-'))
    try {
      const unconfirmed = await runScriptAsync('scripts/advanced-backup.ts', args, { cwd: dir, env })
      assert.equal(unconfirmed.status, 2, unconfirmed.stderr)
      assert.equal(seen.length, 0, 'nothing sent without --yes')
      const restored = await runScriptAsync('scripts/advanced-backup.ts', [...args, '--yes'], { cwd: dir, env })
      assert.equal(restored.status, 0, restored.stdout + restored.stderr)
      assert.deepEqual(seen.map((s) => [s.method, s.url.replace(/\?.*/, '')]), [
        ['GET', `/client/v4/accounts/${ACCOUNT}/d1/database/${DATABASE}/time_travel/bookmark`],
        ['POST', `/client/v4/accounts/${ACCOUNT}/d1/database/${DATABASE}/time_travel/restore`],
      ])
      assert.equal(new URL(seen[1]!.url, 'http://x').searchParams.get('timestamp'), at.toISOString())
      assert.ok(restored.stdout.includes(BEFORE_RESTORE), `the bookmark to undo the restore is printed: ${restored.stdout}`)
      for (const text of [unconfirmed.stdout, unconfirmed.stderr, restored.stdout, restored.stderr]) assert.ok(!text.includes(TOKEN))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
