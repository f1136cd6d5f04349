/**
 * The health suite: the same six checks on every configured engine, one engine after the other (so
 * that the timings of one do not include the work of another), each result as data.
 *
 *   connect            open the database, a first query through Prisma, the server's version
 *   migrations         the schema is up to date with the committed migrations
 *   read plans         the plans can be read (the app needs them)
 *   relation query     the app's joins, and the consistency of what they return
 *   write/read/delete  marked temporary rows, in one transaction where the engine has them
 *   rollback           a failed transaction leaves nothing behind
 *
 * An engine that is not configured is skipped with its reason, never passed; one that is configured
 * but cannot be reached fails its connect check (the run was asked to check it). The
 * write checks run only on a database whose schema is up to date, and never with `readOnly`.
 * The one database the suite may change beyond its temporary rows is an empty local D1 (Miniflare,
 * a development emulator): it is given the schema and the demo data (`prepareLocalD1`).
 */
import { ToolkitError, describeError, frenchErrorText } from '../errors.ts'
import type { ToolkitEnvironment } from '../environment.ts'
import type { ProgressListener } from '../progress.ts'
import type { DatabaseHandle } from '../db/connection.ts'
import { openDatabase, type OpenDatabaseOptions } from '../db/open.ts'
import { redactUrl } from '../db/url.ts'
import { engineLabel, engineNamed } from '../engines/index.ts'
import { newMarker } from './_marker.ts'
import { checkMigrations, checkRollback, hasNoSchema, prepareLocalD1, queryRelations, readPlans, writeReadDelete } from './checks.ts'
import { HEALTH_REPORT_FORMAT, HEALTH_REPORT_VERSION, type HealthReport } from './results.ts'
import { HEALTH_CHECKS, engineStatus, skippedChecks, tallyChecks, type CheckResult, type EngineResult, type HealthCheckName } from './results.ts'
import type { HealthTarget } from './targets.ts'
import { serverVersion, toolVersions } from './versions.ts'

export interface RunHealthSuiteOptions {
  /** From resolveHealthTargets. */
  targets: readonly HealthTarget[]
  environment: ToolkitEnvironment
  /** Base of relative SQLite and D1 paths. */
  cwd: string
  /** Skip the checks that write (temporary rows). Default: false. */
  readOnly?: boolean
  /** Give an empty local D1 (Miniflare) the schema and the demo data before checking it. Default: true. */
  prepareLocalD1?: boolean
  now?: () => Date
  /** One event per check done, per engine. */
  onProgress?: ProgressListener
  /** How databases are opened; tests may count or break the opening. */
  open?: (url: string, options: OpenDatabaseOptions) => Promise<DatabaseHandle>
}

/**
 * Runs the suite on every target and returns the report; never prints, never throws for a database problem.
 * @example
 * // environment: resolved once by the script (scripts/lib/environment.ts)
 * const report = await runHealthSuite({ targets: resolveHealthTargets({ environment, cwd }), environment, cwd })
 * report.summary.ok // false when any check failed
 */
export async function runHealthSuite(options: RunHealthSuiteOptions): Promise<HealthReport> {
  const now = options.now ?? (() => new Date())
  const startedAt = now()
  const started = performance.now()
  const engines: EngineResult[] = []
  for (const target of options.targets) engines.push(await checkEngine(target, { ...options, now }))
  const all = engines.flatMap((engine) => engine.checks)
  const tally = tallyChecks(all)
  return {
    format: HEALTH_REPORT_FORMAT,
    version: HEALTH_REPORT_VERSION,
    startedAt: startedAt.toISOString(),
    durationMs: round(performance.now() - started),
    versions: toolVersions(),
    selected: options.targets.map((target) => target.engine),
    readOnly: options.readOnly ?? false,
    engines,
    summary: { passed: tally.passed, failed: tally.failed, skipped: tally.skipped, ok: tally.failed === 0 },
  }
}

type EngineOptions = RunHealthSuiteOptions & { now: () => Date }

