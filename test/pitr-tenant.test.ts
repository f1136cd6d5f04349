/**
 * `restore --at T --tenant <cabinet>` on SQLite, as an operator runs it the morning after: one
 * cabinet deleted dossiers by mistake after T while another cabinet kept working. The live database
 * (still open by the application) gets back exactly that cabinet's state at T; the other cabinet
 * keeps its changes made after T; the cabinet's rows before the restore are in a safety export.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { copyFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import Database from 'better-sqlite3'
import { REPO_ROOT, runScriptAsync } from './helpers/cli.ts'
import { tempDir } from './helpers/databases.ts'
import { everyTenantChecksumAt } from './helpers/tenants.ts'
import { replicaHasSeen } from './helpers/replica.ts'
import { folderReplicaStore } from '../scripts/lib/replication/store.ts'

test('restore --at T --tenant puts one cabinet back as it was at T in the live database; another cabinet keeps its later work', async (t) => {
  const dir = tempDir(t, 'ipm-pitr-tenant-')
  const databasePath = join(dir, 'app.db')
  const url = `file:${databasePath}`
  const replica = join(dir, 'replica')
  copyFileSync(join(REPO_ROOT, 'prisma', 'dev.db'), databasePath)
  const app = new Database(databasePath)
  t.after(() => { if (app.open) app.close() })
  app.pragma('journal_mode = WAL')

  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'scripts/advanced-backup.ts'), 'replicate', '--database', url, '--dir', replica], { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.after(() => child.kill('SIGKILL'))
  let stdout = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const until = async (condition: () => boolean) => {
    while (!condition()) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  await until(() => /snapshot 0 :/.test(stdout))

  // Before T: both cabinets work.
  let since = Date.now()
  app.prepare(`INSERT INTO Client (id, tenantId, firstName, lastName) VALUES ('client-avant-t', 'tenant-demo', 'Avant', 'T')`).run()
  await replicaHasSeen(folderReplicaStore(replica), since)
  const atT = await everyTenantChecksumAt(url)
  const at = new Date()
  await new Promise((resolve) => setTimeout(resolve, 20))
  // After T: Cabinet Demo deletes dossiers by mistake; Cabinet Martin takes a new client.
  since = Date.now()
  const deleted = app.prepare(`DELETE FROM Dossier WHERE tenantId = 'tenant-demo' AND rowid IN (SELECT rowid FROM Dossier WHERE tenantId = 'tenant-demo' LIMIT 4)`).run().changes
  assert.equal(deleted, 4)
  app.prepare(`INSERT INTO Client (id, tenantId, firstName, lastName) VALUES ('client-apres-t', 'tenant-martin', 'Après', 'T')`).run()
  await replicaHasSeen(folderReplicaStore(replica), since)
  const martinNow = (await everyTenantChecksumAt(url)).get('tenant-martin')
  assert.notEqual(martinNow, atT.get('tenant-martin'))
  child.kill('SIGTERM')
  assert.equal(await exited, 0)

  // The application stays open: a tenant restore is one transaction on the live database.
  const restored = await runScriptAsync('scripts/advanced-backup.ts', ['--dir', join(dir, 'backups'), '--database', url, 'restore', '--at', at.toISOString(), '--tenant', 'Cabinet Demo', '--replica', replica, '--yes'])
  assert.equal(restored.status, 0, restored.stderr)
  assert.match(restored.stdout, /Cabinet « Cabinet Demo » restauré : \d+ ligne\(s\) retirée\(s\), \d+ insérée\(s\) ; ses lignes d’avant sont gardées dans \S+/)
  const after = await everyTenantChecksumAt(url)
  assert.equal(after.get('tenant-demo'), atT.get('tenant-demo'), 'Cabinet Demo is exactly as it was at T')
  assert.equal(after.get('tenant-martin'), martinNow, 'Cabinet Martin keeps the client it took after T')
  for (const [id, sum] of atT) if (id !== 'tenant-demo' && id !== 'tenant-martin') assert.equal(after.get(id), sum, `${id} untouched`)
  assert.equal((app.prepare(`SELECT count(*) AS n FROM Dossier WHERE tenantId = 'tenant-demo'`).get() as { n: number }).n, 9)
  const exportPath = /gardées dans (\S+)\.?\n/.exec(restored.stdout)![1]!.replace(/\.$/, '')
  assert.ok(existsSync(exportPath), `safety export ${exportPath}`)
})
