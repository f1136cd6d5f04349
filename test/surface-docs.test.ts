/**
 * The docs and the README say only what the tools do: every `--flag` written next to a tool exists in
 * that tool's --help, every `npm run X` is a script, every README link resolves, and the README's cron
 * example is the documented crontab line.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT, runScript } from './helpers/cli.ts'
import { ENGINES, openTestDatabase, tempDir } from './helpers/databases.ts'
import { openerFor } from '../scripts/lib/docs.ts'
import { DIST_ENTRIES } from '../scripts/lib/dist.ts'

const DOCS = ['docs/MIGRATION_DATABASES_GUIDE.md', 'docs/SYNTHESE_GESTION_DATABASES.md', 'docs/ADVANCED_FEATURES_DATABASES.md']
const ALL_TEXTS = ['README.md', ...DOCS, ...(existsSync(join(REPO_ROOT, 'docs', 'cron.md')) ? ['docs/cron.md'] : [])]
const read = (path: string) => readFileSync(join(REPO_ROOT, path), 'utf8')
const npmScripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts

/** Flags of other programs that the docs use (npm, docker, apt, node…): not ours to check. */
const FOREIGN_FLAGS = new Set(['--silent', '--import', '--test', '--test-concurrency', '--no-install-recommends', '--health-cmd'])

/** The script file an npm script runs, and the arguments it already passes (e.g. a verb). */
function scriptOf(name: string, seen = new Set<string>()): { file: string; args: string[] } | undefined {
  const command = npmScripts[name]
  if (command === undefined || seen.has(name)) return undefined
  seen.add(name)
  const nested = /^npm run (\S+)(.*)$/.exec(command)
  if (nested) {
    const inner = scriptOf(nested[1]!, seen)
    return inner && { file: inner.file, args: [...inner.args, ...nested[2]!.trim().split(/\s+/).filter(Boolean)] }
  }
  const direct = /^tsx (\S+\.ts)(.*)$/.exec(command)
  if (direct) return { file: direct[1]!, args: direct[2]!.trim().split(/\s+/).filter(Boolean) }
  // A built tool (dist/<name>.mjs) is its TypeScript entry, bundled (scripts/lib/dist.ts).
  const built = /^node dist\/([\w-]+)\.mjs(.*)$/.exec(command)
  const entry = built && DIST_ENTRIES.find((path) => basename(path, '.ts') === built[1])
  return built && entry ? { file: entry, args: built[2]!.trim().split(/\s+/).filter(Boolean) } : undefined
}

interface Mention {
  where: string
  /** The script file, e.g. scripts/advanced-backup.ts. */
  file: string
  /** Flags written after the tool on the same command (up to a pipe, &&, ;, redirection or comment). */
  flags: string[]
  text: string
}

/** Commands in fenced code blocks (line by line) and inline code spans. */
function commandTexts(markdown: string): string[] {
  const texts: string[] = []
  const fences = /^```[^\n]*\n([\s\S]*?)^```/gm
  for (const match of markdown.matchAll(fences)) texts.push(...match[1]!.split('\n'))
  const prose = markdown.replace(fences, '')
  for (const match of prose.matchAll(/`([^`\n]+)`/g)) texts.push(match[1]!)
  return texts
}

/** Every tool invocation of a text and the flags given to it. */
function mentions(where: string, markdown: string): Mention[] {
  const found: Mention[] = []
  for (const text of commandTexts(markdown)) {
    for (const segment of text.split(/\s(?:&&|\|\||\||;)\s/)) {
      const command = segment.split(/\s(?:#|>>|>|2>)/)[0]!
      const tool = /\bnpm run(?:\s+(?:--silent|-s))?\s+([a-z][\w:.-]*)|\b(?:npx\s+)?tsx\s+((?:scripts|prisma)\/[\w./-]+\.ts)/.exec(command)
      if (!tool) continue
      const file = tool[1] !== undefined ? scriptOf(tool[1])?.file : tool[2]
      if (file === undefined) continue
      const rest = command.slice(tool.index + tool[0].length)
      const flags = [...rest.matchAll(/(?<![\w-])(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!).filter((flag) => !FOREIGN_FLAGS.has(flag))
      found.push({ where, file, flags, text })
    }
  }
  return found
}

const run = promisify(execFile)
const helpCache = new Map<string, Promise<string>>()

/** A tool's --help, with every subcommand's --help appended (advanced-backup's verbs have their own options). */
function helpOf(file: string): Promise<string> {
  let help = helpCache.get(file)
  if (help === undefined) {
    const tsx = import.meta.resolve('tsx')
    const once = (args: string[]) => run(process.execPath, ['--import', tsx, join(REPO_ROOT, file), ...args], { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 }).then((r) => r.stdout)
    help = once(['--help']).then(async (root) => {
      const commands = /\nCommandes :\n([\s\S]*?)(?:\n\n|$)/.exec(root)?.[1] ?? ''
      // Commander marks the verbs that have options of their own with "[options]".
      const verbs = [...commands.matchAll(/^ {2}([a-z][\w-]*)\S*\s+\[options\]/gm)].map((m) => m[1]!).filter((verb) => verb !== 'help')
      const subs = await Promise.all(verbs.map((verb) => once([verb, '--help'])))
      return [root, ...subs].join('\n')
    })
    helpCache.set(file, help)
  }
  return help
}

const helpFlags = (help: string) => new Set([...help.matchAll(/(?<![\w-])--(?:\[no-\])?([a-z][a-z0-9-]*)/g)].map((m) => `--${m[1]}`))

test('the three docs exist and open with a French summary', () => {
  for (const doc of DOCS) {
    const text = read(doc)
    assert.match(text, /^# \S/, `${doc} starts with a title`)
    const top = text.split('\n').slice(0, 12).join('\n')
    assert.match(top, /Résumé \(FR\)/, `${doc}: a "Résumé (FR)" near the top`)
    assert.match(top, /\b(les|des|une|est|sont|avec)\b/, `${doc}: the summary is in French`)
  }
})

test('every npm run X in the README and the docs is an npm script', () => {
  for (const path of ALL_TEXTS) {
    for (const match of read(path).matchAll(/\bnpm run(?:\s+(?:--silent|-s))?\s+([a-z][\w:.-]*)/g)) {
      assert.ok(npmScripts[match[1]!] !== undefined, `${path}: npm run ${match[1]} is not in package.json`)
    }
    // Table cells list sibling scripts as `backup:list`, `dashboard:watch`…
    for (const match of read(path).matchAll(/`((?:backup|dashboard|test:db|db|migrate):[\w:-]+)`/g)) {
      assert.ok(npmScripts[match[1]!] !== undefined, `${path}: \`${match[1]}\` is not an npm script`)
    }
  }
})