async function checkEngine(target: HealthTarget, options: EngineOptions): Promise<EngineResult> {
  const { engine } = target
  const label = engineLabel(engine)
  const results: CheckResult[] = []
  const progress = () => options.onProgress?.({ label, done: results.length, total: HEALTH_CHECKS.length, unit: 'steps' })
  const finish = (result: Omit<EngineResult, 'status' | 'checks' | 'notes'> & { notes?: string[] }): EngineResult => {
    progress()
    return { ...result, notes: result.notes ?? [], status: engineStatus(results), checks: results }
  }
  const rest = () => HEALTH_CHECKS.filter((check) => !results.some((result) => result.check === check))

  if (target.kind === 'not-configured') {
    results.push(...skippedChecks(engine, target.reason))
    return { ...finish({ engine, label, reason: target.reason, ...(target.hint ? { hint: target.hint } : {}) }), status: 'skipped' }
  }
  if (target.kind === 'invalid') {
    results.push({ engine, check: 'connect', status: 'failed', ms: 0, error: target.error, ...(target.hint ? { hint: target.hint } : {}) })
    results.push(...skippedChecks(engine, 'non lancé : connexion impossible', rest()))
    return finish({ engine, label, source: target.source })
  }

  const base = { engine, label, target: redactUrl(target.url), source: target.source }
  const open = options.open ?? openDatabase
  const connectStarted = performance.now()
  let db: DatabaseHandle | undefined
  let version: string
  try {
    db = await open(target.url, { cwd: options.cwd, environment: options.environment })
    // The first query through Prisma loads its query compiler: count that as connecting, not as reading the plans.
    await db.prisma.$queryRawUnsafe('SELECT 1')
    version = await serverVersion(db)
  } catch (error) {
    await db?.close().catch(() => {})
    // The database was asked for (a flag, a variable, DATABASE_URL): not reaching it is a failure.
    const unreachable = isUnreachable(error)
    const message = unreachable ? `injoignable : ${describeError(error)}` : describeError(error)
    const hint = unreachable ? `Démarrez le serveur, ou retirez ${target.source} pour ne pas tester ${label}.` : error instanceof ToolkitError ? error.hint : undefined
    results.push({ engine, check: 'connect', status: 'failed', ms: round(performance.now() - connectStarted), error: message, ...(hint ? { hint } : {}) })
    results.push(...skippedChecks(engine, 'non lancé : connexion impossible', rest()))
    return finish(base)
  }
  const location = db.location
  const localState = engineNamed(location.engine).localState(location)
  const where = localState !== undefined ? `, état dans ${localState}` : ''
  results.push({ engine, check: 'connect', status: 'passed', ms: round(performance.now() - connectStarted), detail: `${version}${where}` })
  progress()

  const notes: string[] = []
  const opened = db
  const run = async (check: HealthCheckName, work: () => Promise<string>) => {
    const checkStarted = performance.now()
    let result: CheckResult
    try {
      const detail = await work()
      result = { engine, check, status: 'passed', ms: round(performance.now() - checkStarted), detail }
    } catch (error) {
      const hint = error instanceof ToolkitError ? error.hint : undefined
      result = { engine, check, status: 'failed', ms: round(performance.now() - checkStarted), error: describeCheckError(error), ...(hint ? { hint } : {}) }
    }
    results.push(result)
    progress()
    return result
  }
  const skip = (check: HealthCheckName, reason: string) => {
    results.push({ engine, check, status: 'skipped', ms: 0, detail: reason })
    progress()
  }

  try {
    let preparation: unknown
    if ((options.prepareLocalD1 ?? true) && localState !== undefined) {
      try {
        if (await hasNoSchema(opened.sql)) notes.push(await prepareLocalD1(opened, options.now))
      } catch (error) {
        preparation = error
      }
    }
    const migrations =
      preparation === undefined
        ? await run('migrations', () => checkMigrations(opened))
        : await run('migrations', () => Promise.reject(new ToolkitError(`la préparation du D1 local vide a échoué : ${describeError(preparation)}`, { cause: preparation })))
    await run('read-plans', () => readPlans(opened))
    await run('relation-query', () => queryRelations(opened))
    const writeSkip = options.readOnly
      ? 'non lancé : lecture seule (--read-only)'
      : migrations.status !== 'passed'
        ? 'non lancé : le schéma n’est pas à jour (voir migrations), aucune ligne de test n’est écrite'
        : undefined
    if (writeSkip !== undefined) {
      skip('write-read-delete', writeSkip)
      skip('rollback', writeSkip)
    } else {
      await run('write-read-delete', () => writeReadDelete(opened, { marker: newMarker(options.now()), now: options.now }))
      await run('rollback', () => checkRollback(opened, { marker: newMarker(options.now()) }))
    }
  } finally {
    await opened.close().catch((error: unknown) => notes.push(`la fermeture de la connexion a échoué : ${describeError(error)}`))
  }
  return finish({ ...base, serverVersion: version, notes })
}

// Network-level failures: the server is not there (or not answering), as opposed to refusing us.
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET',
])
const UNREACHABLE_MESSAGES = /timeout expired|connection timeout|timeout exceeded when trying to connect|Connection terminated unexpectedly/i

/**
 * True when an error (or one of its causes) says that the server could not be reached. Wrong
 * credentials, a missing database or a bad URL are not "unreachable": they fail the connect check.
 */
export function isUnreachable(error: unknown): boolean {
  const seen = new Set<unknown>()
  const visit = (current: unknown): boolean => {
    if (typeof current !== 'object' || current === null || seen.has(current)) return false
    seen.add(current)
    const { code, name, message, cause, errors } = current as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown; errors?: unknown }
    if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return true
    if (name === 'TimeoutError') return true
    if (typeof message === 'string' && UNREACHABLE_MESSAGES.test(message)) return true
    return visit(cause) || (Array.isArray(errors) && errors.some(visit))
  }
  return visit(error)
}

/**
 * Prisma's messages start with "Invalid `prisma.plan.findMany()` invocation in <file>", then a code
 * frame, and end with the reason: keep the reason (and the error code).
 */
function describeCheckError(error: unknown): string {
  if (error instanceof Error && /^\s*Invalid `[^`]*` invocation/.test(error.message)) {
    const reason = frenchErrorText(error.message.trim().split('\n').at(-1)!.trim())
    const code = (error as { code?: unknown }).code
    return typeof code === 'string' ? `${reason} (${code})` : reason
  }
  return describeError(error)
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10
}
