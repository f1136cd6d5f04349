/**
 * Step 1 of a restore: the backup and every backup it depends on, verified before anything is
 * written to the target — in one read of each: the files the restore needs are written to the
 * restore's scratch folder while they are hashed, and used only once every hash of the chain matched.
 * An archive create verified whole is inflated only as far as those files; its other files are
 * proven by the archive's SHA-256 (catalog/verify.ts, `onlyExtract`).
 */
import { ToolkitError } from '../../errors.ts'
import type { BackupEntry } from '../catalog/catalog.ts'
import { unsafeEntries } from '../archive/extract.ts'
import type { GzipPool } from '../archive/gzip-blocks.ts'
import { backupChain } from '../create/incremental.ts'
import type { ProgressListener } from '../../progress.ts'
import { CHECK_STATUS_LABELS, verifyBackup, type FileCheck } from '../catalog/verify.ts'

export interface VerifyChainOptions {
  pool?: GzipPool
  onProgress?: ProgressListener
  /**
   * The files to keep a verified copy of, per backup of the chain (`root`: the full backup): path in
   * the backup → where to write it (created; it must not exist). Files the backup does not list are passed over.
   */
  keep?: (entry: BackupEntry, root: boolean) => ReadonlyMap<string, string>
  /** A kept copy is whole and matches its hash, while the rest of the chain is still being verified (`verifyBackup`'s `onCopied`). */
  onCopied?: (dest: string) => void
}

export interface VerifiedChain {
  /** The full backup first, `id` last. */
  chain: BackupEntry[]
  /** The verified copies (`keep`), by `<backup id>/<path>`; only files the backup lists. */
  copies: ReadonlyMap<string, string>
  /** Files of the chain not inflated, proven by their archive's SHA-256 only. */
  unread: number
}

/**
 * Verifies a backup and every backup it depends on; throws a ToolkitError naming each fault and
 * each unsafe archive entry.
 * @example const { chain, copies } = await verifyChain('backups', id, { keep: (entry) => new Map([['database.db', `/tmp/x/${entry.id}.db`]]) })
 */
export async function verifyChain(backupDir: string, id: string, options: VerifyChainOptions = {}): Promise<VerifiedChain> {
  const chain = await backupChain(backupDir, id)
  const copies = new Map<string, string>()
  let unread = 0
  for (const entry of [...chain].reverse()) {
    const listed = new Set(entry.metadata!.files.map((file) => file.path))
    const extract = new Map([...(options.keep?.(entry, entry === chain[0]) ?? [])].filter(([path]) => listed.has(path)))
    const report = await verifyBackup(backupDir, entry.id, { pool: options.pool, onProgress: options.onProgress, chain: false, extract, onCopied: options.onCopied, onlyExtract: true })
    if (report.ok) {
      for (const [path, dest] of extract) copies.set(`${entry.id}/${path}`, dest)
      unread += report.unread?.length ?? 0
      continue
    }
    const unsafe = unsafeEntries(report.checks, entry.id)
    const faults = report.checks.filter((c: FileCheck) => c.status !== 'ok').map((c) => `${c.path} : ${CHECK_STATUS_LABELS[c.status]}${c.detail ? ` (${c.detail})` : ''}`)
    const whose = entry.id === id ? `le backup ${id}` : `le backup ${entry.id}, dont ${id} a besoin,`
    if (unsafe.length > 0) {
      throw new ToolkitError(`${whose} est une archive dangereuse ; rien n’a été écrit : ${unsafe.join(' ; ')}`, { hint: 'Ne le restaurez pas ; restaurez un autre backup (`advanced-backup list`).' })
    }
    throw new ToolkitError(`${whose} échoue à la vérification ; rien n’a été écrit : ${faults.join(' ; ')}`, { hint: `Voir \`advanced-backup verify ${entry.id}\` ; restaurez un autre backup.` })
  }
  return { chain, copies, unread }
}
