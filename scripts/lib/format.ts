/** How sizes and durations are shown to people, the same in every tool. */

/** 1536 → "1.50 KB", the way the spec prints sizes ("Taille: 2.00 MB"). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let value = bytes
  let unit = 0
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(2)} ${units[unit]}`
}

/** 950 → "950ms", 12_300 → "12.3s", 192_000 → "3m12s". */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)}s`
  const minutes = Math.floor(ms / 60_000)
  if (minutes < 60) return `${minutes}m${String(Math.round((ms % 60_000) / 1_000)).padStart(2, '0')}s`
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`
}

/**
 * A word of a shell command printed for a person to run (POSIX quoting, only when needed).
 * @example shellWord('/srv/backups') // /srv/backups — shellWord("l'an") // 'l'\''an'
 */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`
}
