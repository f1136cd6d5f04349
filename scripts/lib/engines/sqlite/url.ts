/** `file:<path>`: a SQLite file, relative paths against the context's folder. */
import { existsSync, realpathSync } from 'node:fs'
import { resolve } from 'node:path'
import { badUrl, type DatabaseLocation } from '../../db/url.ts'
import type { UrlContext } from '../engine.ts'

export function ownsSqliteUrl(url: string): boolean {
  return url.trim().startsWith('file:')
}

export function parseSqliteUrl(url: string, context: UrlContext): DatabaseLocation {
  const withoutScheme = url.trim().slice('file:'.length).replace(/^\/\/(?=\/)/, '').split('?')[0] ?? ''
  if (withoutScheme === '') throw badUrl(url, 'l’URL SQLite n’a pas de chemin')
  return { engine: 'sqlite', path: resolve(context.cwd, decodeURIComponent(withoutScheme)) }
}

/** The file a path names, symbolic links (to it or to a folder on its way) followed: what a restore replaces and locks. */
export function sqliteRealPath(path: string): string {
  return existsSync(resolve(path)) ? realpathSync(resolve(path)) : resolve(path)
}
