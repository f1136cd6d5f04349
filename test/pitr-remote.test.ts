/**
 * Point-in-time recovery with the replica on object storage (s3rver, Azurite: the non-folder entries
 * of STORAGES): `replicate --dir s3://…|azure://…` as its own process, stopped by SIGTERM and
 * resumed, then `restore --at T --replica <url>` into a fresh file on a machine that has only the
 * URL. The restored file holds exactly the state at T, and neither run leaves anything in the
 * project's folder (staging copies live in a private scratch folder).
 */
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { REPO_ROOT, runScriptAsync } from './helpers/cli.ts'
import { tempDir } from './helpers/databases.ts'
import { STORAGES } from './helpers/storage.ts'
import { openReplicaStore } from '../scripts/lib/replication/object-store.ts'
import { replicaHasSeen, replicatedApp, startReplicate } from './helpers/replica.ts'


for (const entry of STORAGES.filter((e) => e.name !== 'folder')) {
  test(`${entry.name}: replicate to the storage, stop and resume; restore --at from the URL alone rebuilds the instant, nothing left in the project`, async (t) => {
    const storage = await entry.start(t)
    const env: NodeJS.ProcessEnv = { ...storage.env }
    const projectBefore = readdirSync(REPO_ROOT).sort()
    const dir = tempDir(t, 'ipm-pitr-remote-')
    const { databasePath, app, setMarker, marker } = replicatedApp(t, dir)
    const replicaStore = openReplicaStore(storage.url, { env: storage.env, cwd: dir, stagingDir: join(dir, 'staging') })

    const first = startReplicate(['--database', `file:${databasePath}`, '--dir', storage.url], env)
    t.after(() => first.child.kill('SIGKILL'))
    await first.waitFor(/snapshot 0 :/)
    let since = Date.now()
    setMarker('avant-T')
    await replicaHasSeen(replicaStore, since)
    const at = new Date()
    await new Promise((resolve) => setTimeout(resolve, 20))
    since = Date.now()
    setMarker('après-T')
    await replicaHasSeen(replicaStore, since)
    first.child.kill('SIGTERM')
    assert.equal(await first.exited, 0, first.errors())
    assert.match(first.output(), /Réplication arrêtée proprement/)

    setMarker('pendant-l-arrêt')
    // Copied by the second run: seen after it started.
    since = Date.now()
    const second = startReplicate(['--database', `file:${databasePath}`, '--dir', storage.url], env)
    t.after(() => second.child.kill('SIGKILL'))
    await second.waitFor(/reprise de la génération/)
    await replicaHasSeen(replicaStore, since)
    second.child.kill('SIGTERM')
    assert.equal(await second.exited, 0, second.errors())
    assert.doesNotMatch(second.output(), /nouvelle génération/)
    app.close()

    // Another machine: only the replica's URL and the storage's credentials.
    const fresh = join(tempDir(t, 'ipm-pitr-remote-target-'), 'fresh.db')
    const iso = at.toISOString()
    const restored = await runScriptAsync('scripts/advanced-backup.ts', ['--dir', join(dir, 'backups'), '--database', `file:${fresh}`, 'restore', '--at', iso, '--replica', storage.url, '--to', fresh, '--yes'], { env })
    assert.equal(restored.status, 0, restored.stderr)
    assert.equal(marker(fresh), 'avant-T')
    assert.match(restored.stdout, new RegExp(`Instant demandé : ${iso} ; atteint : \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z`))
    const latest = await runScriptAsync('scripts/advanced-backup.ts', ['--dir', join(dir, 'backups'), '--database', `file:${fresh}`, 'restore', '--at', new Date().toISOString(), '--replica', storage.url, '--to', join(dir, 'latest.db'), '--yes'], { env })
    assert.equal(latest.status, 2, 'an instant after the newest commit is refused with the reachable range')
    assert.match(latest.stderr, /hors de la plage restaurable/)

    assert.deepEqual(await storage.incompleteUploads(), [])
    assert.deepEqual(readdirSync(REPO_ROOT).sort(), projectBefore, 'replicate and restore --at leave nothing in the project folder')
  })
}
