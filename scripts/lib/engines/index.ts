/**
 * The registry: every engine the toolkit knows, and which one a URL or a name means.
 * A new engine is one new folder beside sqlite/, postgres/ and d1/ with the same files, and one
 * line in ENGINES.
 *
 * @example
 * const engine = engineForUrl('postgresql://app@db/app')
 * const db = await engine.open(engine.parseUrl(url, { cwd, d1PersistDir }), { redactedUrl, create: false, environment })
 */
import { badUrl, type DatabaseLocation, type EngineName } from '../db/url.ts'
import type { Engine, UrlContext } from './engine.ts'
import { sqliteEngine } from './sqlite/engine.ts'
import { postgresEngine } from './postgres/engine.ts'
import { d1Engine } from './d1/engine.ts'

export type { Engine } from './engine.ts'

export const ENGINES: readonly Engine[] = [sqliteEngine, postgresEngine, d1Engine]

/** The engine of a name recorded in metadata, a handle or a location. */
export function engineNamed(name: EngineName): Engine {
  const engine = ENGINES.find((e) => e.name === name)
  if (engine === undefined) throw new Error(`moteur inconnu : ${String(name)}`)
  return engine
}

/** The engine whose URL scheme `url` uses; a ToolkitError naming the supported forms otherwise. */
export function engineForUrl(url: string): Engine {
  const engine = ENGINES.find((e) => e.ownsUrl(url))
  if (engine !== undefined) return engine
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url.trim())?.[1]
  throw badUrl(url, scheme ? `schéma d’URL inconnu « ${scheme}: »` : 'pas une URL de base de données')
}

/**
 * Parses a database URL; relative SQLite paths resolve against `cwd`.
 * @example parseDatabaseUrl('file:./prisma/dev.db', { cwd: '/app', d1PersistDir: '.d1' }) // { engine: 'sqlite', path: '/app/prisma/dev.db' }
 */
export function parseDatabaseUrl(url: string, context: UrlContext): DatabaseLocation {
  return engineForUrl(url).parseUrl(url, context)
}

/** How an engine is named to a person: `SQLite`, `PostgreSQL`, `D1`. */
export function engineLabel(name: EngineName): string {
  return engineNamed(name).label
}
