/** `postgresql://user:password@host:5432/db` (or `postgres://`): passed to the driver as it is. */
import { badUrl, type DatabaseLocation } from '../../db/url.ts'
import type { UrlContext } from '../engine.ts'

export function ownsPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url.trim())
}

export function parsePostgresUrl(url: string, _context: UrlContext): DatabaseLocation {
  const trimmed = url.trim()
  try {
    new URL(trimmed)
  } catch {
    throw badUrl(url, 'URL PostgreSQL illisible')
  }
  return { engine: 'postgres', connectionString: trimmed }
}
