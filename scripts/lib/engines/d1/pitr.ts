/**
 * Point-in-time recovery of a remote Cloudflare D1 database through its Time Travel API
 * (any minute of the last 30 days):
 *   GET  {apiBase}/accounts/{account}/d1/database/{db}/time_travel/bookmark[?timestamp=…]
 *   POST {apiBase}/accounts/{account}/d1/database/{db}/time_travel/restore?timestamp=…  (or ?bookmark=…)
 * restoreD1At first reads the bookmark of "now", so the result names the bookmark that undoes the restore.
 * The token only ever goes into the Authorization header: no error or result carries it.
 */
import { ToolkitError } from '../../errors.ts'
import { formatInstant, formatRange } from '../../replication/instant.ts'
import type { PointInTimeRecovery } from '../engine.ts'

export const CLOUDFLARE_API_BASE = 'https://api.cloudflare.com/client/v4'

/** D1 keeps Time Travel history for 30 days. */
export const D1_TIME_TRAVEL_DAYS = 30

export interface D1ApiOptions {
  accountId: string
  databaseId: string
  token: string
  /** The fetch to use (globalThis.fetch in the CLI; injected in tests). */
  fetch: typeof fetch
  /** Default https://api.cloudflare.com/client/v4. */
  apiBase?: string
  timeoutMs?: number
}

export interface D1RestoreResult {
  /** The instant asked for (undefined for a restore to a bookmark). */
  at: Date | undefined
  /** The database's bookmark just before the restore: restore to it to undo (restoreD1ToBookmark). */
  undoBookmark: string
  /** The bookmark of the state after the restore, as the API reports it. */
  restoredBookmark: string | undefined
  message: string | undefined
}

/**
 * The bookmark of the database now, or of the state at `at`.
 * @example const bookmark = await getD1Bookmark({ accountId, databaseId, token, fetch })
 */
export async function getD1Bookmark(options: D1ApiOptions & { at?: Date }): Promise<string> {
  const query = options.at === undefined ? undefined : new URLSearchParams({ timestamp: formatInstant(options.at) })
  const result = await callTimeTravel(options, 'GET', 'bookmark', query)
  if (typeof result.bookmark !== 'string' || result.bookmark === '') throw new ToolkitError('L\'API D1 n\'a pas renvoyé de bookmark.', { hint: 'Réessayez ; si cela persiste, vérifiez l\'état de Cloudflare D1.' })
  return result.bookmark
}

/**
 * Restores a remote D1 database to its state at `at` (must be within the last 30 days by `now`).
 * @example const { undoBookmark } = await restoreD1At({ accountId, databaseId, token, at: new Date('2026-03-01T13:05:00Z'), fetch })
 */
export async function restoreD1At(options: D1ApiOptions & { at: Date; now?: () => Date }): Promise<D1RestoreResult> {
  const now = (options.now ?? (() => new Date()))()
  const earliest = new Date(now.getTime() - D1_TIME_TRAVEL_DAYS * 86_400_000)
  if (options.at.getTime() < earliest.getTime() || options.at.getTime() > now.getTime()) {
    throw new ToolkitError(`Instant ${formatInstant(options.at)} hors de la plage de Time Travel de D1 (${formatRange(earliest, now)}).`, {
      hint: 'D1 garde 30 jours d\'historique : choisissez un instant dans cette plage.',
      exitCode: 2,
    })
  }
  // The bookmark of now (not of `at`): restoring to it undoes this restore.
  const undoBookmark = await getD1Bookmark({ ...options, at: undefined })
  const result = await callTimeTravel(options, 'POST', 'restore', new URLSearchParams({ timestamp: formatInstant(options.at) }))
  return { at: options.at, undoBookmark, restoredBookmark: optionalString(result.bookmark), message: optionalString(result.message) }
}

/**
 * Restores a remote D1 database to a bookmark (the undoBookmark of an earlier restore, for instance).
 * @example await restoreD1ToBookmark({ accountId, databaseId, token, bookmark: result.undoBookmark, fetch })
 */
export async function restoreD1ToBookmark(options: D1ApiOptions & { bookmark: string }): Promise<D1RestoreResult> {
  if (!/^[0-9a-f-]{8,}$/i.test(options.bookmark)) throw new ToolkitError(`Bookmark D1 invalide : "${options.bookmark}".`, { hint: 'Un bookmark ressemble à 00000001-00000002-00004e2f-0a83ea2f….', exitCode: 2 })
  const undoBookmark = await getD1Bookmark(options)
  const result = await callTimeTravel(options, 'POST', 'restore', new URLSearchParams({ bookmark: options.bookmark }))
  return { at: undefined, undoBookmark, restoredBookmark: optionalString(result.bookmark), message: optionalString(result.message) }
}

interface TimeTravelResult {
  bookmark?: unknown
  message?: unknown
  previous_bookmark?: unknown
}

