/**
 * What a script costs before it does anything: median wall time, CPU (user + sys) and peak RSS of
 * spawned children over N runs, measured by `/usr/bin/time`, for `advanced-backup --help`,
 * `advanced-backup create` of a copy of the 90 KB demo database (prisma/dev.db) into a temp folder,
 * `database-performance-dashboard --help` and `test-all-databases --help`; each beside
 * `node --import tsx -e 0` (tsx's own start) and `node -e 0`. Target (issue #17): the demo backup in
 * ≤ 0.4 s and ≤ 100 MB. CPU is the figure to compare on a busy machine; wall time follows the load.
 * The last rows run the built tool (dist/advanced-backup.mjs, rebuilt here from the sources as
 * `npm run build` does, scripts/lib/dist.ts) under plain `node`, directly and as cron runs it
 * (`npm run --silent backup -- --quiet …`, docs/cron.md): what the npm scripts and cron use.
 *
 *   npx tsx bench/startup.ts [--runs 7]
 */
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command, InvalidArgumentError } from 'commander'
import { runCommand } from '../scripts/lib/cli.ts'
import { readGnuTime, underGnuTime } from './_data.ts'
import { buildDist } from '../scripts/lib/dist.ts'
import { percentile } from '../scripts/lib/statistics.ts'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const DEMO_DATABASE = join(ROOT, 'prisma', 'dev.db')
const TARGET = { seconds: 0.4, rssMb: 100 }

interface Run {
  wallS: number
  cpuS: number
  rssMb: number
}

interface Case {
  name: string
  args: string[]
  /** Runs before each measured spawn (outside the measure): a fresh copy of the demo database. */
  prepare?: () => void
}

const program = new Command('bench-startup').option('--runs <n>', 'spawns per command (median reported)', (v) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected an integer ≥ 1')
  return n
}, 7)

/** One spawn under `/usr/bin/time`, which waits for the child and reports its rusage. */
function measure(args: string[], timeFile: string): Run {
  const [command, timedArgs] = underGnuTime(args, timeFile)
  const child = spawnSync(command, timedArgs, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
  if (child.status !== 0) throw new Error(`${args.join(' ')} exited ${child.status}: ${child.stderr.slice(-2000)}`)
  const { wallS, cpuS, rssMib } = readGnuTime(timeFile)
  return { wallS, cpuS, rssMb: rssMib }
}

const median = (values: number[]) => percentile([...values].sort((a, b) => a - b), 50)

runCommand<{ runs: number }>(program, async (options) => {
  const work = mkdtempSync(join(tmpdir(), 'bench-startup-'))
  try {
    const database = join(work, 'dev.db')
    const backups = join(work, 'backups')
    const tsx = ['node', '--import', 'tsx']
    await buildDist({ root: ROOT, outDir: join(ROOT, 'dist') })
    const built = join('dist', 'advanced-backup.mjs')
    const freshDemoCopy = () => {
      rmSync(backups, { recursive: true, force: true })
      copyFileSync(DEMO_DATABASE, database)
    }
    const cases: Case[] = [
      { name: 'node -e 0', args: ['node', '-e', '0'] },
      { name: 'node --import tsx -e 0', args: [...tsx, '-e', '0'] },
      { name: 'advanced-backup --help', args: [...tsx, 'scripts/advanced-backup.ts', '--help'] },
      {
        name: 'advanced-backup create (demo db)',
        args: [...tsx, 'scripts/advanced-backup.ts', 'create', '--quiet', '--database', `file:${database}`, '--dir', backups],
        prepare: freshDemoCopy,
      },
      { name: 'database-performance-dashboard --help', args: [...tsx, 'scripts/database-performance-dashboard.ts', '--help'] },
      { name: 'test-all-databases --help', args: [...tsx, 'scripts/test-all-databases.ts', '--help'] },
      { name: 'node dist/advanced-backup.mjs --help', args: ['node', built, '--help'] },
      { name: 'node dist/advanced-backup.mjs create', args: ['node', built, 'create', '--quiet', '--database', `file:${database}`, '--dir', backups], prepare: freshDemoCopy },
      { name: 'npm run backup (cron)', args: ['npm', 'run', '--silent', 'backup', '--', '--quiet', '--database', `file:${database}`, '--dir', backups], prepare: freshDemoCopy },
    ]
    const timeFile = join(work, 'time.txt')
    const results = new Map<string, Run>()
    // Rounds interleave the commands, so a load change touches them all alike.
    const runs = new Map<string, Run[]>(cases.map((c) => [c.name, []]))
    for (let round = 0; round < options.runs; round++) {
      for (const c of cases) {
        c.prepare?.()
        runs.get(c.name)!.push(measure(c.args, timeFile))
      }
    }
    for (const [name, list] of runs) results.set(name, { wallS: median(list.map((r) => r.wallS)), cpuS: median(list.map((r) => r.cpuS)), rssMb: median(list.map((r) => r.rssMb)) })

    const node = results.get('node -e 0')!
    const bare = results.get('node --import tsx -e 0')!
    console.log(`Start-up, median of ${options.runs} runs (load average ${loadavg()[0]!.toFixed(2)} at the end):`)
    console.log(`${'command'.padEnd(40)} ${'wall'.padStart(7)} ${'CPU'.padStart(7)} ${'RSS'.padStart(8)}   CPU ÷ tsx   CPU ÷ node   RSS ÷ tsx`)
    for (const [name, r] of results) {
      console.log(
        `${name.padEnd(40)} ${`${r.wallS.toFixed(2)} s`.padStart(7)} ${`${r.cpuS.toFixed(2)} s`.padStart(7)} ${`${r.rssMb.toFixed(0)} MB`.padStart(8)}` +
          `   ${`${(r.cpuS / bare.cpuS).toFixed(2)}×`.padStart(9)}   ${`${(r.cpuS / node.cpuS).toFixed(1)}×`.padStart(10)}   ${`${(r.rssMb / bare.rssMb).toFixed(2)}×`.padStart(9)}`,
      )
    }
    const met = (ok: boolean) => (ok ? 'met' : 'not met')
    for (const name of ['advanced-backup create (demo db)', 'node dist/advanced-backup.mjs create', 'npm run backup (cron)']) {
      const r = results.get(name)!
      console.log(`Target (issue #17), ${name}: CPU ${r.cpuS.toFixed(2)} s ≤ ${TARGET.seconds} s ${met(r.cpuS <= TARGET.seconds)}, wall ${r.wallS.toFixed(2)} s ≤ ${TARGET.seconds} s ${met(r.wallS <= TARGET.seconds)}, RSS ${r.rssMb.toFixed(0)} MB ≤ ${TARGET.rssMb} MB ${met(r.rssMb <= TARGET.rssMb)}`)
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
})