test('every flag written next to a tool exists in that tool\'s --help', async () => {
  const all = ALL_TEXTS.flatMap((path) => mentions(path, read(path)))
  const files = [...new Set(all.filter((m) => m.flags.length > 0).map((m) => m.file))]
  assert.ok(files.includes('scripts/advanced-backup.ts') && files.includes('scripts/database-performance-dashboard.ts') && files.includes('scripts/migrate-postgres-to-sqlite.ts'))
  const helps = new Map(await Promise.all(files.map(async (file) => [file, await helpOf(file)] as const)))
  const problems: string[] = []
  for (const mention of all) {
    const known = helpFlags(helps.get(mention.file) ?? '')
    for (const flag of mention.flags) if (!known.has(flag)) problems.push(`${mention.where}: ${flag} is not an option of ${mention.file} (in "${mention.text.trim()}")`)
  }
  assert.deepEqual(problems, [])

  // Flags in prose and option tables: each must be an option of one of our tools (or a known foreign one).
  const everyHelp = await Promise.all(['scripts/advanced-backup.ts', 'scripts/database-performance-dashboard.ts', 'scripts/migrate-postgres-to-sqlite.ts', 'scripts/test-all-databases.ts', 'prisma/seed.ts', 'prisma/migrate.ts', 'scripts/show-docs.ts'].map(helpOf))
  const anyTool = helpFlags(everyHelp.join('\n'))
  const unknown: string[] = []
  for (const path of ALL_TEXTS) {
    for (const match of read(path).matchAll(/(?<![\w-])(--[a-z][a-z0-9-]*)/g)) {
      const flag = match[1]!
      if (!FOREIGN_FLAGS.has(flag) && !anyTool.has(flag)) unknown.push(`${path}: ${flag} is no tool's option`)
    }
  }
  assert.deepEqual(unknown, [])
})

test('the flag check catches an invented flag', async () => {
  const invented = mentions('example', '```sh\nnpm run backup -- --encrypt-twice --quiet\n```\n')
  assert.deepEqual(invented.map((m) => [m.file, m.flags]), [['scripts/advanced-backup.ts', ['--encrypt-twice', '--quiet']]])
  const known = helpFlags(await helpOf('scripts/advanced-backup.ts'))
  // --dry-run and --encrypt are options of verbs (prune, create): the verbs' help must have been read.
  assert.ok(known.has('--quiet') && known.has('--dry-run') && known.has('--encrypt') && known.has('--no-compress'))
  assert.ok(!known.has('--encrypt-twice'))
})

test('README: npm ci and npm test on the first screen, links that resolve, the three docs linked', () => {
  const readme = read('README.md')
  const top = readme.split('\n').slice(0, 25).join('\n')
  assert.match(top, /^npm ci\b/m)
  assert.match(top, /^npm test\b/m)
  for (const doc of DOCS) assert.ok(readme.includes(`](${doc})`), `README links ${doc}`)
  for (const path of ALL_TEXTS) {
    for (const match of read(path).matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1]!.split('#')[0]!
      if (/^[a-z]+:/.test(target) || target === '') continue
      assert.ok(existsSync(resolve(dirname(join(REPO_ROOT, path)), target)), `${path}: link ${match[1]} resolves`)
    }
  }
  assert.match(readme, /## Why Prisma 6\.19 and not 7/)
})

