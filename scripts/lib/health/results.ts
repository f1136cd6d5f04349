/**
 * What a health run produces: one result per engine and check, as data. The suite never prints;
 * the report and the terminal table are both rendered from these objects.
 */
import type { EngineName } from '../db/url.ts'
import type { ToolVersions } from './versions.ts'
import { engineLabel } from '../engines/index.ts'

/** The checks, in the order they run and are shown. */
export const HEALTH_CHECKS = ['connect', 'migrations', 'read-plans', 'relation-query', 'write-read-delete', 'rollback'] as const

export type HealthCheckName = (typeof HEALTH_CHECKS)[number]

export const CHECK_LABELS: Record<HealthCheckName, string> = {
  connect: 'connexion',
  migrations: 'migrations',
  'read-plans': 'lecture des plans',
  'relation-query': 'requête avec relations',
  'write-read-delete': 'écriture/lecture/suppression',
  rollback: 'rollback',
}

export type CheckStatus = 'passed' | 'failed' | 'skipped'

export interface CheckResult {
  engine: EngineName
  check: HealthCheckName
  status: CheckStatus
  /** Wall time of the check in milliseconds (0.1 ms precision); 0 when skipped. */
  ms: number
  /** What was found (passed) or why it was not run (skipped). */
  detail?: string
  /** What went wrong (failed). */
  error?: string
  /** What to do about it. */
  hint?: string
}

export interface EngineResult {
  engine: EngineName
  /** SQLite, PostgreSQL, D1. */
  label: string
  /** The database checked, password masked; absent when none is configured. */
  target?: string
  /** Where the target came from: `DATABASE_URL`, `--postgres`, `default`… */
  source?: string
  /** `SQLite 3.50.2`, `PostgreSQL 15.14`, `workerd 1.20260426.1 (Miniflare 4.20260426.0)`. */
  serverVersion?: string
  /** `skipped` when the engine was not run at all (not configured, unreachable); then `reason` says why. */
  status: CheckStatus
  reason?: string
  hint?: string
  /** Things the run did that an operator should know about (the local D1 was prepared…). */
  notes: string[]
  checks: CheckResult[]
}

export interface EngineTally {
  passed: number
  failed: number
  skipped: number
  total: number
}

/** @example tallyChecks(result.checks) // { passed: 4, failed: 0, skipped: 2, total: 6 } */
export function tallyChecks(checks: readonly CheckResult[]): EngineTally {
  const count = (status: CheckStatus) => checks.filter((check) => check.status === status).length
  return { passed: count('passed'), failed: count('failed'), skipped: count('skipped'), total: checks.length }
}

/** `failed` if any check failed, `skipped` if none ran, else `passed`. @example engineStatus(result.checks) // 'passed' */
export function engineStatus(checks: readonly CheckResult[]): CheckStatus {
  const tally = tallyChecks(checks)
  if (tally.failed > 0) return 'failed'
  return tally.passed === 0 ? 'skipped' : 'passed'
}

/**
 * One line per engine, the way the spec writes it.
 * @example summaryLine(sqliteResult) // "SQLite 6/6 OK"; "PostgreSQL 3/6 FAILED (migrations, read plans)"; "D1 skipped: not configured…"
 */
export function summaryLine(result: EngineResult): string {
  const tally = tallyChecks(result.checks)
  const label = result.label || engineLabel(result.engine)
  if (result.status === 'skipped' && tally.passed === 0 && tally.failed === 0) return `${label} non lancé : ${result.reason ?? 'non lancé'}`
  const score = `${label} ${tally.passed}/${tally.total}`
  const skipped = tally.skipped > 0 ? `, ${tally.skipped} non lancé(s)` : ''
  if (tally.failed === 0) return `${score} OK${skipped}`
  const failed = result.checks.filter((check) => check.status === 'failed').map((check) => CHECK_LABELS[check.check])
  return `${score} ÉCHEC (${failed.join(', ')})${skipped}`
}

/** Every check of an engine that could not run, with the same reason. @example skippedChecks('postgres', 'not configured: POSTGRES_URL is not set') */
export function skippedChecks(engine: EngineName, reason: string, checks: readonly HealthCheckName[] = HEALTH_CHECKS): CheckResult[] {
  return checks.map((check) => ({ engine, check, status: 'skipped', ms: 0, detail: reason }))
}

export const HEALTH_REPORT_FORMAT = 'ia-poste-manager/database-health-report'
export const HEALTH_REPORT_VERSION = 1

/** One run of the health suite: what RESULTATS_TESTS_DATABASES.md and its .json hold. */
export interface HealthReport {
  format: typeof HEALTH_REPORT_FORMAT
  version: typeof HEALTH_REPORT_VERSION
  /** ISO 8601, UTC. */
  startedAt: string
  durationMs: number
  versions: ToolVersions
  /** The engines the run was asked to check (`--only`), in order. */
  selected: EngineName[]
  /** `--read-only`: the write and rollback checks were skipped. */
  readOnly: boolean
  engines: EngineResult[]
  summary: {
    passed: number
    failed: number
    skipped: number
    /** No check failed. */
    ok: boolean
  }
}
