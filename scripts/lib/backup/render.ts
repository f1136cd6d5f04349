/**
 * The human form of each result, in the spec's style (French labels): pure functions from a
 * result object to text, so `--json` and the text are two views of the same object.
 */
import { isAbsolute, relative } from 'node:path'
import { formatBytes, formatDuration } from '../format.ts'
import { engineLabel } from '../engines/index.ts'
import type { CreateResult, ListResult, PruneResult, RekeyResult, StatsResult } from './backup-system.ts'
import { CHECK_STATUS_LABELS, type FileCheck, type VerifyReport } from './catalog/verify.ts'
import type { StandaloneExportResult } from './create/export-only.ts'

export interface RenderOptions {
  /** Paths are shown relative to this folder when they are inside it. */
  cwd: string
  /** Dates are shown in this time zone (default: the machine's). */
  timeZone?: string
}

export function formatDate(iso: string, options: Pick<RenderOptions, 'timeZone'> = {}): string {
  return new Intl.DateTimeFormat('fr-FR', { dateStyle: 'short', timeStyle: 'medium', timeZone: options.timeZone }).format(new Date(iso))
}

function shown(path: string, options: RenderOptions): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) return path.replace(/\/$/, '')
  const rel = relative(options.cwd, path)
  return rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? path : rel
}

const yes = (value: boolean) => (value ? 'oui' : 'non')

export function renderCreate(result: CreateResult, options: RenderOptions): string {
  const m = result.metadata
  const lines = [
    `✅ Backup créé: ${m.id}`,
    `   Fichier: ${shown(result.path, options)}${m.compressed ? '' : '/'}`,
    `   Source: ${engineLabel(m.engine)} ${m.source}`,
    `   Taille: ${formatBytes(m.size)}${m.compressed ? ` (contenu ${formatBytes(m.contentSize)}, compression ${(m.contentSize / Math.max(1, m.size)).toFixed(1)}×)` : ''}`,
    `   Hash: ${m.hash} (SHA-256 du manifeste des fichiers)`,
    `   Tables: ${m.tables.map((t) => `${t.name} ${t.rows.toLocaleString('fr-FR')}`).join(', ')}`,
    m.incremental ? `   Incrémental: changements depuis ${m.parentId} (pas d'exports)` : `   Formats: ${m.exportFormats.join(', ')}`,
    `   Vérifié: ${yes(m.verified)}`,
    ...(m.encryption ? [`   Chiffré: oui (AES-256-GCM, clé ${m.encryption.key.kekId})`] : []),
    `   Durée: ${formatDuration(m.durationMs)}`,
    `   ${renderRotationLine(result.rotation)}`,
  ]
  if (result.offsite) {
    lines.push(`   Copie hors site: ${result.offsite.location.replace(/\/$/, '')}/${result.offsite.archive.key} (${formatBytes(result.offsite.archive.size)}, SHA-256 confirmé) puis ${result.offsite.metadata.key}`)
    lines.push(`   ${renderRotationLine(result.offsite.rotation).replace('Rotation', 'Rotation hors site')}`)
    if (result.offsite.sweepWarning) lines.push(`⚠️  ${result.offsite.sweepWarning}`)
    if (result.offsite.swept.length > 0) lines.push(`   Envois interrompus supprimés hors site: ${result.offsite.swept.join(', ')}`)
  }
  if (result.cleaned.length > 0) lines.push(`   Restes d'une exécution interrompue supprimés: ${result.cleaned.join(', ')}`)
  for (const warning of m.warnings) lines.push(`⚠️  ${warning}`)
  return lines.join('\n') + '\n'
}

/** What `export` prints: the folder, its files and how to check them. */
export function renderExport(result: StandaloneExportResult, options: RenderOptions): string {
  const m = result.manifest
  const lines = [
    `✅ Export écrit: ${shown(result.path, options)}/`,
    `   Source: ${engineLabel(m.engine)} ${m.source}`,
    `   Fichiers: ${m.files.map((f) => `${f.path} (${formatBytes(f.size)})`).join(', ')}`,
    `   Tables: ${m.tables.map((t) => `${t.name} ${t.rows.toLocaleString('fr-FR')}`).join(', ')}`,
    `   Vérifier: cd ${shown(result.path, options)} && sha256sum -c SHA256SUMS`,
    `   Durée: ${formatDuration(m.durationMs)}`,
  ]
  if (result.cleaned.length > 0) lines.push(`   Restes d'une exécution interrompue supprimés: ${result.cleaned.join(', ')}`)
  for (const warning of m.warnings) lines.push(`⚠️  ${warning}`)
  return lines.join('\n') + '\n'
}

