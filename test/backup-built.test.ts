/**
 * The built backup tool (dist/advanced-backup.mjs, what the npm scripts and cron run under plain
 * node; `npm test` and `npm ci` build it) starts its helper threads from their built entries: a
 * database above both thread thresholds is backed up through `npm run backup`, and tar and sqlite3
 * find every row in the archive.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { REPO_ROOT } from './helpers/cli.ts'
import { tempDir } from './helpers/databases.ts'
import { run, sqliteCount } from './helpers/backup.ts'
import { requireJudge } from './helpers/judges.ts'
import { EXPORT_THREAD_FROM_BYTES } from '../scripts/lib/backup/create/exports.ts'
import { CHECKSUM_THREADS_FROM_ROWS } from '../scripts/lib/engines/sqlite/content-checksum.ts'
import { buildDist, DIST_ENTRIES, DIST_SOURCES_FILE, sourcesChangedSince } from '../scripts/lib/dist.ts'

const ROWS = 250_000

test('npm run backup (the built tool) exports and checksums a large SQLite database on its helper threads, and the archive holds every row', { skip: requireJudge('sqlite3', 'tar') }, (t) => {
  const dir = tempDir(t, 'ipm-built-')
  const database = join(dir, 'large.db')
  run('sqlite3', [database, `CREATE TABLE "Ligne" ("id" INTEGER PRIMARY KEY, "texte" TEXT NOT NULL, "octets" BLOB NOT NULL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${ROWS}) INSERT INTO "Ligne" SELECT i, hex(randomblob(60)), randomblob(60) FROM n;`])
  assert.ok(statSync(database).size >= EXPORT_THREAD_FROM_BYTES, 'large enough for the export thread')
  assert.ok(ROWS >= CHECKSUM_THREADS_FROM_ROWS, 'enough rows for the checksum threads')

  const backups = join(dir, 'backups')
  const result = spawnSync('npm', ['run', '--silent', 'backup', '--', '--quiet', '--database', `file:${database}`, '--dir', backups], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
  assert.equal(result.status, 0, result.stderr)
  assert.equal(result.stdout + result.stderr, '')

  const archive = readdirSync(backups).find((name) => name.endsWith('.tar.gz'))
  assert.ok(archive, 'an archive was published')
  const extracted = join(dir, 'extracted')
  run('mkdir', [extracted])
  run('tar', ['-xzf', join(backups, archive), '-C', extracted])
  const id = archive.slice(0, -'.tar.gz'.length)
  assert.equal(sqliteCount(join(extracted, id, 'database.db'), 'Ligne'), ROWS)
  const csv = readFileSync(join(extracted, id, 'exports', 'Ligne.csv'), 'utf8')
  assert.equal(csv.split('\n').filter((line) => line !== '').length, ROWS + 1, 'the header and every row')
})

test('every thread entry the library starts is built beside the tool (DIST_ENTRIES)', () => {
  const started: string[] = []
  const scripts = join(REPO_ROOT, 'scripts')
  for (const file of readdirSync(scripts, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.ts'))) {
    // Code only: threads.ts's own JSDoc example names a thread too.
    const source = readFileSync(join(scripts, file), 'utf8').split('\n').filter((line) => !/^\s*(\/\*\*|\*)/.test(line)).join('\n')
    for (const match of source.matchAll(/startTypeScriptThread\(new URL\('(\.\/[^']+\.ts)', import\.meta\.url\)/g)) {
      started.push(relative(REPO_ROOT, join(scripts, dirname(file), match[1]!)))
    }
  }
  assert.ok(started.length >= 2, `the export and checksum threads are found (${started.join(', ')})`)
  for (const entry of started) assert.ok((DIST_ENTRIES as readonly string[]).includes(entry), `${entry} is started as a thread but not in DIST_ENTRIES (scripts/lib/dist.ts)`)
})

test('a build knows the sources it was made from: current right after, older than a source changed or removed since', async (t) => {
  const outDir = join(tempDir(t, 'ipm-dist-'), 'dist')
  await buildDist({ root: REPO_ROOT, outDir })
  assert.deepEqual(sourcesChangedSince(REPO_ROOT, outDir), [])
  const listed = JSON.parse(readFileSync(join(outDir, DIST_SOURCES_FILE), 'utf8')) as { startedAt: number; inputs: string[] }
  assert.ok(listed.inputs.includes('scripts/advanced-backup.ts') && listed.inputs.includes('scripts/lib/cli.ts'), 'the entry and what it imports')
  assert.ok(!listed.inputs.some((input) => input.includes('node_modules')), 'packages stay outside the build')
  // A source changed after the build started (as a git pull leaves it), and one removed since.
  const changed = listed.inputs.find((input) => input === 'scripts/lib/format.ts')!
  const startedAt = statSync(join(REPO_ROOT, changed)).mtimeMs - 1
  writeFileSync(join(outDir, DIST_SOURCES_FILE), JSON.stringify({ startedAt, inputs: [...listed.inputs, 'scripts/lib/removed-since.ts'] }))
  const stale = sourcesChangedSince(REPO_ROOT, outDir)
  assert.ok(stale.includes(changed) && stale.includes('scripts/lib/removed-since.ts'), stale.join(', '))
  assert.ok(stale.length < listed.inputs.length, 'files older than the build are not listed')
})
