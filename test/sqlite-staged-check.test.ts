import { test } from 'node:test'
import assert from 'node:assert/strict'
import { appendFileSync, copyFileSync, existsSync, readdirSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { tempDir } from './helpers/databases.ts'
import { sameFile, startStagedCheck } from '../scripts/lib/engines/sqlite/staged-check.ts'

/** A small database in rollback-journal mode, as a backup's database.db is. */
function database(dir: string): string {
  const path = join(dir, 'copy.db')
  const db = new Database(path)
  db.pragma('foreign_keys = OFF')
  db.exec(`CREATE TABLE "Client" (id TEXT PRIMARY KEY, nom TEXT); CREATE TABLE "Dossier" (id TEXT PRIMARY KEY, "clientId" TEXT REFERENCES "Client"(id)); CREATE INDEX d ON "Dossier"("clientId");`)
  db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) INSERT INTO "Client" SELECT 'c' || i, 'Nom ' || i FROM n`)
  db.exec(`INSERT INTO "Dossier" SELECT 'd' || id, id FROM "Client"; INSERT INTO "Dossier" VALUES ('orphelin', 'personne')`)
  db.close()
  return path
}

test('the early check examines the copy through a hard link, and its verdict holds for the file renamed into place, unchanged', async (t) => {
  const dir = tempDir(t)
  const copy = database(dir)
  const check = startStagedCheck(copy)
  assert.equal(existsSync(`${copy}-check`), true, 'the thread opens a link of the copy')
  // Step 3 renames the copy at once: the thread, still starting, is not affected.
  const target = join(dir, 'app.db')
  renameSync(copy, target)
  assert.equal(sameFile(check, target), true)
  assert.deepEqual(await check.result(), { integrity: 'ok', foreignKeyViolations: 1, rows: new Map([['Client', 500], ['Dossier', 501]]) })
  assert.deepEqual(readdirSync(dir), ['app.db'], 'the link is removed once the thread is done')
})

test('a file changed after the check started is not the file it examined; a cancelled check leaves nothing', async (t) => {
  const dir = tempDir(t)
  const copy = database(dir)
  const check = startStagedCheck(copy)
  await check.result()
  appendFileSync(copy, Buffer.alloc(4096))
  assert.equal(sameFile(check, copy), false, 'another size')
  const other = join(dir, 'other.db')
  copyFileSync(copy, other)
  renameSync(other, copy)
  assert.equal(sameFile(check, copy), false, 'another inode')

  const cancelled = startStagedCheck(copy)
  cancelled.cancel()
  assert.deepEqual(readdirSync(dir), ['copy.db'], 'its link is removed at once')
  // It still settles (a thread stopped mid-statement, or one that had finished), so nothing waits on it forever.
  await cancelled.result()

  // A copy that cannot be looked at: no throw into step 1, a reason, and a verdict that matches no file.
  const missing = startStagedCheck(join(dir, 'gone.db'))
  const outcome = await missing.result()
  assert.ok('skipped' in outcome && /contrôle anticipé impossible: .*introuvable/.test(outcome.skipped), JSON.stringify(outcome))
  assert.equal(sameFile(missing, copy), false)
})