/** `garder 10` or `garder last 3, daily 7, weekly 4, monthly 12` (per source). */
function policyText(result: PruneResult): string {
  const p = result.policy
  const parts = [p.keepLast ? `${p.keepLast} derniers` : '', p.keepDaily ? `${p.keepDaily} jours` : '', p.keepWeekly ? `${p.keepWeekly} semaines` : '', p.keepMonthly ? `${p.keepMonthly} mois` : ''].filter(Boolean)
  return `garder ${parts.join(', ')} par source`
}

function renderRotationLine(rotation: PruneResult): string {
  const removed = rotation.removed.length === 0 ? 'aucun supprimé' : `${rotation.removed.length} supprimé(s): ${rotation.removed.join(', ')}`
  return `Rotation (${policyText(rotation)}): ${rotation.kept.length} conservé(s), ${removed}`
}

export function renderList(result: ListResult, options: RenderOptions): string {
  if (result.backups.length === 0) return `Aucun backup dans ${shown(result.backupDir, options)}/\n`
  const rows = result.backups.map((b) => {
    const m = b.metadata
    if (m === undefined) return [b.id, `⚠️  métadonnées illisibles: ${b.problem ?? '?'}`]
    const formats = m.incremental ? `incrémental ← ${m.parentId}` : m.exportFormats.join(',')
    const where = { local: 'local', 'off-site': 'hors site', both: 'les deux' }
    const row = [b.id, formatDate(m.timestamp, options), engineLabel(m.engine), m.databasePath, formatBytes(m.size), yes(m.compressed), yes(b.encrypted), yes(m.verified), ...(result.offsite ? [where[b.where ?? 'local']] : []), formats]
    if (b.problem) row.push(`⚠️  ${b.problem}`)
    return row
  })
  const header = ['ID', 'Date', 'Moteur', 'Source', 'Taille', 'Compressé', 'Chiffré', 'Vérifié', ...(result.offsite ? ['Où'] : []), 'Formats']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.filter((r) => r.length > 2).map((r) => r[i]!.length)))
  const line = (cells: string[]) => '  ' + cells.map((c, i) => (i < widths.length - 1 && cells.length > 2 ? c.padEnd(widths[i]!) : c)).join('  ').trimEnd()
  const title = `${result.backups.length} backup(s) dans ${shown(result.backupDir, options)}/${result.offsite ? ` et hors site sur ${shown(result.offsite, options)}` : ''} (du plus récent au plus ancien):`
  return [title, line(header), ...rows.map(line)].join('\n') + '\n'
}

function checkLine(check: FileCheck): string {
  if (check.status === 'ok') return `     ✓ ${check.path}${check.actual ? ` (${formatBytes(check.actual.size)})` : ''}`
  const what = CHECK_STATUS_LABELS[check.status]
  let detail = check.detail ?? ''
  if (check.status === 'modified' && check.expected && check.actual) {
    detail =
      check.actual.size !== check.expected.size
        ? `taille ${check.actual.size} au lieu de ${check.expected.size}`
        : `SHA-256 ${check.actual.sha256.slice(0, 12)}… au lieu de ${check.expected.sha256.slice(0, 12)}…`
  }
  return `     ✗ ${check.path}: ${what}${detail ? ` (${detail})` : ''}`
}