async function callTimeTravel(options: D1ApiOptions, method: 'GET' | 'POST', action: 'bookmark' | 'restore', query: URLSearchParams | undefined): Promise<TimeTravelResult> {
  if (!/^[0-9a-f]{32}$/i.test(options.accountId)) throw new ToolkitError(`Identifiant de compte Cloudflare invalide : "${options.accountId}".`, { hint: '32 caractères hexadécimaux (tableau de bord Cloudflare, colonne de droite).', exitCode: 2 })
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(options.databaseId)) throw new ToolkitError(`Identifiant de base D1 invalide : "${options.databaseId}".`, { hint: 'Un UUID : wrangler d1 list l\'affiche.', exitCode: 2 })
  if (options.token === '') throw new ToolkitError('Jeton Cloudflare absent.', { hint: 'Définissez CLOUDFLARE_D1_TOKEN (jeton avec le droit D1 Edit).', exitCode: 2 })
  const base = (options.apiBase ?? CLOUDFLARE_API_BASE).replace(/\/+$/, '')
  const url = `${base}/accounts/${options.accountId}/d1/database/${options.databaseId}/time_travel/${action}${query === undefined ? '' : `?${query}`}`
  const what = action === 'restore' ? 'La restauration Time Travel de D1' : 'La lecture du bookmark D1'
  let response: Response
  try {
    response = await options.fetch(url, {
      method,
      headers: { authorization: `Bearer ${options.token}`, accept: 'application/json' },
      signal: AbortSignal.timeout(options.timeoutMs ?? 60_000),
    })
  } catch (error) {
    throw new ToolkitError(`${what} a échoué : API Cloudflare injoignable (${scrub(errorText(error), options.token)}).`, { hint: 'Vérifiez la connexion réseau vers api.cloudflare.com.' })
  }
  const text = await response.text()
  let payload: { success?: boolean; errors?: { code?: number; message?: string }[]; result?: TimeTravelResult } | undefined
  try {
    payload = JSON.parse(text) as typeof payload
  } catch {
    payload = undefined
  }
  if (!response.ok || payload?.success !== true) {
    const apiErrors = (payload?.errors ?? []).map((e) => `${e.code ?? '?'} ${e.message ?? ''}`.trim()).join(' ; ')
    const detail = scrub(apiErrors || `réponse ${text.length === 0 ? 'vide' : 'illisible'}`, options.token)
    throw new ToolkitError(`${what} a échoué (HTTP ${response.status}) : ${detail}.`, {
      hint: response.status === 401 || response.status === 403 ? 'Vérifiez le jeton CLOUDFLARE_D1_TOKEN et son droit D1 Edit sur ce compte.' : 'Vérifiez les identifiants du compte et de la base (wrangler d1 list).',
    })
  }
  return payload.result ?? {}
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** Removes the token from text that came back from the network (an echoing proxy, a verbose error). */
function scrub(text: string, token: string): string {
  return token.length >= 4 ? text.split(token).join('****') : text
}

/** The engine's face (Engine.pitr): Time Travel for a remote database; nothing to set up, replicate or back up. */
export const d1Pitr: PointInTimeRecovery = {
  async replicate() {
    throw new ToolkitError('`replicate` concerne SQLite : D1 garde lui-même 30 jours d’historique (Time Travel).', { hint: 'Restaurez directement : `advanced-backup restore --at <instant> --database d1://<compte>/<base>`.', exitCode: 2 })
  },
  async setup() {
    throw new ToolkitError('Rien à configurer pour D1 : Time Travel est toujours actif (30 jours).', { hint: '`pitr setup` concerne PostgreSQL.', exitCode: 2 })
  },
  async backup() {
    throw new ToolkitError('`pitr backup` concerne PostgreSQL : D1 garde lui-même son historique.', { hint: 'Pour une copie hors de Cloudflare : `advanced-backup create --database d1://…`.', exitCode: 2 })
  },
  async stateAt(location, options) {
    if (location.engine !== 'd1') throw new Error(`not a D1 location: ${location.engine}`)
    if (location.mode !== 'remote') {
      throw new ToolkitError('Time Travel n’existe que pour une base D1 distante : Miniflare (d1://local) ne garde pas d’historique.', { hint: 'Utilisez d1://<compte>/<base> avec CLOUDFLARE_D1_TOKEN, ou restaurez une sauvegarde (`restore <id>`).', exitCode: 2 })
    }
    const token = options.environment.cloudflareD1Token
    if (token === undefined) throw new ToolkitError('CLOUDFLARE_D1_TOKEN manque pour appeler Time Travel.', { hint: 'Créez un jeton avec le droit « D1 Edit » et exportez CLOUDFLARE_D1_TOKEN.', exitCode: 2 })
    const restored = await restoreD1At({
      accountId: location.accountId,
      databaseId: location.databaseId,
      token,
      at: options.at,
      fetch: globalThis.fetch,
      ...(options.environment.cloudflareApiBase !== undefined ? { apiBase: options.environment.cloudflareApiBase } : {}),
    })
    return {
      kind: 'restored-in-place',
      reachedAt: options.at,
      report: {
        result: { engine: 'd1', at: options.at.toISOString(), undoBookmark: restored.undoBookmark, restoredBookmark: restored.restoredBookmark ?? null, message: restored.message ?? null },
        lines: [
          `Base D1 ${location.databaseId} restaurée par Time Travel à ${formatInstant(options.at)}${restored.restoredBookmark !== undefined ? ` (bookmark ${restored.restoredBookmark})` : ''}.`,
          `   Pour annuler : restaurez le bookmark d’avant, ${restored.undoBookmark} (npx wrangler d1 time-travel restore <base> --bookmark=${restored.undoBookmark}).`,
        ],
      },
    }
  },
}
