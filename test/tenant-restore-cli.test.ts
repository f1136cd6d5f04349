/**
 * `advanced-backup restore <id> --tenant …` as an operator runs it: the dry run's per-table plan
 * pinned, no write without --yes off a terminal, the restore naming its safety export (which
 * `sha256sum -c` accepts), the history line, and a clear French line for an unknown cabinet.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { openTestDatabase, tempDir } from './helpers/databases.ts'
import { runScriptAsync, type CliResult } from './helpers/cli.ts'
import { run } from './helpers/backup.ts'
import { requireJudge } from './helpers/judges.ts'

function cli(args: string[], cwd: string): Promise<CliResult> {
  return runScriptAsync('scripts/advanced-backup.ts', ['--dir', 'backups', '--database', 'file:./app.db', ...args], { cwd, env: { TZ: 'UTC', DATABASE_URL: 'file:/nonexistent/not-the-default.db' } })
}

const normalise = (text: string, dir: string) =>
  text
    .replaceAll(dir, '<DIR>')
    .replace(/backup-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}/g, 'backup-<TS>')
    .replace(/\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z/g, '<TS>')
    .replace(/\b[0-9a-f]{64}\b/g, '<SHA256>')
    .replace(/sha256:[0-9a-f]{16}…/g, 'sha256:<SHA>…')

function dossierCount(dir: string, tenantId: string): number {
  const db = new Database(join(dir, 'app.db'), { readonly: true })
  try {
    return (db.prepare('SELECT count(*) AS n FROM "Dossier" WHERE "tenantId" = ?').get(tenantId) as { n: number }).n
  } finally {
    db.close()
  }
}

test('restore --tenant: dry run per table, refusal without --yes, restore naming its safety export', { skip: requireJudge('sha256sum') }, async (t) => {
  const source = await openTestDatabase(t, 'sqlite')
  const dir = tempDir(t, 'ipm-tenant-cli-')
  copyFileSync(source.url.slice('file:'.length), join(dir, 'app.db'))
  const created = await cli(['--quiet'], dir)
  assert.equal(created.status, 0, created.stderr)
  const id = readdirSync(join(dir, 'backups')).find((name) => name.endsWith('.tar.gz'))!.replace('.tar.gz', '')

  const live = new Database(join(dir, 'app.db'))
  const deleted = live.prepare(`DELETE FROM "Dossier" WHERE "tenantId" = 'tenant-demo' AND rowid % 2 = 0`).run().changes
  live.close()
  assert.equal(deleted, 4)
  const martinBefore = dossierCount(dir, 'tenant-martin')

  const dry = await cli(['restore', id, '--tenant', 'Cabinet Demo', '--dry-run'], dir)
  assert.equal(dry.status, 0, dry.stderr)
  assert.equal(
    // The bytes read depend on how the archive compressed (its timestamps are in it).
    normalise(dry.stdout, dir).replace(/\((\d|\u202f)+ octets,/, '(<N> octets,'),
    `🔎 Simulation de restauration du cabinet « Cabinet Demo » (tenant-demo) depuis backup-<TS>
   Cible : file:./app.db
   Tables du cabinet : Tenant, Client, Dossier, User ; tables partagées, non touchées : Plan
   Lu dans la sauvegarde : les seules sections du cabinet (<N> octets, chacune vérifiée par son SHA-256)

   table    à supprimer  à insérer  inchangées
   Tenant             0          0           1
   Client             0          0           3
   Dossier            0          4           5
   User               0          0           3

✅ Simulation terminée : rien n'a été écrit ; la restauration réussirait.
`,
  )
  assert.equal(dossierCount(dir, 'tenant-demo'), 5, 'a dry run writes nothing')

  const refused = await cli(['restore', id, '--tenant', 'tenant-demo'], dir)
  assert.equal(refused.status, 1)
  assert.equal(refused.stdout, '')
  assert.match(refused.stderr, /^Erreur : la restauration du cabinet « tenant-demo » remplace ses lignes dans la base et demande une confirmation, mais il n'y a pas de terminal pour la demander\nEssayez : --yes/)
  assert.equal(dossierCount(dir, 'tenant-demo'), 5)

  const restored = await cli(['restore', id, '--tenant', 'Cabinet Demo', '--yes'], dir)
  assert.equal(restored.status, 0, restored.stderr)
  const safety = /Export de sécurité \(lignes d'avant la restauration\) : (\S+)/.exec(restored.stdout)![1]!
  assert.ok(existsSync(safety))
  assert.match(normalise(restored.stdout, dir), /✅ Cabinet restauré : 12 ligne\(s\) supprimée\(s\), 16 insérée\(s\) ; les autres cabinets n'ont pas été touchés\.\n   Export de sécurité \(lignes d'avant la restauration\) : <DIR>\/backups\/tenant-tenant-demo-<TS>\.before-restore\.json\n   SHA-256 <SHA256>, 12 ligne\(s\)\n/)
  assert.equal(run('sha256sum', ['-c', `${safety}.sha256`], { cwd: join(dir, 'backups') }).trim(), `${safety.split('/').at(-1)}: OK`)
  assert.equal(dossierCount(dir, 'tenant-demo'), 9)
  assert.equal(dossierCount(dir, 'tenant-martin'), martinBefore)
  const history = readFileSync(join(dir, 'backups', 'history.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { operation: string; id?: string; result: string })
  assert.deepEqual(history.map((h) => [h.operation, h.result]), [['create', 'success'], ['restore', 'failure'], ['restore', 'success']])

  const json = await cli(['restore', id, '--tenant', 'tenant-demo', '--dry-run', '--json'], dir)
  assert.equal(json.status, 0, json.stderr)
  const parsed = JSON.parse(json.stdout) as { dryRun: boolean; plan: { tables: { table: string; toInsert: number; toDelete: number; unchanged: number }[] } }
  assert.deepEqual(parsed.plan.tables.find((c) => c.table === 'Dossier'), { table: 'Dossier', current: 9, backup: 9, unchanged: 9, toDelete: 0, toInsert: 0 })

  const unknown = await cli(['restore', id, '--tenant', 'Inconnu', '--dry-run'], dir)
  assert.equal(unknown.status, 1)
  assert.match(unknown.stderr, /^Erreur : aucun cabinet « Inconnu » dans la sauvegarde backup-\S+ ; cabinets présents : "Bernard Conseil Juridique" \(tenant-bernard\), "Cabinet Demo" \(tenant-demo\)/)

  const forced = await cli(['restore', id, '--tenant', 'tenant-demo', '--force', '--yes'], dir)
  assert.equal(forced.status, 2)
  assert.match(forced.stderr, /--force ne s'applique pas à --tenant/)
})
