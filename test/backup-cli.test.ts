/**
 * scripts/advanced-backup.ts as a user (or cron) runs it: output pinned after normalising ids,
 * dates, sizes and hashes; the spec's numeric aliases; --json and --quiet; exit codes; and bad
 * input — a clear one-line error, exit 1, nothing written or deleted.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { defer, openTestDatabase, tempDir } from './helpers/databases.ts'
import { REPO_ROOT, runScriptAsync, type CliResult } from './helpers/cli.ts'

/** Runs the script in `cwd` (no TTY, dates in UTC), backups in `cwd`/backups; several can run at once. */
function cli(args: string[], cwd: string): Promise<CliResult> {
  return runScriptAsync('scripts/advanced-backup.ts', ['--dir', 'backups', ...args], { cwd, env: { TZ: 'UTC', DATABASE_URL: 'file:/nonexistent/not-the-default.db' } })
}

function normalise(text: string, dir: string): string {
  return text
    .replaceAll(dir, '<DIR>')
    .replace(/backup-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}/g, 'backup-<TS>')
    .replace(/\d{2}\/\d{2}\/\d{4} \d{2}:\d{2}:\d{2}/g, '<DATE>')
    .replace(/\b[0-9a-f]{64}\b/g, '<SHA256>')
    .replace(/\b\d+(\.\d+)? (B|KB|MB)\b/g, '<SIZE>')
    .replace(/il y a (\d+ min|\d+h\d{2}|\d+ jours)/g, 'il y a <AGE>')
    .replace(/\b\d+(\.\d+)?(ms|s)\b/g, '<DURATION>')
    .replace(/\d+\.\d×/g, '<RATIO>×')
    .replace(/ +$/gm, '')
}

/** A copy of the demo database in a work folder, and the folder. */
async function workspace(t: import('node:test').TestContext) {
  const db = await openTestDatabase(t, 'sqlite')
  const dir = tempDir(t, 'ipm-cli-')
  copyFileSync(db.url.slice('file:'.length), join(dir, 'app.db'))
  return { dir, url: 'file:./app.db' }
}

test('create, list (2), verify, stats (5) and prune --dry-run print the spec\'s text', async (t) => {
  const { dir, url } = await workspace(t)
  const created = await cli(['--database', url], dir)
  assert.equal(created.status, 0, created.stderr)
  assert.equal(created.stderr, '')
  assert.equal(
    normalise(created.stdout, dir),
    `✅ Backup créé: backup-<TS>
   Fichier: backups/backup-<TS>.tar.gz
   Source: SQLite file:./app.db
   Taille: <SIZE> (contenu <SIZE>, compression <RATIO>×)
   Hash: <SHA256> (SHA-256 du manifeste des fichiers)
   Tables: Client 3, Dossier 9, Plan 6, Tenant 6, User 8, _prisma_migrations 1
   Formats: sql, json, csv
   Vérifié: oui
   Durée: <DURATION>
   Rotation (garder 10 derniers par source): 1 conservé(s), aucun supprimé
`,
  )
  const id = /backup-\S+(?=\.tar\.gz)/.exec(created.stdout)![0]
  const [list, list2, verify, stats, stats5, prune] = await Promise.all([
    cli(['list'], dir),
    cli(['2'], dir),
    cli(['verify', id], dir),
    cli(['stats'], dir),
    cli(['5'], dir),
    cli(['prune', '--dry-run', '--keep', '1'], dir),
  ])
  assert.equal(list.stdout, list2.stdout)
  assert.equal(
    normalise(list.stdout, dir),
    `1 backup(s) dans backups/ (du plus récent au plus ancien):
  ID                          Date                 Moteur  Source                      Taille    Compressé  Chiffré  Vérifié  Formats
  backup-<TS>  <DATE>  SQLite  <DIR>/app.db  <SIZE>  oui        non      oui      sql,json,csv
`,
  )
  assert.equal(verify.status, 0)
  assert.equal(
    normalise(verify.stdout, dir),
    `✅ Backup intègre
   Hash vérifié: <SHA256>
   Taille: <SIZE>
   Date: <DATE>
   Fichiers:
     ✓ backup-<TS>.metadata.json
     ✓ backup-<TS>.tar.gz (<SIZE>)
     ✓ data.json (<SIZE>)
     ✓ database.db (<SIZE>)
     ✓ export.sql (<SIZE>)
     ✓ exports/Client.csv (<SIZE>)
     ✓ exports/Dossier.csv (<SIZE>)
     ✓ exports/Plan.csv (<SIZE>)
     ✓ exports/Tenant.csv (<SIZE>)
     ✓ exports/User.csv (<SIZE>)
     ✓ exports/_prisma_migrations.csv (<SIZE>)
     ✓ metadata.json (dans l’archive)
`,
  )
  assert.equal(stats.stdout, stats5.stdout)
  assert.equal(
    normalise(stats.stdout, dir),
    `📊 Statistiques des backups (backups/)
   Nombre: 1
   Taille totale: <SIZE>
   Plus ancien: backup-<TS> (<DATE>)
   Plus récent: backup-<TS> (<DATE>), il y a <AGE>
   Durée moyenne: <DURATION>
   Compression: <RATIO>× (contenu / archive)
   Dernière vérification: ✅ backup-<TS> vérifié à la création
`,
  )
  assert.equal(normalise(prune.stdout, dir), 'Rotation (garder 1 derniers par source), simulation: 0 backup(s) seraient supprimés\nConservés: 1\n  + backup-<TS> (sqlite <DIR>/app.db) : parmi les 1 plus récents (--keep-last)\n')
  const help = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'scripts/advanced-backup.ts'), '--help'], { encoding: 'utf8' })
  assert.match(help.stdout, /create\|1 [\s\S]*list\|2 [\s\S]*verify\|3 <id>[\s\S]*restore\|4 \[options\] \[id\][\s\S]*stats\|5 [\s\S]*prune\|6/)
  assert.match(help.stdout, /^Alias numériques \(menu de la spécification\) : 1 create, 2 list, 3 verify <id>, 4 restore <id>, 5 stats, 6 prune, 7 check$/m)
})

