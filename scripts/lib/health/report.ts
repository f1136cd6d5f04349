/**
 * The test report: RESULTATS_TESTS_DATABASES.md for people and its JSON twin (same name, `.json`)
 * for tools. One versioned type, validated when read.
 *
 * Invariant: the JSON is the record and is written last; the Markdown is rendered from the same
 * object and written first. Each file is replaced atomically, so a reader sees a whole old report or
 * a whole new one, never half of one.
 */
import { existsSync, readFileSync } from 'node:fs'
import { ToolkitError, describeError } from '../errors.ts'
import { writeFileAtomic } from '../fs/atomic.ts'
import { HEALTH_CHECKS, HEALTH_REPORT_FORMAT, HEALTH_REPORT_VERSION, type CheckResult, type HealthReport } from './results.ts'
import { renderHealthMarkdown } from './markdown.ts'

/** The spec's name, in the working directory. */
export const DEFAULT_REPORT_FILE = 'RESULTATS_TESTS_DATABASES.md'


/** `RESULTATS_TESTS_DATABASES.md` → `RESULTATS_TESTS_DATABASES.json`; any other name gets `.json` appended. */
export function reportJsonPath(markdownPath: string): string {
  return /\.md$/i.test(markdownPath) ? markdownPath.replace(/\.md$/i, '.json') : `${markdownPath}.json`
}

/**
 * Writes the Markdown report and then its JSON twin, each atomically.
 * @example writeHealthReport(report, 'RESULTATS_TESTS_DATABASES.md') // { markdownPath, jsonPath: 'RESULTATS_TESTS_DATABASES.json' }
 */
export function writeHealthReport(report: HealthReport, markdownPath: string): { markdownPath: string; jsonPath: string } {
  const jsonPath = reportJsonPath(markdownPath)
  for (const [path, content] of [
    [markdownPath, renderHealthMarkdown(report)],
    [jsonPath, `${JSON.stringify(report, null, 2)}\n`],
  ] as const) {
    try {
      writeFileAtomic(path, content)
    } catch (error) {
      throw new ToolkitError(`écriture du rapport de tests ${path} impossible : ${describeError(error)}`, {
        hint: 'Choisissez un emplacement inscriptible avec --report <chemin>, ou renoncez aux fichiers avec --no-report.',
        cause: error,
      })
    }
  }
  return { markdownPath, jsonPath }
}

/**
 * Reads the last report (its JSON twin) and validates it.
 * @example readHealthReport('RESULTATS_TESTS_DATABASES.md').summary.ok
 */
export function readHealthReport(markdownPath: string): HealthReport {
  const jsonPath = reportJsonPath(markdownPath)
  if (!existsSync(jsonPath)) {
    throw new ToolkitError(`pas encore de rapport de tests : ${jsonPath} n’existe pas`, {
      hint: 'Lancez d’abord les tests : npm run test:db (ou npx tsx scripts/test-all-databases.ts).',
    })
  }
  let value: unknown
  try {
    value = JSON.parse(readFileSync(jsonPath, 'utf8'))
  } catch (error) {
    throw new ToolkitError(`${jsonPath} n’est pas un rapport de tests valide : ${describeError(error)}`, { hint: 'Relancez les tests pour le réécrire : npm run test:db.', cause: error })
  }
  try {
    return parseHealthReport(value)
  } catch (error) {
    throw new ToolkitError(`${jsonPath} n’est pas un rapport de tests valide : ${describeError(error)}`, { hint: 'Relancez les tests pour le réécrire : npm run test:db.', cause: error })
  }
}

const ENGINE_NAMES: readonly string[] = ['sqlite', 'postgres', 'd1']
const STATUSES: readonly string[] = ['passed', 'failed', 'skipped']

