/**
 * `--compression-level`: the gzip level of the archive, 1 to 9, default 6. Judged outside our code:
 * the XFL byte gzip writes in every member's header (4 at level 1, 0 at the default, 2 at level 9),
 * GNU tar reads each archive, level 9 is smaller than level 1, and a level-1 backup restores.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { openTestDatabase, tempDir } from './helpers/databases.ts'
import { runScriptAsync } from './helpers/cli.ts'
import { run, sqliteDump } from './helpers/backup.ts'
import { requireJudge } from './helpers/judges.ts'

test('--compression-level 1, default and 9 write gzip at those levels; tar reads them; level 1 restores; a bad level is refused', { skip: requireJudge('tar') || requireJudge('sqlite3') }, async (t) => {
  const db = await openTestDatabase(t, 'sqlite')
  const dir = tempDir(t, 'ipm-level-')
  copyFileSync(db.url.slice('file:'.length), join(dir, 'app.db'))
  const cli = (args: string[]) => runScriptAsync('scripts/advanced-backup.ts', ['--dir', 'backups', '--database', 'file:./app.db', ...args], { cwd: dir })
  const archives: Record<string, string> = {}
  for (const level of ['1', 'default', '9']) {
    const created = await cli([...(level === 'default' ? [] : ['--compression-level', level]), '--json', 'create'])
    assert.equal(created.status, 0, created.stderr)
    const path = (JSON.parse(created.stdout) as { path: string }).path
    archives[level] = path
    // Every gzip member of the archive carries the level's XFL byte; the first one is enough for tar's view.
    assert.equal(readFileSync(path)[8], { 1: 4, default: 0, 9: 2 }[level], `XFL of the level-${level} archive`)
    assert.match(run('tar', ['-tzf', path]), /\/database\.db\n/)
  }
  assert.ok(statSync(archives['9']!).size < statSync(archives['1']!).size, 'level 9 is smaller than level 1')

  const id = archives['1']!.split('/').at(-1)!.replace('.tar.gz', '')
  const restored = await cli(['restore', id, '--to', 'file:./restored.db', '--yes'])
  assert.equal(restored.status, 0, restored.stderr)
  assert.equal(sqliteDump(join(dir, 'restored.db')), sqliteDump(join(dir, 'app.db')))

  const bad = await cli(['--compression-level', '0', 'create'])
  assert.equal(bad.status, 2)
  assert.equal(bad.stderr.split('\n')[0], "Erreur : l’option --compression-level <n> refuse la valeur '0' : un niveau de 1 (plus rapide) à 9 (plus petit) est attendu")
})