test('--json prints the result object, --quiet prints nothing on success, and a corrupted backup exits 1 with its faults', async (t) => {
  const { dir, url } = await workspace(t)
  const quiet = await cli(['--database', url, '--quiet', '--no-compress', '--formats', 'sql,csv'], dir)
  assert.deepEqual([quiet.status, quiet.stdout, quiet.stderr], [0, '', ''])
  const json = await cli(['1', '--database', url, '--json', '--keep', '5'], dir)
  assert.equal(json.status, 0, json.stderr)
  const result = JSON.parse(json.stdout)
  assert.equal(result.metadata.compressed, true)
  assert.deepEqual(result.rotation.kept.length, 2)
  const folderId = readdirSync(join(dir, 'backups')).find((name) => !name.includes('.'))!
  const data = join(dir, 'backups', folderId, 'export.sql')
  writeFileSync(data, readFileSync(data, 'utf8').replace('INSERT', 'insert'))
  const [text, asJson, quietFail] = await Promise.all([cli(['3', folderId], dir), cli(['verify', folderId, '--json'], dir), cli(['verify', folderId, '--quiet'], dir)])
  assert.equal(text.status, 1)
  assert.match(text.stdout, /^❌ Backup corrompu: backup-\S+ \(1 problème\)$/m)
  assert.match(text.stdout, /^ {5}✗ export\.sql: modifié \(SHA-256 [0-9a-f]{12}… au lieu de [0-9a-f]{12}…\)$/m)
  assert.match(text.stdout, /^ {5}✓ database\.db/m)
  assert.equal(asJson.status, 1)
  assert.equal(JSON.parse(asJson.stdout).ok, false)
  assert.equal(quietFail.status, 1)
  assert.equal(quietFail.stdout, '')
  assert.match(quietFail.stderr, /✗ export\.sql: modifié/)
})

