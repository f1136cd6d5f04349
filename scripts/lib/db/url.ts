/**
 * Database URLs: which engine a URL names, where it points, and how to print it safely.
 *
 *   file:./prisma/dev.db            SQLite (relative to the working directory)
 *   postgresql://user:pw@host/db    PostgreSQL (postgres:// too)
 *   d1://local                      Cloudflare D1 run locally by Miniflare, state in D1_PERSIST_DIR
 *   d1://local/<dir>                ... state in <dir> (d1://local//abs/dir for an absolute one)
 *   d1://<account-id>/<database-id> Cloudflare D1 through its HTTP API (needs CLOUDFLARE_D1_TOKEN)
 */
import { isAbsolute, resolve } from 'node:path'
import { ToolkitError } from '../errors.ts'

export type EngineName = 'sqlite' | 'postgres' | 'd1'

export type DatabaseLocation =
  | { engine: 'sqlite'; path: string }
  | { engine: 'postgres'; connectionString: string }
  | { engine: 'd1'; mode: 'local'; persistDir: string }
  | { engine: 'd1'; mode: 'remote'; accountId: string; databaseId: string }

export const ENGINE_LABELS: Record<EngineName, string> = { sqlite: 'SQLite', postgres: 'PostgreSQL', d1: 'D1' }

const SUPPORTED_FORMS = 'file:<path> (SQLite), postgresql://user@host:5432/db (PostgreSQL), d1://local[/<dir>] (D1)'

/** Masks the password of a URL (and any password-like query parameter), so it can be printed or logged. */
export function redactUrl(url: string): string {
  return url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]*):[^@/?#]*@/i, '$1:****@')
    .replace(/([?&](?:password|sslpassword|token|secret)=)[^&#]*/gi, '$1****')
}

/**
 * Parses a database URL; relative SQLite paths resolve against `cwd`.
 * @example parseDatabaseUrl('file:./prisma/dev.db', { cwd: '/app', d1PersistDir: '.d1' }) // { engine: 'sqlite', path: '/app/prisma/dev.db' }
 */
export function parseDatabaseUrl(url: string, options: { cwd: string; d1PersistDir: string }): DatabaseLocation {
  const trimmed = url.trim()
  if (trimmed.startsWith('file:')) {
    const withoutScheme = trimmed.slice('file:'.length).replace(/^\/\/(?=\/)/, '').split('?')[0] ?? ''
    if (withoutScheme === '') throw badUrl(url, 'the SQLite URL has no path')
    return { engine: 'sqlite', path: resolve(options.cwd, decodeURIComponent(withoutScheme)) }
  }
  if (/^postgres(ql)?:\/\//i.test(trimmed)) {
    try {
      new URL(trimmed)
    } catch {
      throw badUrl(url, 'the PostgreSQL URL cannot be parsed')
    }
    return { engine: 'postgres', connectionString: trimmed }
  }
  if (/^d1:\/\//i.test(trimmed)) {
    const [host = '', ...rest] = trimmed.slice('d1://'.length).split('/')
    const path = rest.join('/')
    if (host === 'local') {
      const dir = path === '' ? options.d1PersistDir : path
      return { engine: 'd1', mode: 'local', persistDir: isAbsolute(dir) ? dir : resolve(options.cwd, dir) }
    }
    if (host === '' || path === '' || path.includes('/')) throw badUrl(url, 'a remote D1 URL is d1://<account-id>/<database-id>')
    return { engine: 'd1', mode: 'remote', accountId: host, databaseId: path }
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(trimmed)?.[1]
  throw badUrl(url, scheme ? `unknown URL scheme "${scheme}:"` : 'not a database URL')
}

function badUrl(url: string, reason: string): ToolkitError {
  return new ToolkitError(`${reason}: ${redactUrl(url)}`, { hint: `Use ${SUPPORTED_FORMS}.` })
}
