/**
 * Point-in-time recovery through the CLI, as an operator runs it: `replicate` spawned as its own
 * process (SIGTERM stops it cleanly, a restart resumes the same generation), then `restore --at` on
 * SQLite to a fresh file and in place with the five restore steps; refusals exit 2.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { runScriptAsync } from './helpers/cli.ts'
import { tempDir } from './helpers/databases.ts'
import { replicaHasSeen, replicatedApp, startReplicate } from './helpers/replica.ts'
import { folderReplicaStore } from '../scripts/lib/replication/store.ts'

test('replicate runs as its own process, stops cleanly on SIGTERM and resumes; restore --at rebuilds the instant into a fresh file and in place through the five steps', async (t) => {
  const dir = tempDir(t, 'ipm-pitr-cli-')
  const replica = join(dir, 'replica')
  const { databasePath, app, setMarker, marker } = replicatedApp(t, dir)

  const first = startReplicate(['--database', `file:${databasePath}`, '--dir', replica])
  t.after(() => first.child.kill('SIGKILL'))
  await first.waitFor(/snapshot 0 :/)
  let since = Date.now()
  setMarker('avant-T')
  await replicaHasSeen(folderReplicaStore(replica), since)
  const at = new Date()
  await new Promise((resolve) => setTimeout(resolve, 20))
  since = Date.now()
  setMarker('après-T')
  await replicaHasSeen(folderReplicaStore(replica), since)
  first.child.kill('SIGTERM')
  assert.equal(await first.exited, 0, first.errors())
  assert.match(first.output(), /Réplication arrêtée proprement/)
  assert.match(first.output(), /2 transaction\(s\) copiée\(s\) en 2 segment\(s\), 1 snapshot\(s\)/)

  setMarker('pendant-l-arrêt')
  // Copied by the second run: seen after it started.
  since = Date.now()
  const second = startReplicate(['--database', `file:${databasePath}`, '--dir', replica])
  t.after(() => second.child.kill('SIGKILL'))
  await second.waitFor(/reprise de la génération/)
  await replicaHasSeen(folderReplicaStore(replica), since)
  second.child.kill('SIGTERM')
  assert.equal(await second.exited, 0, second.errors())
  assert.doesNotMatch(second.output(), /nouvelle génération/)

  const iso = at.toISOString()
  // What a restore killed by SIGKILL leaves in the scratch folder: a rebuild named after its dead process.
  const scratchDir = tempDir(t, 'ipm-pitr-cli-scratch-')
  const dead = spawnSync('true').pid!
  mkdirSync(join(scratchDir, `ipm-pitr-${dead}-AbC123`))
  writeFileSync(join(scratchDir, `ipm-pitr-${dead}-AbC123`, 'database.db'), 'a rebuild cut short')
  const kept = await runScriptAsync('scripts/advanced-backup.ts', ['--dir', join(dir, 'backups'), '--database', `file:${databasePath}`, '--json', 'restore', '--at', iso, '--replica', replica, '--keep-scratch', '--scratch-dir', scratchDir])
  assert.equal(kept.status, 0, kept.stderr)
  const keptPath = (JSON.parse(kept.stdout) as { pointInTime: { result: { keptPath: string } } }).pointInTime.result.keptPath
  assert.equal(marker(keptPath), 'avant-T')
  const fresh = join(dir, 'fresh.db')
  const toFresh = await runScriptAsync('scripts/advanced-backup.ts', ['--dir', join(dir, 'backups'), '--database', `file:${databasePath}`, 'restore', '--at', iso, '--replica', replica, '--to', fresh, '--yes', '--scratch-dir', scratchDir])
  assert.equal(toFresh.status, 0, toFresh.stderr)
  assert.equal(marker(fresh), 'avant-T')
  assert.deepEqual(readdirSync(scratchDir), [keptPath.split('/').at(-2)], 'the dead run\'s rebuild is gone, the kept one stays')
  assert.match(toFresh.stdout, new RegExp(`Instant demandé : ${iso} ; atteint : \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z`))
  assert.match(toFresh.stdout, /1\. Vérification d'intégrité \(SHA-256\) ✓/)
  assert.match(toFresh.stdout, /5\. Confirmation ✓/)

  // In place, as the docs say: the application is stopped first (the restore refuses a database in use).
  app.close()
  const json = await runScriptAsync('scripts/advanced-backup.ts', ['--dir', join(dir, 'backups'), '--database', `file:${databasePath}`, '--json', 'restore', '--at', iso, '--replica', replica, '--yes'])
  assert.equal(json.status, 0, json.stderr)
  const result = JSON.parse(json.stdout) as { reachedAt: string; restore: { restored: boolean; steps: { name: string; status: string }[]; safetyCopy: string } }
  assert.deepEqual(result.restore.steps.map((s) => `${s.name}:${s.status}`), ['verify:ok', 'safety-copy:ok', 'replace:ok', 'check:ok', 'report:ok'])
  assert.ok(Date.parse(result.reachedAt) <= at.getTime())
  assert.equal(marker(databasePath), 'avant-T')
  assert.equal(marker(result.restore.safetyCopy), 'pendant-l-arrêt')

  const noOffset = await runScriptAsync('scripts/advanced-backup.ts', ['--database', `file:${databasePath}`, 'restore', '--at', iso.replace('Z', ''), '--replica', replica, '--yes'])
  assert.equal(noOffset.status, 2)
  assert.equal(noOffset.stderr.split('\n')[0], `Erreur : Instant sans fuseau horaire refusé : "${iso.replace('Z', '')}".`)
  const tooEarly = await runScriptAsync('scripts/advanced-backup.ts', ['--database', `file:${databasePath}`, 'restore', '--at', '2020-01-01T00:00:00Z', '--replica', replica, '--to', join(dir, 'never.db'), '--yes'])
  assert.equal(tooEarly.status, 2)
  assert.match(tooEarly.stderr, /^Erreur : Instant 2020-01-01T00:00:00\.000Z hors de la plage restaurable \(du \S+Z au \S+Z\)\.\n/)
  assert.equal(existsSync(join(dir, 'never.db')), false)
})