test('bad input gives one clear error line and exit 1 (2 for usage), and writes or deletes nothing', async (t) => {
  const { dir, url } = await workspace(t)
  const created = await cli(['--database', url, '--quiet'], dir)
  assert.equal(created.status, 0, created.stderr)
  writeFileSync(join(dir, 'not-sqlite.db'), 'these are my notes, not a database\n'.repeat(100))
  writeFileSync(join(dir, 'a-file'), 'x')
  const before = readdirSync(join(dir, 'backups')).sort()
  const cases: [string[], number, RegExp][] = [
    [['verify', 'backup-2020-01-01T00-00-00'], 2, /^Erreur : aucun backup « backup-2020-01-01T00-00-00 » dans .*backups$/],
    [['verify', '../../etc'], 2, /^Erreur : "\.\.\/\.\.\/etc" n’est pas un identifiant de backup$/],
    [['--database', 'file:./missing.db'], 1, /^Erreur : SQLite file:\.\/missing\.db : fichier de base introuvable$/],
    [['--database', 'file:./not-sqlite.db'], 1, /^Erreur : SQLite file:\.\/not-sqlite\.db : ouverture impossible : ce fichier n’est pas une base SQLite$/],
    [['--database', url, '--dir', 'a-file'], 1, /^Erreur : le dossier des backups .*a-file n’est pas un dossier$/],
    [['list', '--dir', 'a-file'], 1, /^Erreur : le dossier des backups .*a-file n’est pas un dossier$/],
    [['--formats', 'xml'], 2, /^Erreur : l’option --formats <list> refuse la valeur 'xml'/],
    [['--bogus'], 2, /^Erreur : option inconnue : --bogus$/],
    [['frobnicate'], 2, /^Erreur : commande inconnue : "frobnicate"$/],
  ]
  const results = await Promise.all(cases.map(([args]) => cli(args, dir)))
  for (const [index, [args, status, message]] of cases.entries()) {
    const result = results[index]!
    assert.equal(result.status, status, `${args.join(' ')}: ${result.stderr}`)
    assert.equal(result.stdout, '', args.join(' '))
    assert.match(result.stderr.split('\n')[0]!, message, args.join(' '))
    assert.ok(result.stderr.split('\n').length <= 3, `${args.join(' ')}: at most Error and Try lines`)
  }
  assert.deepEqual(readdirSync(join(dir, 'backups')).sort(), before)
  assert.equal(readFileSync(join(dir, 'a-file'), 'utf8'), 'x')
  assert.ok(!existsSync(join(dir, 'missing.db')))
})

test('restore without a terminal and without --yes refuses and says how (test/backup-restore.test.ts tests restore itself)', async (t) => {
  const { dir, url } = await workspace(t)
  await cli(['--database', url, '--quiet'], dir)
  const id = readdirSync(join(dir, 'backups'))[0]!.replace(/\..*/, '')
  const result = await cli(['--database', url, '4', id], dir)
  assert.equal(result.status, 2)
  assert.match(result.stderr, /^Erreur : restore remplace .* et demande une confirmation, mais aucun terminal ne permet de la demander\nEssayez : --yes/)
})

test('no space left on the backup disk: exit 1, one line, the partial backup removed and nothing else touched', async (t) => {
  const { dir, url } = await workspace(t)
  // 64 KiB: the snapshot does not fit; 120 KiB: the snapshot fits, the exports do not.
  for (const size of ['64k', '120k']) {
    const mountPoint = join(dir, `small-disk-${size}`)
    mkdirSync(mountPoint)
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mountPoint])
    if (mounted.status !== 0) {
      t.skip('cannot mount a tmpfs here (needs root): the no-space path is untested')
      return
    }
    defer(t, () => spawnSync('umount', [mountPoint]))
    writeFileSync(join(mountPoint, 'keep.txt'), 'keep me')
    for (const args of [[], ['--no-compress']]) {
      const result = await cli(['--database', url, '--dir', mountPoint, ...args], dir)
      assert.equal(result.status, 1, result.stdout)
      assert.match(result.stderr, /^Erreur : plus de place dans .*small-disk-\d+k : backup abandonné, fichiers partiels supprimés(: [^\n]*)?\nEssayez : /)
      // Only the failure's line in history.jsonl (for `check`) is added.
      assert.deepEqual(readdirSync(mountPoint).sort(), ['history.jsonl', 'keep.txt'])
      assert.match(readFileSync(join(mountPoint, 'history.jsonl'), 'utf8').trim().split('\n').at(-1)!, /"operation":"create".*"result":"failure","error":"plus de place/)
    }
  }
})