export function renderVerify(report: VerifyReport, options: RenderOptions): string {
  const m = report.metadata
  const faults = report.checks.filter((c) => c.status !== 'ok').length
  const damaged = report.checks.find((c) => c.damage !== undefined)
  if (damaged !== undefined) {
    // The archive itself is damaged: that one line, where it is, and nothing about its files.
    const where = damaged.damage!.member !== undefined ? `membre gzip n° ${damaged.damage!.member}, octet ${damaged.damage!.offset}` : `octet ${damaged.damage!.offset}`
    return `❌ Archive endommagée: ${damaged.path} (${where}); ses fichiers ne sont pas lisibles au-delà\n   ${damaged.detail}\n`
  }
  const lines = report.ok ? ['✅ Backup intègre'] : [`❌ Backup corrompu: ${report.id} (${faults} problème${faults > 1 ? 's' : ''})`]
  if (m !== undefined) {
    lines.push(report.ok ? `   Hash vérifié: ${m.hash}` : `   Hash attendu: ${m.hash}`)
    lines.push(`   Taille: ${formatBytes(m.size)}`)
    lines.push(`   Date: ${formatDate(m.timestamp, options)}`)
  }
  if (report.contentVerified === false) lines.push('   Contenu non déchiffré (pas de clé) : seuls la métadonnée et le chiffré stocké (taille, SHA-256) sont vérifiés ; ajoutez --key-file pour tout vérifier')
  lines.push('   Fichiers:')
  lines.push(...report.checks.map(checkLine))
  return lines.join('\n') + '\n'
}

function age(ms: number): string {
  const minutes = Math.floor(ms / 60_000)
  if (minutes < 60) return `${minutes} min`
  const hours = Math.floor(minutes / 60)
  if (hours < 48) return `${hours}h${String(minutes % 60).padStart(2, '0')}`
  return `${Math.floor(hours / 24)} jours`
}

export function renderStats(stats: StatsResult, options: RenderOptions): string {
  const lines = [`📊 Statistiques des backups (${shown(stats.backupDir, options)}/)`, `   Nombre: ${stats.count}`]
  if (stats.count > 0) {
    lines.push(`   Taille totale: ${formatBytes(stats.totalSize)}`)
    if (stats.oldest) lines.push(`   Plus ancien: ${stats.oldest.id} (${formatDate(stats.oldest.timestamp, options)})`)
    if (stats.newest) lines.push(`   Plus récent: ${stats.newest.id} (${formatDate(stats.newest.timestamp, options)}), il y a ${age(stats.newestAgeMs ?? 0)}`)
    if (stats.averageDurationMs !== null) lines.push(`   Durée moyenne: ${formatDuration(stats.averageDurationMs)}`)
    lines.push(`   Compression: ${stats.compressionRatio === null ? 'aucun backup compressé' : `${stats.compressionRatio.toFixed(1)}× (contenu / archive)`}`)
    const last = stats.lastVerification
    if (last) lines.push(`   Dernière vérification: ${last.verified ? `✅ ${last.id} vérifié à la création` : `⚠️  ${last.id} non vérifié`}`)
    if (stats.newestVerified && stats.newestVerified.id !== last?.id) lines.push(`   Plus récent vérifié: ${stats.newestVerified.id}`)
    if (stats.damaged.length > 0) lines.push(`   ⚠️  Métadonnées illisibles ou modifiées: ${stats.damaged.join(', ')}`)
  }
  return lines.join('\n') + '\n'
}

export function renderPrune(result: PruneResult): string {
  const head = result.dryRun
    ? `Rotation (${policyText(result)}), simulation: ${result.removed.length} backup(s) seraient supprimés`
    : `Rotation (${policyText(result)}): ${result.removed.length} backup(s) supprimé(s)`
  const lines = [head, ...result.removed.map((id) => `  - ${id} (${result.sources[id] ?? '?'}) : hors de la politique de rétention`), `Conservés: ${result.kept.length}`]
  for (const id of result.kept) lines.push(`  + ${id} (${result.sources[id] ?? '?'}) : ${(result.reasons[id] ?? []).join(' ; ')}`)
  return lines.join('\n') + '\n'
}

export function renderKeygen(result: { path: string; keyId: string }): string {
  return [`🔑 Clé créée: ${result.path} (mode 0600, identifiant ${result.keyId})`, '   Gardez une copie de ce fichier hors de cette machine : sans lui, les backups chiffrés sont illisibles.'].join('\n') + '\n'
}

export function renderRekey(result: RekeyResult): string {
  const lines = [`🔑 Clés re-chiffrées sous la clé ${result.newKeyId}: ${result.rekeyed.length} backup(s) (archives inchangées)`]
  if (result.rekeyed.length > 0) lines.push(...result.rekeyed.map((id) => `  - ${id}`))
  if (result.unchanged.length > 0) lines.push(`Déjà sous cette clé: ${result.unchanged.join(', ')}`)
  if (result.plain.length > 0) lines.push(`Non chiffrés (rien à faire): ${result.plain.join(', ')}`)
  return lines.join('\n') + '\n'
}
