/**
 * The dashboard as text, in the spec's layout and French labels. Rendering returns strings; the
 * script prints them.
 */
import { formatBytes, formatDuration } from '../format.ts'
import type { Recommendation } from './advisor.ts'
import type { PerformanceMetrics } from './performance-metrics.ts'
import type { PerformanceTestResult } from './performance-tests.ts'

const RULE = '='.repeat(70)
const WIDTH = 100

/** 12.34 → "12ms", 3.21 → "3.2ms": whole milliseconds from 10 ms up. */
export function formatMs(ms: number): string {
  return `${ms >= 10 ? Math.round(ms) : ms.toFixed(1)}ms`
}

const percent = (part: number, whole: number) => `${whole === 0 ? 0 : Math.round((part / whole) * 100)}%`
const ratio = (value: number) => `${(value * 100).toFixed(1)}%`

/** @example process.stdout.write(renderTestResults(metrics.tests)) */
export function renderTestResults(tests: readonly PerformanceTestResult[]): string {
  const lines = ['🚀 Exécution des tests de performance...', '']
  for (const test of tests) {
    lines.push(`Test ${test.number}: ${test.name}`)
    if (test.status === 'skipped') lines.push(`  – Ignoré: ${test.reason ?? ''}`)
    else if (test.status === 'failed') lines.push(`  ✗ Échec - Durée: ${formatMs(test.durationMs)}: ${test.reason ?? ''}`)
    else lines.push(`  ✓ ${test.count === undefined ? '' : `${test.count} ${test.unit ?? ''} - `}Durée: ${formatMs(test.durationMs)}`)
    lines.push('')
  }
  return `${lines.join('\n')}\n`
}

