/**
 * `d1://local` (Miniflare, state in D1_PERSIST_DIR), `d1://local/<dir>` (`d1://local//abs/dir` for
 * an absolute one), or `d1://<account-id>/<database-id>` (Cloudflare's HTTP API).
 */
import { isAbsolute, resolve } from 'node:path'
import { badUrl, type DatabaseLocation } from '../../db/url.ts'
import type { UrlContext } from '../engine.ts'

export function ownsD1Url(url: string): boolean {
  return /^d1:\/\//i.test(url.trim())
}

export function parseD1Url(url: string, context: UrlContext): DatabaseLocation {
  const [host = '', ...rest] = url.trim().slice('d1://'.length).split('/')
  const path = rest.join('/')
  if (host === 'local') {
    const dir = path === '' ? context.d1PersistDir : path
    return { engine: 'd1', mode: 'local', persistDir: isAbsolute(dir) ? dir : resolve(context.cwd, dir) }
  }
  if (host === '' || path === '' || path.includes('/')) throw badUrl(url, 'une URL D1 distante s’écrit d1://<account-id>/<database-id>')
  return { engine: 'd1', mode: 'remote', accountId: host, databaseId: path }
}