test('the README\'s cron example is the documented nightly backup line', () => {
  const jobLine = (text: string) => text.split('\n').find((line) => /^[\d*/,-]+(\s+[\d*/,-]+){4}\s+.*npm run (?:--silent )?backup\s/.test(line.trim()))?.trim()
  const cronDoc = existsSync(join(REPO_ROOT, 'docs', 'cron.md')) ? read('docs/cron.md') : read('docs/ADVANCED_FEATURES_DATABASES.md')
  const documented = jobLine(cronDoc)
  assert.ok(documented)
  assert.equal(jobLine(read('README.md')), documented)
})

test('npm run docs lists every doc with its title and, on a server without a desktop, says where to read instead of failing', () => {
  assert.match(npmScripts.docs!, /scripts\/show-docs\.ts --open/)
  const result = runScript('scripts/show-docs.ts', ['--open'], { env: { DISPLAY: '', WAYLAND_DISPLAY: '' } })
  assert.equal(result.status, 0, result.stderr)
  for (const doc of DOCS) {
    const title = /^# (.+)$/m.exec(read(doc))![1]!
    assert.match(result.stdout, new RegExp(`^  ${doc.replaceAll('.', '\\.')}\\s+${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'))
  }
  assert.match(result.stderr, /^Non ouvert : pas de session graphique .*Lisez .*docs\/SYNTHESE_GESTION_DATABASES\.md$/m)
  assert.deepEqual(openerFor('/a b/x.md', 'darwin', {}), { command: 'open', args: ['/a b/x.md'] })
  assert.deepEqual(openerFor('C:\\a b\\x.md', 'win32', {}), { command: 'cmd', args: ['/c', 'start', '""', '"C:\\a b\\x.md"'] })
  assert.deepEqual(openerFor('/x.md', 'linux', { DISPLAY: ':0' }), { command: 'xdg-open', args: ['/x.md'] })
  // Called directly, not through a chained `npm run`: `npm run dev -- --port 0` reaches the script as is.
  assert.equal(npmScripts.dev, npmScripts['dashboard:web'])
})

/** Every documented command that asks a tool for `--json`, as written (a comment and a `> file` redirection aside). */
function documentedJsonExamples(): { where: string; command: string }[] {
  const examples: { where: string; command: string }[] = []
  for (const path of ALL_TEXTS) {
    for (const text of commandTexts(read(path))) {
      const command = text.split(/\s#\s/)[0]!.replace(/\s>\s*\S+\s*$/, '').trim()
      if (/(?<![\w-])--json\b/.test(command) && mentions(path, `\`\`\`\n${command}\n\`\`\`\n`).length > 0) examples.push({ where: path, command })
    }
  }
  return examples
}

test('every documented --json example, run as written, prints JSON alone on stdout (no npm banner)', { skip: !ENGINES.includes('postgres') && 'TEST_ENGINES leaves PostgreSQL out (the migration example reads it)' }, async (t) => {
  const examples = documentedJsonExamples()
  assert.deepEqual(examples.map((e) => /npm run (?:--silent )?(\S+)/.exec(e.command)?.[1]).sort(), ['backup:list', 'dashboard', 'migrate:pg-to-sqlite'])
  const sqlite = await openTestDatabase(t, 'sqlite')
  const postgres = await openTestDatabase(t, 'postgres')
  const problems: string[] = []
  await Promise.all(examples.map(async ({ where, command }) => {
    const dir = tempDir(t)
    mkdirSync(join(dir, 'srv', 'b'), { recursive: true })
    mkdirSync(join(dir, 'srv', 'data'), { recursive: true })
    // The documented server paths go to a temp dir; the dashboard's metrics file too (not into the checkout).
    let placed = command.replaceAll('/srv/', `${dir}/srv/`)
    if (/\bdashboard\b/.test(placed)) placed += ` --output ${join(dir, 'metrics.json')}`
    const result = await run('sh', ['-c', placed], {
      cwd: REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1', DATABASE_URL: sqlite.url, POSTGRES_URL: postgres.url, npm_config_update_notifier: 'false' },
    }).catch((error: { code?: number; stdout?: string; stderr?: string }) => ({ stdout: error.stdout ?? '', stderr: `exit ${error.code}: ${error.stderr ?? ''}` }))
    try {
      JSON.parse(result.stdout)
    } catch (error) {
      problems.push(`${where}: "${command}" printed no valid JSON (${(error as Error).message}): ${result.stdout.slice(0, 200)}${result.stderr.slice(0, 300)}`)
    }
  }))
  assert.deepEqual(problems, [])
})
