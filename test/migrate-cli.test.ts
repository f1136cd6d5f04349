import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { REPO_ROOT, runScript, type CliResult } from './helpers/cli.ts'
import { defer, openTestDatabase, tempDir } from './helpers/databases.ts'
import { filesIn, schemaSource } from './helpers/migration.ts'
import { judge, requireJudge } from './helpers/judges.ts'

const SCRIPT = 'scripts/migrate-postgres-to-sqlite.ts'
const migrate = (args: string[], env: NodeJS.ProcessEnv = {}) => runScript(SCRIPT, args, { env: { POSTGRES_URL: '', ...env } })
const sha = (path: string) => execFileSync('sha256sum', [path], { encoding: 'utf8' }).split(' ')[0]

test('--dry-run lists the tables with their row counts and writes nothing', async (t) => {
  const source = await openTestDatabase(t, 'postgres')
  const dir = tempDir(t)
  const target = join(dir, 'app.db')
  const result = migrate(['--from', source.url, '--to', target, '--dry-run'])
  assert.equal(result.status, 0, result.stderr)
  assert.match(result.stdout, /^Source : postgresql:\/\/postgres@127\.0\.0\.1:5432\/ipm_test_\w+ \(PostgreSQL \d+/)
  assert.match(result.stdout, /Cible : .*app\.db \(nouveau fichier\)/)
  assert.match(result.stdout, /Schéma : les migrations SQLite de l’application \(20260121153000_init\)/)
  for (const [table, rows] of [['Plan', 6], ['Tenant', 6], ['Client', 3], ['Dossier', 9], ['User', 8]] as const) {
    assert.match(result.stdout, new RegExp(`^  ${table} +${rows}  app +toutes$`, 'm'))
  }
  assert.match(result.stdout, /laissée de côté : _prisma_migrations/)
  assert.match(result.stdout, /Aucun problème/)
  const json = migrate(['--from', source.url, '--to', target, '--dry-run', '--json'])
  assert.equal(json.status, 0)
  const report = JSON.parse(json.stdout)
  assert.equal(report.version, 1)
  assert.equal(report.status, 'planned')
  assert.equal(report.plan.totalRows, 32)
  assert.deepEqual(filesIn(dir), [])
})

test('an existing target is refused without --force; with --force it is replaced and kept as .before-migration', { skip: requireJudge('sha256sum', 'sqlite3') }, async (t) => {
  const source = await openTestDatabase(t, 'postgres')
  const dir = tempDir(t)
  const target = join(dir, 'app.db')
  writeFileSync(target, 'the previous database')
  const before = sha(target)
  const refused = migrate(['--from', source.url, '--to', target, '--yes'])
  assert.equal(refused.status, 1)
  assert.match(refused.stdout, /✗ la cible .*app\.db existe : passez --force pour la remplacer \(le fichier actuel est gardé sous .*app\.db\.before-migration\)/)
  assert.equal(sha(target), before)
  assert.deepEqual(filesIn(dir), ['app.db'])

  const forced = migrate(['--from', source.url, '--to', target, '--yes', '--force'])
  assert.equal(forced.status, 0, forced.stderr)
  assert.match(forced.stdout, /Vérification : 5\/5 tables identiques/)
  assert.match(forced.stdout, /Le fichier précédent est gardé sous .*app\.db\.before-migration/)
  assert.deepEqual(filesIn(dir), ['app.db', 'app.db.before-migration'])
  assert.equal(sha(join(dir, 'app.db.before-migration')), before)
  assert.equal(execFileSync('sqlite3', [target, 'SELECT count(*) FROM Dossier'], { encoding: 'utf8' }), '9\n')
})

test('wrong credentials: a clear message with the password masked, exit 1', async (t) => {
  const dir = tempDir(t)
  const result = migrate(['--from', 'postgresql://nobody_here:s3cr3t-pw@127.0.0.1:5432/postgres', '--to', join(dir, 'x.db'), '--yes'])
  assert.equal(result.status, 1)
  assert.match(result.stderr, /^Erreur : PostgreSQL postgresql:\/\/nobody_here:\*\*\*\*@127\.0\.0\.1:5432\/postgres : connexion impossible : .*nobody_here/m)
  assert.match(result.stderr, /^Essayez : /m)
  assert.doesNotMatch(result.stdout + result.stderr, /s3cr3t/)
  assert.deepEqual(filesIn(dir), [])
})

test('without a terminal it refuses to prompt and says which flags to pass', () => {
  const bare = migrate([])
  assert.equal(bare.status, 2)
  assert.equal(bare.stderr, 'Erreur : aucun argument et aucun terminal pour poser les questions\nEssayez : Passez --from <url-postgresql> --to <fichier.db> --yes (et --force pour remplacer un fichier existant), ou --dry-run pour seulement vérifier.\n')
  const unconfirmed = migrate(['--from', 'postgresql://postgres@127.0.0.1:5432/postgres', '--to', '/tmp/never.db'])
  assert.equal(unconfirmed.status, 2)
  assert.match(unconfirmed.stderr, /^Erreur : la migration demande une confirmation et aucun terminal ne permet de la demander\nEssayez : Passez --yes/)
  const noSource = migrate(['--to', '/tmp/never.db', '--yes'])
  assert.equal(noSource.status, 2)
  assert.match(noSource.stderr, /aucune base source/)
  assert.equal(existsSync('/tmp/never.db'), false)
})

/**
 * Runs the script in a private mount namespace where `dir` is a fresh tmpfs mounted with `mountOptions`
 * (gone with the namespace: nothing stays mounted), and lists what the run left on it.
 * Undefined when this machine cannot mount (no root / CAP_SYS_ADMIN).
 */
function migrateOnTmpfs(dir: string, mountOptions: string, args: string[]): (CliResult & { left: string[] }) | undefined {
  const probe = spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs -o ${mountOptions} tmpfs '${dir}'`], { encoding: 'utf8' })
  if (probe.status !== 0) return undefined
  const node = `'${process.execPath}' --import tsx '${join(REPO_ROOT, SCRIPT)}' ${args.map((a) => `'${a}'`).join(' ')}`
  const marker = '--- left on the file system:'
  const result = judge('unshare', ['-m', 'sh', '-c', `mount -t tmpfs -o ${mountOptions} tmpfs '${dir}' && ${node}; code=$?; echo '${marker}'; ls -A '${dir}'; exit $code`], {
    cwd: REPO_ROOT,
    env: { ...process.env, NO_COLOR: '1', POSTGRES_URL: '' },
  })
  const [stdout = '', left = ''] = result.stdout.split(`${marker}\n`)
  return { status: result.status, stdout, stderr: result.stderr, left: left.split('\n').filter((name) => name !== '') }
}

test('a target on a read-only file system: a clear message, exit 1, nothing written', async (t) => {
  const source = await openTestDatabase(t, 'postgres')
  const dir = tempDir(t)
  const result = migrateOnTmpfs(dir, 'ro,size=1m', ['--from', source.url, '--to', join(dir, 'app.db'), '--yes'])
  if (result === undefined) return t.skip('cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN); the plan reports it as "cannot write in <dir>"')
  assert.equal(result.status, 1, result.stderr)
  assert.match(result.stdout, new RegExp(`✗ écriture impossible dans ${dir} : système de fichiers en lecture seule`))
  assert.equal(result.stderr, 'Erreur : la migration ne peut pas se faire : 1 problème (listés ci-dessus) ; rien n’a été écrit\nEssayez : Choisissez un chemin --to inscriptible (--force remplace un fichier existant). --dry-run remontre le plan.\n')
  assert.deepEqual(result.left, [])
})

test('a disk that fills up during the copy: exit 1 and no half database left behind', async (t) => {
  const url = await schemaSource(t, `CREATE TABLE filler (id int PRIMARY KEY, body text NOT NULL);
    INSERT INTO filler SELECT g, repeat(md5(g::text), 20) FROM generate_series(1, 20000) g;`)
  const dir = tempDir(t)
  const result = migrateOnTmpfs(dir, 'size=2m', ['--from', url, '--to', join(dir, 'full.db'), '--yes'])
  if (result === undefined) return t.skip('cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)')
  assert.equal(result.status, 1, result.stdout)
  assert.match(result.stderr, /^Erreur : la copie de la table "filler" a échoué : disque plein ; rien n’a été écrit \(.*full\.db est inchangé\)\nEssayez : Libérez de la place sur le disque de .*full\.db, ou choisissez un autre --to\.\n$/)
  assert.deepEqual(result.left, [])
})

test('Ctrl-C during the copy stops it, removes the temporary file and exits 1; the target never appears', async (t) => {
  const url = await schemaSource(t, `CREATE TABLE big (id int PRIMARY KEY, a text NOT NULL, b text NOT NULL);
    INSERT INTO big SELECT g, md5(g::text), repeat('x', 300) FROM generate_series(1, 300000) g;`)
  const dir = tempDir(t)
  const target = join(dir, 'big.db')
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, SCRIPT), '--from', url, '--to', target, '--yes'], {
    cwd: REPO_ROOT,
    env: { ...process.env, NO_COLOR: '1', POSTGRES_URL: '' },
  })
  let stderr = ''
  child.stderr.on('data', (chunk) => (stderr += chunk))
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  defer(t, () => child.kill('SIGKILL'))
  // Mid-copy: the temporary database (and its WAL) beside the target holds more than 5 MB.
  const copied = () => filesIn(dir).filter((name) => name.includes('.tmp-')).reduce((sum, name) => sum + (existsSync(join(dir, name)) ? statSync(join(dir, name)).size : 0), 0)
  const deadline = Date.now() + 30_000
  while (copied() < 5_000_000) {
    assert.ok(Date.now() < deadline, `the copy never started: ${stderr}`)
    assert.equal(child.exitCode, null, `the copy ended before it could be interrupted: ${stderr}`)
    await sleep(20)
  }
  child.kill('SIGINT')
  assert.equal(await exited, 1)
  assert.match(stderr, /Interrompu : arrêt et suppression du fichier temporaire/)
  assert.match(stderr, /^Erreur : interrompu : la migration a été arrêtée avant la fin ; rien n’a été écrit$/m)
  assert.deepEqual(filesIn(dir), [])
})

test('the assistant on a real terminal (tmux): asks, shows the plan, copies after consent, never shows the password', { skip: requireJudge('sqlite3', 'tmux') }, async (t) => {
  const source = await openTestDatabase(t, 'postgres')
  const withPassword = new URL(source.url)
  withPassword.password = 'topsecret' // trust authentication ignores it; the assistant must not show it
  const dir = tempDir(t)
  const target = join(dir, 'assisted.db')
  const socket = `ipm-migrate-${randomBytes(4).toString('hex')}`
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' })
  const command = `cd '${REPO_ROOT}' && POSTGRES_URL='${withPassword}' NO_COLOR=1 '${process.execPath}' --import tsx ${SCRIPT}; echo $? > '${join(dir, 'exit-code')}'; sleep 60`
  tmux('new-session', '-d', '-s', 'migrate', '-x', '150', '-y', '50', command)
  defer(t, () => spawnSync('tmux', ['-L', socket, 'kill-server']))
  const screen = () => tmux('capture-pane', '-p', '-t', 'migrate', '-S', '-100')
  const waitFor = async (pattern: RegExp) => {
    const deadline = Date.now() + 20_000
    while (!pattern.test(screen())) {
      assert.ok(Date.now() < deadline, `waited for ${pattern} on:\n${screen()}`)
      await sleep(50)
    }
  }
  await waitFor(/URL PostgreSQL de la source : \(postgresql:\/\/postgres:\*\*\*\*@/)
  tmux('send-keys', '-t', 'migrate', 'Enter')
  await waitFor(/Fichier SQLite cible \(un nouveau fichier\) :/)
  tmux('send-keys', '-t', 'migrate', '-l', target)
  tmux('send-keys', '-t', 'migrate', 'Enter')
  await waitFor(/Copier 32 lignes de 5 tables dans .*assisted\.db \?/)
  assert.match(screen(), /Dossier +9 +app +toutes/)
  tmux('send-keys', '-t', 'migrate', '-l', 'y')
  tmux('send-keys', '-t', 'migrate', 'Enter')
  const deadline = Date.now() + 30_000
  while (!existsSync(join(dir, 'exit-code'))) {
    assert.ok(Date.now() < deadline, screen())
    await sleep(50)
  }
  assert.equal(readFileSync(join(dir, 'exit-code'), 'utf8').trim(), '0', screen())
  assert.match(screen(), /Vérification : 5\/5 tables identiques/)
  assert.doesNotMatch(screen(), /topsecret/)
  assert.equal(execFileSync('sqlite3', [target, 'SELECT count(*) FROM Dossier'], { encoding: 'utf8' }), '9\n')
})
