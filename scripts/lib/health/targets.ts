/**
 * Which database the health check tests on each engine, and why an engine is left out.
 *
 *   SQLite      --database, else DATABASE_URL (default file:./prisma/dev.db) when it names a SQLite file
 *   PostgreSQL  --postgres, else POSTGRES_URL, else DATABASE_URL when it names PostgreSQL
 *   D1          --d1, else D1_URL, else DATABASE_URL when it names D1, else d1://local (Miniflare);
 *               a remote D1 needs CLOUDFLARE_D1_TOKEN
 */
import type { ToolkitEnvironment } from '../environment.ts'
import { ToolkitError } from '../errors.ts'
import { redactUrl, type DatabaseLocation, type EngineName } from '../db/url.ts'
import { engineLabel, engineNamed, parseDatabaseUrl } from '../engines/index.ts'

export const ALL_ENGINES: readonly EngineName[] = ['sqlite', 'postgres', 'd1']

export type HealthTarget =
  /** A database to check. */
  | { engine: EngineName; kind: 'configured'; url: string; source: string }
  /** Nothing to check on this engine: the engine is skipped with this reason. */
  | { engine: EngineName; kind: 'not-configured'; reason: string; hint?: string }
  /** Configured, but the setting cannot be used: the engine fails its connect check. */
  | { engine: EngineName; kind: 'invalid'; source: string; error: string; hint?: string }

export interface ResolveHealthTargetsOptions {
  environment: ToolkitEnvironment
  /** Base of relative SQLite and D1 paths. */
  cwd: string
  /** The engines to check; all of them when absent or empty. */
  only?: readonly EngineName[]
  /** Overrides of DATABASE_URL, POSTGRES_URL and D1_URL (the command-line flags). */
  database?: string
  postgres?: string
  d1?: string
}

interface Setting {
  url: string
  source: string
}

/**
 * The targets of the selected engines, in the order sqlite, postgres, d1.
 * @example resolveHealthTargets({ environment, cwd: '/app', only: ['sqlite'] })
 * // [{ engine: 'sqlite', kind: 'configured', url: 'file:./prisma/dev.db', source: 'default' }]
 */
export function resolveHealthTargets(options: ResolveHealthTargetsOptions): HealthTarget[] {
  const { environment } = options
  const locate = (url: string): DatabaseLocation | ToolkitError => {
    try {
      return parseDatabaseUrl(url, { cwd: options.cwd, d1PersistDir: environment.d1PersistDir })
    } catch (error) {
      if (error instanceof ToolkitError) return error
      throw error
    }
  }
  const app: Setting =
    options.database !== undefined
      ? { url: options.database, source: '--database' }
      : { url: environment.databaseUrl, source: environment.databaseUrlIsDefault ? 'default' : 'DATABASE_URL' }
  const appLocation = locate(app.url)

  const fromSetting = (engine: EngineName, setting: Setting): HealthTarget => {
    const location = locate(setting.url)
    if (location instanceof ToolkitError) return { engine, kind: 'invalid', source: setting.source, error: location.message, hint: location.hint }
    if (location.engine !== engine) {
      return {
        engine,
        kind: 'invalid',
        source: setting.source,
        error: `${setting.source} n’est pas une URL ${engineLabel(engine)} : ${redactUrl(setting.url)}`,
        hint: EXAMPLE_URLS[engine],
      }
    }
    const missing = engineNamed(engine).missingCredentials(location, environment)
    if (missing !== undefined) {
      return { engine, kind: 'not-configured', reason: `${engineLabel(engine)} distant ${redactUrl(setting.url)} (${setting.source}) : ${missing.reason}`, hint: missing.hint }
    }
    return { engine, kind: 'configured', url: setting.url, source: setting.source }
  }

  const appNames = (engine: EngineName) => !(appLocation instanceof ToolkitError) && appLocation.engine === engine
  const resolvers: Record<EngineName, () => HealthTarget> = {
    sqlite: () => {
      if (appLocation instanceof ToolkitError || appNames('sqlite')) return fromSetting('sqlite', app)
      return {
        engine: 'sqlite',
        kind: 'not-configured',
        reason: `non configuré : ${app.source} désigne ${engineLabel(appLocation.engine)}, pas un fichier SQLite`,
        hint: 'Passez --database file:<chemin> pour contrôler une base SQLite.',
      }
    },
    postgres: () => {
      const explicit = setting(options.postgres, '--postgres') ?? setting(environment.postgresUrl, 'POSTGRES_URL')
      if (explicit !== undefined) return fromSetting('postgres', explicit)
      if (appNames('postgres')) return fromSetting('postgres', app)
      return {
        engine: 'postgres',
        kind: 'not-configured',
        reason: 'non configuré : POSTGRES_URL n’est pas défini',
        hint: 'Définissez POSTGRES_URL (ou passez --postgres <url>) pour contrôler une base PostgreSQL.',
      }
    },
    d1: () => {
      const explicit = setting(options.d1, '--d1') ?? setting(environment.d1Url, 'D1_URL')
      if (explicit !== undefined) return fromSetting('d1', explicit)
      if (appNames('d1')) return fromSetting('d1', app)
      return fromSetting('d1', { url: 'd1://local', source: 'default' })
    },
  }
  const selected = options.only === undefined || options.only.length === 0 ? ALL_ENGINES : options.only
  return ALL_ENGINES.filter((engine) => selected.includes(engine)).map((engine) => resolvers[engine]())
}

const EXAMPLE_URLS: Record<EngineName, string> = {
  sqlite: 'Utilisez file:<chemin>, par exemple file:./prisma/dev.db.',
  postgres: 'Utilisez postgresql://user@host:5432/db.',
  d1: 'Utilisez d1://local[/<dossier>] (Miniflare) ou d1://<account-id>/<database-id> (distant).',
}

function setting(url: string | undefined, source: string): Setting | undefined {
  return url === undefined || url.trim() === '' ? undefined : { url, source }
}
