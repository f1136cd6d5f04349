/**
 * One language per line: every line a tool prints on a terminal (help of every script and verb,
 * usage errors, refusals, results) is French. The judge is a plain detector of common English
 * words, outside what is code (backquotes, quotes, paths, URLs, option names, placeholders,
 * identifiers); it names the line it refuses.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT, runScriptAsync, type CliResult } from './helpers/cli.ts'
import { tempDir } from './helpers/databases.ts'

/** Words a French line never holds, whole and in lower case. */
const ENGLISH_WORDS = new Set([
  'the', 'is', 'are', 'was', 'were', 'be', 'been', 'will', 'would', 'could', 'should', 'must', 'cannot', "can't", 'does', "doesn't", "isn't",
  'not', 'no', 'yet', 'with', 'without', 'and', 'or', 'of', 'to', 'into', 'in', 'at', 'by', 'as', 'for', 'from', 'this', 'that', 'these',
  'it', 'its', 'an', 'has', 'have', 'than', 'then', 'when', 'there', 'which', 'only', 'please', 'default', 'missing', 'failed', 'found',
  'skipped', 'unknown', 'invalid', 'expected', 'error', 'warning', 'try', 'every', 'none', 'nothing', 'after', 'before', 'if', 'all',
])

/** What is code, not prose: quoted or backquoted text, URLs, paths, options, placeholders, identifiers. */
function prose(line: string): string[] {
  const text = line
    .replace(/`[^`]*`/g, ' ')
    .replace(/"[^"]*"/g, ' ')
    .replace(/'[^' ]*'/g, ' ')
    .replace(/<[^<>]*>/g, ' ')
    .replace(/\[[^\]]*\]/g, (bracket) => (/^\[[a-zà-ÿ’' ]+\]$/i.test(bracket) ? bracket : ' '))
  return text
    .split(/[\s,;()«»]+/)
    .filter((token) => token !== '')
    .filter((token) => !/[/\\_=.:@]\S/.test(token) && !/^-{1,2}[a-z0-9]/i.test(token) && !/[a-z][A-Z]/.test(token) && token !== token.toUpperCase())
    .map((token) => token.replace(/^[^\p{L}']+|[^\p{L}']+$/gu, '').toLowerCase())
}

/** The English words of a line (empty when it reads as French). */
export function englishWords(line: string): string[] {
  return prose(line).filter((word) => ENGLISH_WORDS.has(word))
}

/** Every line of both streams that holds English, with the words found. */
function englishLines(result: CliResult): string[] {
  return `${result.stdout}\n${result.stderr}`
    .split('\n')
    .map((line) => ({ line, words: englishWords(line) }))
    .filter(({ words }) => words.length > 0)
    .map(({ line, words }) => `${JSON.stringify(line)} (${[...new Set(words)].join(', ')})`)
}

function assertFrench(what: string, result: CliResult): void {
  const english = englishLines(result)
  assert.deepEqual(english, [], `${what}: English on the terminal:\n${english.join('\n')}`)
}

test('the detector refuses an English line and lets French with code, paths and options through', () => {
  for (const line of [
    'Error: restore cancelled: nothing was changed',
    'Erreur : no test report yet: RESULTATS.json does not exist',
    '     ✗ metadata.json: manquant (no metadata.json inside the archive)',
    '  --keep <n>   rotation: complete backups to keep (default 10)',
    '    Note: the local D1 in /tmp/d1 had no schema',
    'Essayez : Run the tests first: npm run test:db.',
  ]) {
    assert.notDeepEqual(englishWords(line), [], `not caught: ${line}`)
  }
  for (const line of [
    'Erreur : aucun backup « backup-2020-01-01T00-00-00 » dans /tmp/ipm/backups',
    'Essayez : Listez les backups avec `advanced-backup list` (ou vérifiez --dir).',
    '  --no-compress   garder un dossier backup-<ts>/ au lieu de backup-<ts>.tar.gz',
    '  --database <url>   URL de la base (défaut : DATABASE_URL, sinon file:./prisma/dev.db)',
    "Erreur : l’option --formats <list> refuse la valeur 'xml' : une liste parmi sql, json, csv est attendue",
    'Erreur : schéma d’URL inconnu « mysql: » : mysql://u:****@h/x',
    '  help [commande]        afficher l’aide d’une commande',
  ]) {
    assert.deepEqual(englishWords(line), [], `refused: ${line}`)
  }
})

/** The scripts that declare a commander program. */
function commandScripts(): string[] {
  return ['scripts', 'prisma'].flatMap((folder) =>
    readdirSync(join(REPO_ROOT, folder))
      .filter((name) => name.endsWith('.ts') && readFileSync(join(REPO_ROOT, folder, name), 'utf8').includes('new Command('))
      .map((name) => `${folder}/${name}`),
  )
}

/** The command names listed under "Commandes :" in a help text. */
function commandsOf(help: string): string[] {
  const section = help.split(/^Commandes :$/m)[1] ?? ''
  return [...section.matchAll(/^ {2}([a-z][a-z-]*)(?:\|\S+)?\b/gm)].map((m) => m[1]!).filter((name) => name !== 'help')
}

test('--help of every script, of every verb of advanced-backup and of their subcommands is French', async () => {
  const scripts = commandScripts()
  assert.ok(scripts.includes('scripts/advanced-backup.ts') && scripts.includes('prisma/seed.ts') && scripts.length >= 10, scripts.join(', '))
  const helps = await Promise.all(scripts.map(async (script) => ({ script, args: ['--help'], result: await runScriptAsync(script, ['--help']) })))
  const backupHelp = helps.find((h) => h.script === 'scripts/advanced-backup.ts')!.result.stdout
  const verbs = commandsOf(backupHelp)
  assert.ok(verbs.includes('restore') && verbs.includes('prune') && verbs.includes('pitr'), verbs.join(', '))
  const verbHelps = await Promise.all(verbs.map(async (verb) => ({ script: 'scripts/advanced-backup.ts', args: [verb, '--help'], result: await runScriptAsync('scripts/advanced-backup.ts', [verb, '--help']) })))
  const subcommands = verbHelps.flatMap(({ args, result }) => commandsOf(result.stdout).map((sub) => [args[0]!, sub]))
  const subHelps = await Promise.all(subcommands.map(async (path) => ({ script: 'scripts/advanced-backup.ts', args: [...path, '--help'], result: await runScriptAsync('scripts/advanced-backup.ts', [...path, '--help']) })))
  for (const { script, args, result } of [...helps, ...verbHelps, ...subHelps]) {
    const what = `${script} ${args.join(' ')}`
    assert.equal(result.status, 0, `${what}: ${result.stderr}`)
    assert.match(result.stdout, /^Utilisation : /, what)
    assertFrench(what, result)
  }
})

test('errors, refusals and results of the tools are French, one language per line', async (t) => {
  const dir = tempDir(t)
  copyFileSync(join(REPO_ROOT, 'prisma', 'dev.db'), join(dir, 'app.db'))
  writeFileSync(join(dir, 'a-file'), 'x')
  writeFileSync(join(dir, 'notes.db'), 'these are notes, not a database\n'.repeat(50))
  mkdirSync(join(dir, 'empty'))
  const env = { DATABASE_URL: `file:${join(dir, 'app.db')}`, POSTGRES_URL: '', D1_URL: '' }
  const backup = (args: string[]) => runScriptAsync('scripts/advanced-backup.ts', ['--dir', join(dir, 'backups'), ...args], { cwd: dir, env })
  const created = await backup(['create', '--formats', 'json'])
  assert.equal(created.status, 0, created.stderr)
  assertFrench('advanced-backup create', created)
  const id = /backup-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d/.exec(created.stdout)![0]

  const secret = 'mysql://u:secret@h/x'
  const runs: [string, string[], boolean, Promise<CliResult>][] = (
    [
      ['scripts/advanced-backup.ts', ['--bogus'], false],
      ['scripts/advanced-backup.ts', ['frobnicate'], false],
      ['scripts/advanced-backup.ts', ['--database', secret], false],
      ['scripts/advanced-backup.ts', ['--database', 'file:./missing.db', '--dir', join(dir, 'empty')], false],
      ['scripts/advanced-backup.ts', ['--database', `file:${join(dir, 'notes.db')}`, '--dir', join(dir, 'empty')], false],
      ['scripts/advanced-backup.ts', ['--dir', join(dir, 'backups'), 'verify', 'backup-2020-01-01T00-00-00'], false],
      ['scripts/advanced-backup.ts', ['--dir', join(dir, 'backups'), 'verify', '../../etc'], false],
      ['scripts/advanced-backup.ts', ['--dir', join(dir, 'a-file'), 'list'], false],
      ['scripts/advanced-backup.ts', ['--dir', join(dir, 'backups'), 'restore', id, '--to', join(dir, 'restored.db')], false],
      ['scripts/advanced-backup.ts', ['--dir', join(dir, 'backups'), 'restore', id, '--to', join(dir, 'restored.db'), '--dry-run'], true],
      ['scripts/advanced-backup.ts', ['--dir', join(dir, 'backups'), 'verify', id], true],
      ['scripts/advanced-backup.ts', ['--dir', join(dir, 'backups'), 'list'], true],
      ['scripts/advanced-backup.ts', ['--dir', join(dir, 'backups'), 'stats'], true],
      ['scripts/advanced-backup.ts', ['--dir', join(dir, 'backups'), 'prune', '--dry-run'], true],
      ['scripts/advanced-backup.ts', ['--dir', join(dir, 'backups'), 'check', '--max-age', 'soon'], false],
      ['scripts/test-all-databases.ts', ['--database', secret], false],
      ['scripts/test-all-databases.ts', ['--show-report', '--report', join(dir, 'none.md')], false],
      ['scripts/test-all-databases.ts', ['--only', 'mysql'], false],
      ['scripts/migrate-postgres-to-sqlite.ts', ['--from', secret], false],
      ['scripts/migrate-postgres-to-sqlite.ts', [], false],
      ['scripts/database-performance-dashboard.ts', ['--iterations', '2'], false],
      ['scripts/database-performance-dashboard.ts', ['--fast-ms', '200', '--slow-ms', '100'], false],
      ['scripts/database-performance-dashboard.ts', ['--database', `file:${join(dir, 'missing', 'x.db')}`], false],
      ['scripts/menu.ts', [], false],
      ['scripts/show-docs.ts', ['--bogus'], false],
      ['prisma/migrate.ts', ['--database', `file:${join(dir, 'missing', 'x.db')}`], false],
      ['prisma/migrate.ts', ['--database', `file:${join(dir, 'app.db')}`, '--status'], true],
      ['prisma/seed.ts', ['--scale', '0'], false],
    ] as [string, string[], boolean][]
  ).map(([script, args, ok]) => [script, args, ok, runScriptAsync(script, args, { cwd: dir, env })])
  const results = await Promise.all(runs.map(([, , , result]) => result))
  for (const [index, [script, args, ok]] of runs.entries()) {
    const result = results[index]!
    const what = `${script} ${args.join(' ')}`
    if (ok) {
      assert.equal(result.status, 0, `${what}: ${result.stderr}`)
    } else {
      assert.notEqual(result.status, 0, `${what} should fail: ${result.stdout}`)
      assert.match(result.stderr, /^Erreur : /m, what)
    }
    assert.doesNotMatch(result.stdout + result.stderr, /secret/, what)
    assertFrench(what, result)
  }
})
