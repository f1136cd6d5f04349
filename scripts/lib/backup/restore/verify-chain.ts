/** Step 1 of a restore: the backup and every backup it depends on, verified before anything is written. */
import { ToolkitError } from '../../errors.ts'
import type { BackupEntry } from '../catalog/catalog.ts'
import { unsafeEntries } from '../archive/extract.ts'
import type { GzipPool } from '../archive/gzip-blocks.ts'
import { backupChain } from '../create/incremental.ts'
import type { ProgressListener } from '../../progress.ts'
import { CHECK_STATUS_LABELS, verifyBackup, type FileCheck } from '../catalog/verify.ts'

/**
 * Verifies a backup and every backup it depends on; throws a ToolkitError naming each fault and
 * each unsafe archive entry.
 */
export async function verifyChain(backupDir: string, id: string, pool?: GzipPool, onProgress?: ProgressListener): Promise<{ chain: BackupEntry[] }> {
  const chain = await backupChain(backupDir, id)
  for (const entry of [...chain].reverse()) {
    const report = await verifyBackup(backupDir, entry.id, { pool, onProgress, chain: false })
    if (report.ok) continue
    const unsafe = unsafeEntries(report.checks, entry.id)
    const faults = report.checks.filter((c: FileCheck) => c.status !== 'ok').map((c) => `${c.path} : ${CHECK_STATUS_LABELS[c.status]}${c.detail ? ` (${c.detail})` : ''}`)
    const whose = entry.id === id ? `le backup ${id}` : `le backup ${entry.id}, dont ${id} a besoin,`
    if (unsafe.length > 0) {
      throw new ToolkitError(`${whose} est une archive dangereuse ; rien n’a été écrit : ${unsafe.join(' ; ')}`, { hint: 'Ne le restaurez pas ; restaurez un autre backup (`advanced-backup list`).' })
    }
    throw new ToolkitError(`${whose} échoue à la vérification ; rien n’a été écrit : ${faults.join(' ; ')}`, { hint: `Voir \`advanced-backup verify ${entry.id}\` ; restaurez un autre backup.` })
  }
  return { chain }
}