/** @example process.stdout.write(renderDashboard(await dashboard.analyzePerformance())) */
export function renderDashboard(metrics: PerformanceMetrics): string {
  const g = metrics.globalMetrics
  const { fastMs, slowMs } = metrics.thresholds
  const lines = [RULE, 'DASHBOARD DE PERFORMANCE - IA Poste Manager', RULE, `Base: ${metrics.database} (${metrics.engine})`, '']

  lines.push('MÉTRIQUES GLOBALES:')
  lines.push(`  Total requêtes: ${g.totalQueries} (${g.totalSqlStatements} instruction${g.totalSqlStatements === 1 ? '' : 's'} SQL${g.failedQueries > 0 ? `, ${g.failedQueries} en échec` : ''})`)
  lines.push(`  Durée moyenne: ${g.averageDuration.toFixed(1)}ms (temps base de données: ${g.averageDbDuration.toFixed(1)}ms)`)
  lines.push(`  p50 / p95 / p99 / max: ${formatMs(g.p50Duration)} / ${formatMs(g.p95Duration)} / ${formatMs(g.p99Duration)} / ${formatMs(g.maxDuration)}`)
  lines.push(`  Requêtes rapides (<${fastMs}ms): ${g.fastQueries} (${percent(g.fastQueries, g.totalQueries)})`)
  lines.push(`  Requêtes moyennes (${fastMs}-${slowMs}ms): ${g.mediumQueries} (${percent(g.mediumQueries, g.totalQueries)})`)
  lines.push(`  Requêtes lentes (>${slowMs}ms): ${g.slowQueriesCount} (${percent(g.slowQueriesCount, g.totalQueries)})`)
  const db = g.databaseTimeBuckets
  lines.push(`  Par temps base: rapides ${db.fast} (${percent(db.fast, g.totalQueries)}), moyennes ${db.medium} (${percent(db.medium, g.totalQueries)}), lentes ${db.slow} (${percent(db.slow, g.totalQueries)})`)
  if (metrics.window.droppedOperations > 0) lines.push(`  Non conservées (fenêtre pleine): ${metrics.window.droppedOperations}`)
  lines.push('')

  lines.push('TOP 5 REQUÊTES LENTES:')
  if (g.topOperations.length === 0) lines.push('  Aucune requête mesurée.')
  g.topOperations.forEach((op, i) => {
    lines.push(`  ${i + 1}. ${formatMs(op.durationMs)} - ${op.model ?? 'SQL brut'} (${op.kind}) ${op.action}, base ${formatMs(op.dbDurationMs)}`)
    if (op.sql !== null) lines.push(`     ${op.sql}`)
  })
  lines.push('')

  lines.push('TOP 5 PAR TEMPS BASE DE DONNÉES:')
  if (g.topDatabaseOperations.length === 0) lines.push('  Aucune requête mesurée.')
  g.topDatabaseOperations.forEach((op, i) => {
    lines.push(`  ${i + 1}. base ${formatMs(op.dbDurationMs)} - ${op.model ?? 'SQL brut'} (${op.kind}) ${op.action}, opération ${formatMs(op.durationMs)}`)
    if (op.sql !== null) lines.push(`     ${op.sql}`)
  })
  lines.push('')

  lines.push('EMPREINTES SQL (top 5 par temps total):')
  if (metrics.fingerprints.length === 0) lines.push('  Aucune instruction SQL mesurée.')
  metrics.fingerprints.slice(0, 5).forEach((f, i) => {
    lines.push(
      `  ${i + 1}. ${f.count}× moy ${formatMs(f.meanMs)} · p50 ${formatMs(f.p50Ms)} · p95 ${formatMs(f.p95Ms)} · p99 ${formatMs(f.p99Ms)} · max ${formatMs(f.maxMs)} · total ${formatMs(f.totalMs)}`,
    )
    lines.push(`     ${f.display}`)
  })
  lines.push('')

  lines.push('MÉTRIQUES PAR TENANT:')
  if (metrics.tenantMetrics.length === 0) lines.push('  Aucune requête attribuée à un tenant.')
  for (const t of metrics.tenantMetrics.slice(0, 10)) {
    const known = (value: number | null, show: (n: number) => string = String) => (value === null ? 'n/a' : show(value))
    lines.push(`  ${t.tenantName ?? `${t.tenantId} (introuvable)`}:`)
    lines.push(`    - Requêtes: ${t.queryCount}`)
    lines.push(`    - Durée moyenne: ${formatMs(t.averageDuration)} (base ${formatMs(t.averageDbDuration)})`)
    lines.push(`    - Dossiers: ${known(t.totalDossiers)}`)
    lines.push(`    - Clients: ${known(t.totalClients)}`)
    lines.push(`    - Stockage: ${known(t.storageUsed, formatBytes)}`)
  }
  if (metrics.tenantMetrics.length > 10) lines.push(`  … et ${metrics.tenantMetrics.length - 10} autres tenants (voir le JSON)`)
  if (metrics.tenantMetrics.length > 0) lines.push(...wrap(`  Stockage calculé: ${metrics.system.storageMethod}`, '    '))
  lines.push('')

  const cache = metrics.cache
  lines.push('STATISTIQUES DE CACHE:')
  if (cache.hitRate === null) lines.push(...wrap(`  Taux de succès du cache: ${cache.source}`, '    '))
  else {
    lines.push(`  Taux de succès du cache: ${ratio(cache.hitRate)} (${cache.blocksHit} blocs en cache, ${cache.blocksRead} lus sur disque)`)
    lines.push(...wrap(`    Source: ${cache.source}`, '      '))
    if (cache.tables?.hitRate != null) lines.push(`    Tables de l'application: ${ratio(cache.tables.hitRate)} (${cache.tables.blocksHit} en cache, ${cache.tables.blocksRead} lus)`)
  }
  if (cache.measured !== undefined) {
    lines.push(`    Mesuré: ${Object.entries(cache.measured).map(([k, v]) => `${k === 'pageCacheBytes' ? 'cache de pages' : k === 'databaseBytes' ? 'taille de la base' : k} ${formatBytes(v)}`).join(', ')}`)
  }
  const repeated = cache.repeatedReads
  lines.push(`  Lectures identiques répétées: ${repeated.repeats} sur ${repeated.reads} (${repeated.ratio === null ? 'n/a' : ratio(repeated.ratio)})`)
  lines.push('')

  lines.push("RECOMMANDATIONS D'OPTIMISATION:")
  if (metrics.recommendations.length === 0) lines.push('  ✓ Aucune: rien dans les mesures de cette fenêtre ne demande une action.')
  for (const recommendation of metrics.recommendations) lines.push(...wrap(`  ${icon(recommendation)} ${recommendation.message}`, '      '))
  lines.push('')

  const s = metrics.system
  lines.push('STATISTIQUES SYSTÈME:')
  lines.push(`  Uptime: ${formatDuration(s.uptimeMs)}`)
  lines.push(`  Connexions actives: ${s.activeConnections ?? `n/a${s.note === undefined ? '' : ` (${s.note})`}`}`)
  if (s.openConnections !== null) lines.push(`  Connexions ouvertes: ${s.openConnections}`)
  lines.push(`  Pool size: ${s.poolSize ?? 'n/a'}`)
  if (s.serverUptimeMs !== null) lines.push(`  Uptime du serveur: ${formatDuration(s.serverUptimeMs)}`)
  lines.push('')

  if (metrics.notes.length > 0) {
    lines.push('REMARQUES:')
    for (const note of metrics.notes) lines.push(...wrap(`  - ${note}`, '    '))
    lines.push('')
  }
  lines.push(RULE)
  return `${lines.join('\n')}\n`
}

function icon(recommendation: Recommendation): string {
  return recommendation.severity === 'warning' ? '⚠️ ' : '💡'
}

/** Word-wraps one line at WIDTH columns, continuation lines indented. */
function wrap(line: string, indent: string): string[] {
  const out: string[] = []
  let current = ''
  for (const word of line.split(/(?<=\S) (?=\S)/)) {
    if (current !== '' && current.length + 1 + word.length > WIDTH) {
      out.push(current)
      current = indent + word
    } else current = current === '' ? word : `${current} ${word}`
  }
  out.push(current)
  return out
}
