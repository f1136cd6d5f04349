/**
 * history.jsonl: one line per create / verify / prune (and restore), success or failure, with the
 * spec's fields; appends from concurrent processes never interleave; a line torn by a crash is
 * skipped with a warning and the next line stays readable.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { defer, openTestDatabase, tempDir } from './helpers/databases.ts'
import { REPO_ROOT, runScriptAsync } from './helpers/cli.ts'
import { backupSystem, steppingClock } from './helpers/backup.ts'
import { HISTORY_FILE, appendHistory, parseHistory, readHistory, type HistoryRecord } from '../scripts/lib/backup/catalog/history.ts'

const lines = (backupDir: string) => readFileSync(join(backupDir, HISTORY_FILE), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as HistoryRecord)

function assertTimes(record: HistoryRecord): void {
  assert.ok(Date.parse(record.start) <= Date.parse(record.end), JSON.stringify(record))
  // durationMs is measured on the monotonic clock, start/end on the wall clock: on a loaded machine
  // the two readings of each end can be far apart, so only the kind of value is asserted.
  assert.ok(Number.isInteger(record.durationMs) && record.durationMs >= 0, JSON.stringify(record))
  assert.ok(Math.abs(Date.now() - Date.parse(record.end)) < 60_000, 'wall-clock times, not the backup clock')
}

test('create, verify and prune append exactly one line each, failures included; rotation inside create, dry runs and usage errors add none', async (t) => {
  const db = await openTestDatabase(t, 'sqlite')
  const backupDir = join(tempDir(t), 'backups')
  const clock = steppingClock()
  const system = backupSystem(t, { databaseUrl: db.url, backupDir, maxBackups: 1, now: clock })
  const first = await system.create()
  const second = await system.create()
  assert.deepEqual(second.rotation.removed, [first.metadata.id])
  const verified = await system.verify(second.metadata.id)
  assert.ok(verified.ok)
  // A usage error never starts an operation: a restore without --yes and no terminal adds no line (nor the others below).
  await assert.rejects(system.restore(second.metadata.id, { to: join(tempDir(t), 'restored.db') }), /demande une confirmation/)
  await system.prune({ dryRun: true })
  await system.prune()
  // A verify that finds a fault does not throw: it is still a failure in the history.
  const archive = second.path
  const bytes = readFileSync(archive)
  bytes[bytes.length - 100]! ^= 0xff
  writeFileSync(archive, bytes)
  assert.equal((await system.verify(second.metadata.id)).ok, false)
  // Nor a mistyped or an invalid id.
  await assert.rejects(system.verify('backup-2020-01-01T00-00-00'), /aucun backup « backup-2020-01-01T00-00-00 »/)
  await assert.rejects(system.verify('../../etc'), /n’est pas un identifiant de backup/)
  await assert.rejects(system.restore('backup-2020-01-01T00-00-00', { yes: true }), /aucun backup « backup-2020-01-01T00-00-00 »/)
  const broken = backupSystem(t, { databaseUrl: `file:${join(tempDir(t), 'missing.db')}`, backupDir })
  await assert.rejects(broken.create(), /fichier de base introuvable/)

  const records = lines(backupDir)
  assert.deepEqual(
    records.map((r) => [r.operation, r.id ?? null, r.result]),
    [
      ['create', first.metadata.id, 'success'],
      ['create', second.metadata.id, 'success'],
      ['verify', second.metadata.id, 'success'],
      ['prune', null, 'success'],
      ['verify', second.metadata.id, 'failure'],
      ['create', null, 'failure'],
    ],
  )
  for (const record of records) {
    assert.equal(record.version, 1)
    assertTimes(record)
    assert.deepEqual(Object.keys(record).filter((k) => !['version', 'operation', 'id', 'start', 'end', 'durationMs', 'bytes', 'result', 'error'].includes(k)), [])
    assert.equal(record.error === undefined, record.result === 'success')
  }
  assert.equal(records[0]!.bytes, first.metadata.size)
  assert.equal(records[1]!.bytes, second.metadata.size)
  assert.equal(records[2]!.bytes, second.metadata.size)
  assert.equal(records[3]!.bytes, 0)
  assert.match(records[4]!.error!, /^vérification échouée : .*backup-2026-01-21T15-31-00\.tar\.gz (modifié|illisible)/)
  assert.match(records[5]!.error!, /^SQLite file:.*missing\.db : fichier de base introuvable$/)
  assert.deepEqual(await readHistory(backupDir), { records, warnings: [] })
})

test('a verb on a backup folder that does not exist records nothing and creates nothing', async (t) => {
  const backupDir = join(tempDir(t), 'never-made')
  const system = backupSystem(t, { databaseUrl: 'file:/nonexistent.db', backupDir })
  await assert.rejects(system.verify('backup-2020-01-01T00-00-00'))
  await system.prune()
  assert.deepEqual(await readHistory(backupDir), { records: [], warnings: [] })
  assert.throws(() => readFileSync(backupDir), /ENOENT/)
})

test('a history line that cannot be written is a warning: the operation\'s result decides, and a failed one keeps its error', async (t) => {
  const db = await openTestDatabase(t, 'sqlite', { seed: false })
  const backupDir = join(tempDir(t), 'backups')
  mkdirSync(join(backupDir, HISTORY_FILE), { recursive: true })
  const warnings: string[] = []
  const system = backupSystem(t, { databaseUrl: db.url, backupDir, exportFormats: ['json'], onWarning: (message) => warnings.push(message) })
  await system.create()
  assert.equal(warnings.length, 1)
  assert.match(warnings[0]!, /^create a réussi, mais sa ligne manque dans .*history\.jsonl \(.*\) : `advanced-backup check` le signalera$/)
  assert.equal((await system.list()).backups.length, 1, 'the backup itself is there')
  await assert.rejects(system.verify('backup-2020-01-01T00-00-00'), /^ToolkitError: aucun backup /)
})

test('a read-only backup folder: verify, a restore elsewhere and prune succeed (exit 0) with one warning each on stderr', async (t) => {
  const db = await openTestDatabase(t, 'sqlite')
  const root = tempDir(t)
  const backupDir = join(root, 'backups')
  const { metadata } = await backupSystem(t, { databaseUrl: db.url, backupDir, now: steppingClock() }).create()
  const before = readFileSync(join(backupDir, HISTORY_FILE), 'utf8')
  // Root writes through file modes: a read-only bind mount is what makes its writes fail.
  const bound = spawnSync('mount', ['--bind', backupDir, backupDir])
  if (bound.status !== 0) {
    t.skip('cannot bind-mount here (needs root; run the suite as root, as .ci/run does): the read-only folder is untested')
    return
  }
  defer(t, () => spawnSync('umount', [backupDir]))
  assert.equal(spawnSync('mount', ['-o', 'remount,ro,bind', backupDir]).status, 0)
  for (const args of [['verify', metadata.id], ['restore', metadata.id, '--to', join(root, 'restored.db'), '--yes'], ['prune', '--keep', '5']]) {
    const result = await runScriptAsync('scripts/advanced-backup.ts', ['--dir', backupDir, ...args], { env: { ALERT_WEBHOOK_URL: '' } })
    assert.equal(result.status, 0, `${args[0]}: ${result.stderr}`)
    assert.match(result.stderr, new RegExp(`^Attention : ${args[0]} a réussi, mais sa ligne manque dans .*history\\.jsonl \\(.*lecture seule.*\\) : \`advanced-backup check\` le signalera\n$`))
  }
  assert.equal(readFileSync(join(backupDir, HISTORY_FILE), 'utf8'), before)
})

test('a line torn by a crash is skipped with a warning, and the next append starts a fresh line', async (t) => {
  const backupDir = tempDir(t)
  const record = (operation: HistoryRecord['operation'], result: HistoryRecord['result']): HistoryRecord => ({
    version: 1,
    operation,
    start: '2026-01-21T15:30:00.000Z',
    end: '2026-01-21T15:30:01.000Z',
    durationMs: 1000,
    bytes: 10,
    result,
    ...(result === 'failure' ? { error: 'disk on fire\nsecond line' } : {}),
  })
  appendHistory(backupDir, record('create', 'success'))
  const whole = JSON.stringify(record('verify', 'success')) + '\n'
  appendFileSync(join(backupDir, HISTORY_FILE), whole.slice(0, 40))
  let read = await readHistory(backupDir)
  assert.equal(read.records.length, 1)
  assert.deepEqual(read.warnings, ['history.jsonl : dernière ligne incomplète (une exécution a été coupée en l’écrivant) ; ignorée'])

  appendHistory(backupDir, record('prune', 'failure'))
  read = await readHistory(backupDir)
  assert.deepEqual(read.records.map((r) => r.operation), ['create', 'prune'])
  assert.equal(read.records[1]!.error, 'disk on fire second line', 'errors are kept on one line')
  assert.deepEqual(read.warnings, ['history.jsonl ligne 2 : pas du JSON (coupée par un arrêt brutal ?) ; ignorée'])
  assert.equal(readFileSync(join(backupDir, HISTORY_FILE), 'utf8').split('\n').length, 4, 'three lines and the final newline')
})

test('lines of another version or shape are skipped with a warning naming them', () => {
  const good = { version: 1, operation: 'create', id: 'backup-2026-01-21T15-30-00', start: '2026-01-21T15:30:00Z', end: '2026-01-21T15:30:01Z', durationMs: 1000, bytes: 5, result: 'success' }
  const text = [
    good,
    { ...good, version: 2 },
    { ...good, operation: 'drop' },
    { ...good, id: '../../etc' },
    { ...good, bytes: -1 },
    { ...good, result: 'failure' },
    { ...good, start: 'yesterday' },
    [good],
  ]
    .map((v) => JSON.stringify(v))
    .join('\n') + '\n\n'
  const read = parseHistory(text)
  assert.deepEqual(read.records, [good])
  assert.deepEqual(read.warnings, [
    'history.jsonl ligne 2 : version 2 non prise en charge (cet outil lit la version 1) ; ignorée',
    'history.jsonl ligne 3 : "operation" devrait valoir create, verify, restore, prune, drill, rekey ; ignorée',
    'history.jsonl ligne 4 : "id" devrait être un identifiant de backup ; ignorée',
    'history.jsonl ligne 5 : "bytes" devrait être un nombre d’octets ; ignorée',
    'history.jsonl ligne 6 : un échec devrait porter "error" ; ignorée',
    'history.jsonl ligne 7 : "start" devrait être une date ISO 8601 ; ignorée',
    'history.jsonl ligne 8 : pas un objet ; ignorée',
  ])
})

test('four processes appending 150 long lines each at once: 600 whole lines, none interleaved', async (t) => {
  const backupDir = tempDir(t)
  const program = `
    import { appendHistory } from ${JSON.stringify(join(REPO_ROOT, 'scripts/lib/backup/catalog/history.ts'))}
    const [dir, writer] = process.argv.slice(-2)
    for (let i = 0; i < 150; i++) {
      appendHistory(dir, { version: 1, operation: 'verify', start: new Date().toISOString(), end: new Date().toISOString(), durationMs: 0, bytes: i, result: 'failure', error: writer + ':' + i + ':' + 'x'.repeat(900) })
    }
  `
  const writers = ['a', 'b', 'c', 'd'].map(
    (writer) =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', program, backupDir, writer], { stdio: ['ignore', 'ignore', 'inherit'] })
        child.on('close', resolve)
      }),
  )
  assert.deepEqual(await Promise.all(writers), [0, 0, 0, 0])
  const read = await readHistory(backupDir)
  assert.deepEqual(read.warnings, [])
  assert.equal(read.records.length, 600)
  for (const writer of ['a', 'b', 'c', 'd']) {
    const mine = read.records.filter((r) => r.error!.startsWith(`${writer}:`)).map((r) => r.bytes)
    assert.deepEqual(mine, Array.from({ length: 150 }, (_, i) => i), `${writer}'s lines are all there, in order`)
  }
})

test('refusals before the operation starts (no key, a bad key file, a bad --offsite URL) add no line to history.jsonl', async (t) => {
  const db = await openTestDatabase(t, 'sqlite')
  const dir = tempDir(t)
  const backupDir = join(dir, 'backups')
  const noKeys = { BACKUP_ENCRYPTION_KEY: '', BACKUP_PASSPHRASE: '', BACKUP_OFFSITE_URL: '' }
  const cli = (...args: string[]) => runScriptAsync('scripts/advanced-backup.ts', ['--dir', backupDir, '--database', db.url, ...args], { env: noKeys })
  const keyFile = join(dir, 'backup.key')
  assert.equal((await cli('keygen', '--key-file', keyFile)).status, 0)
  const created = await cli('create', '--encrypt', '--key-file', keyFile, '--json')
  assert.equal(created.status, 0, created.stderr)
  const id = (JSON.parse(created.stdout) as { metadata: { id: string } }).metadata.id
  const open = join(dir, 'open.key')
  writeFileSync(open, readFileSync(keyFile), { mode: 0o644 })
  const refusals: [string[], RegExp][] = [
    [['create', '--encrypt'], /--encrypt sans clé/],
    [['create', '--encrypt', '--key-file', join(dir, 'missing.key')], /missing\.key est introuvable/],
    [['create', '--encrypt', '--key-file', open], /est lisible par d’autres utilisateurs/],
    [['create', '--offsite', 'ftp://host/x'], /stockage « ftp:\/\/ » inconnu/],
    [['create', '--offsite', 's3://ab/x'], /nom de bucket S3 invalide « ab »/],
    [['restore', id, '--yes', '--to', join(dir, 'restored.db'), '--key-file', join(dir, 'missing.key')], /missing\.key est introuvable/],
  ]
  for (const [args, message] of refusals) {
    const result = await cli(...args)
    assert.equal(result.status, 2, `${args.join(' ')}: a usage refusal (exit 2): ${result.stderr}`)
    assert.match(result.stderr, new RegExp(`^Erreur : .*${message.source}`), args.join(' '))
  }
  assert.deepEqual(lines(backupDir).map((r) => [r.operation, r.id ?? null, r.result]), [['create', id, 'success']])
})