/** Checks that a parsed JSON value is a HealthReport of this version; throws naming the first bad field. */
export function parseHealthReport(value: unknown): HealthReport {
  const report = object(value, 'le rapport')
  if (report.format !== HEALTH_REPORT_FORMAT) throw new Error(`format ${JSON.stringify(report.format)}, attendu "${HEALTH_REPORT_FORMAT}"`)
  if (report.version !== HEALTH_REPORT_VERSION) {
    throw new Error(
      typeof report.version === 'number' && report.version > HEALTH_REPORT_VERSION
        ? `la version ${report.version} vient d’un outil plus récent (celui-ci lit la version ${HEALTH_REPORT_VERSION})`
        : `version ${JSON.stringify(report.version)}, attendu ${HEALTH_REPORT_VERSION}`,
    )
  }
  string(report, 'startedAt')
  if (Number.isNaN(Date.parse(report.startedAt as string))) throw new Error('startedAt n’est pas une date')
  number(report, 'durationMs')
  const versions = object(report.versions, 'versions')
  for (const key of ['tool', 'node', 'prisma']) string(versions, key, 'versions.')
  const selected = array(report.selected, 'selected')
  selected.forEach((engine, i) => oneOf(engine, ENGINE_NAMES, `selected[${i}]`))
  boolean(report, 'readOnly')
  array(report.engines, 'engines').forEach((engine, i) => parseEngine(engine, `engines[${i}]`))
  const summary = object(report.summary, 'summary')
  for (const key of ['passed', 'failed', 'skipped']) number(summary, key, 'summary.')
  boolean(summary, 'ok', 'summary.')
  return value as HealthReport
}

function parseEngine(value: unknown, path: string): void {
  const engine = object(value, path)
  oneOf(engine.engine, ENGINE_NAMES, `${path}.engine`)
  string(engine, 'label', `${path}.`)
  oneOf(engine.status, STATUSES, `${path}.status`)
  for (const key of ['target', 'source', 'serverVersion', 'reason', 'hint']) optionalString(engine, key, `${path}.`)
  array(engine.notes, `${path}.notes`).forEach((note, i) => {
    if (typeof note !== 'string') throw new Error(`${path}.notes[${i}] doit être une chaîne`)
  })
  array(engine.checks, `${path}.checks`).forEach((check, i) => parseCheck(check, `${path}.checks[${i}]`))
}

function parseCheck(value: unknown, path: string): void {
  const check = object(value, path) as Partial<Record<keyof CheckResult, unknown>>
  oneOf(check.engine, ENGINE_NAMES, `${path}.engine`)
  oneOf(check.check, HEALTH_CHECKS, `${path}.check`)
  oneOf(check.status, STATUSES, `${path}.status`)
  number(check, 'ms', `${path}.`)
  for (const key of ['detail', 'error', 'hint']) optionalString(check, key, `${path}.`)
}

function object(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${path} doit être un objet`)
  return value as Record<string, unknown>
}
function array(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${path} doit être un tableau`)
  return value
}
function string(parent: Record<string, unknown>, key: string, prefix = ''): void {
  if (typeof parent[key] !== 'string') throw new Error(`${prefix}${key} doit être une chaîne`)
}
function optionalString(parent: Record<string, unknown>, key: string, prefix = ''): void {
  if (parent[key] !== undefined) string(parent, key, prefix)
}
function number(parent: Record<string, unknown>, key: string, prefix = ''): void {
  if (typeof parent[key] !== 'number' || !Number.isFinite(parent[key])) throw new Error(`${prefix}${key} doit être un nombre`)
}
function boolean(parent: Record<string, unknown>, key: string, prefix = ''): void {
  if (typeof parent[key] !== 'boolean') throw new Error(`${prefix}${key} doit valoir true ou false`)
}
function oneOf(value: unknown, allowed: readonly string[], path: string): void {
  if (typeof value !== 'string' || !allowed.includes(value)) throw new Error(`${path} doit valoir ${allowed.join(', ')}, reçu ${JSON.stringify(value)}`)
}
