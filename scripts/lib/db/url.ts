/**
 * Database URLs: which engine a URL names, where it points, and how to print it safely.
 *
 *   file:./prisma/dev.db            SQLite (relative to the working directory)
 *   postgresql://user:pw@host/db    PostgreSQL (postgres:// too)
 *   d1://local                      Cloudflare D1 run locally by Miniflare, state in D1_PERSIST_DIR
 *   d1://local/<dir>                ... state in <dir> (d1://local//abs/dir for an absolute one)
 *   d1://<account-id>/<database-id> Cloudflare D1 through its HTTP API (needs CLOUDFLARE_D1_TOKEN)
 */
import { ToolkitError } from '../errors.ts'

export type EngineName = 'sqlite' | 'postgres' | 'd1'

export type DatabaseLocation =
  | { engine: 'sqlite'; path: string }
  | { engine: 'postgres'; connectionString: string }
  | { engine: 'd1'; mode: 'local'; persistDir: string }
  | { engine: 'd1'; mode: 'remote'; accountId: string; databaseId: string }

const SUPPORTED_FORMS = 'file:<chemin> (SQLite), postgresql://user@host:5432/db (PostgreSQL), d1://local[/<dossier>] (D1)'

/** Masks the password of a URL (and any password-like query parameter), so it can be printed or logged. */
export function redactUrl(url: string): string {
  return url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]*):[^@/?#]*@/i, '$1:****@')
    .replace(/([?&](?:password|sslpassword|token|secret)=)[^&#]*/gi, '$1****')
}

/** Masks every password of URLs inside a text (an error message that quotes the command line). */
export function redactSecrets(text: string): string {
  return text
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s'"]*):[^@/?#\s'"]*@/gi, '$1:****@')
    .replace(/([?&](?:password|sslpassword|token|secret)=)[^&#\s'"]*/gi, '$1****')
}

/** The error for a URL no engine can use, naming the forms that work. */
export function badUrl(url: string, reason: string): ToolkitError {
  return new ToolkitError(`${reason} : ${redactUrl(url)}`, { hint: `Formes acceptées : ${SUPPORTED_FORMS}.` })
}
