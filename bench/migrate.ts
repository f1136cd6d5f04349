/**
 * Benchmark of `migrate-postgres-to-sqlite` on a 1M-dossier PostgreSQL database against the standard
 * tools' pipeline for the same tables, in one run: `psql -c "\copy … to stdout csv" | sqlite3 .import`
 * into the same SQLite schema (the committed migrations, indexes included). Prints issue #17's row:
 * the tool's peak RSS (target ≤ 256 MiB) and its wall and CPU against the pipeline's (target ≤ 1.2× the
 * wall on one free core: `--one-core` pins both sides to one CPU; otherwise the CPU ratio stands for it).
 * Each side runs under GNU `/usr/bin/time`, which reports the peak RSS and CPU of the process tree.
 *
 * The pipeline is a floor, not an equal: it copies PostgreSQL's text as it is (booleans as t/f,
 * timestamps Prisma cannot read), checks nothing and writes in place; the tool converts every value,
 * verifies every table against the source and fsyncs before an atomic rename.
 *
 *   npx tsx bench/migrate.ts [--database postgresql://postgres@127.0.0.1:5432/ipm_bench] [--scale 1000000] [--runs 1] [--one-core] [--keep]
 *
 * The PostgreSQL database is created, migrated and seeded once (about a minute) and reused afterwards.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { runCommand } from '../scripts/lib/cli.ts'
import { MIGRATIONS_DIRS, readMigrations } from '../scripts/lib/db/migrations.ts'
import { redactUrl } from '../scripts/lib/db/url.ts'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { formatDuration } from '../scripts/lib/format.ts'
import type { MigrationReportJson } from '../scripts/lib/migration/report.ts'
import { loadAverage, median, PG_BENCH_TABLES as TABLES, pgBenchCommand, readGnuTime, scalePostgresDatabase, underGnuTime } from './_data.ts'

const ROOT = join(import.meta.dirname, '..')
const WORK_DIR = join(ROOT, 'bench', '.data', 'migrate')
const RSS_TARGET_MIB = 256
const RATIO_TARGET = 1.2

const program = pgBenchCommand('bench-migrate')
  .option('--one-core', 'pin both sides to CPU 0 with taskset (the PostgreSQL server is not pinned): the wall ratio on one core')
  .option('--keep', 'keep the SQLite files under bench/.data/migrate/')

const log = (line: string) => process.stderr.write(`${line}\n`)

/** What GNU time says of one finished command (its whole process tree): wall, CPU (user + system), peak RSS. */
interface Measured {
  ms: number
  cpu: number
  rssMib: number
}

/** The command line that runs `argv` under GNU time (and taskset with --one-core), its report written to `timeFile`. */
function timed(argv: string[], timeFile: string, oneCore: boolean): [string, string[]] {
  return underGnuTime(oneCore ? ['taskset', '-c', '0', ...argv] : argv, timeFile)
}

function readTimeFile(timeFile: string): Measured {
  const { wallS, cpuS, rssMib } = readGnuTime(timeFile)
  return { ms: wallS * 1000, cpu: cpuS, rssMib }
}

runCommand<{ database: string; scale: number; runs: number; oneCore?: boolean; keep?: boolean }>(program, async (options) => {
  const rows = await scalePostgresDatabase(options.database, options.scale, { log })
  mkdirSync(WORK_DIR, { recursive: true })
  const oneCore = options.oneCore ?? false
  const runs: Record<'tool' | 'pipeline', Measured[]> = { tool: [], pipeline: [] }
  let lastReport: MigrationReportJson | undefined
  for (let run = 1; run <= options.runs; run++) {
    // Alternate which side goes first, so neither always meets a warm (or cold) cache.
    const sides = run % 2 === 1 ? (['pipeline', 'tool'] as const) : (['tool', 'pipeline'] as const)
    for (const side of sides) {
      if (side === 'pipeline') {
        const measured = runPipeline(options.database, join(WORK_DIR, 'pipeline.db'), rows, oneCore)
        runs.pipeline.push(measured)
        log(`  pipeline: ${formatDuration(measured.ms)}, CPU ${measured.cpu.toFixed(1)} s, peak RSS ${measured.rssMib.toFixed(0)} MiB`)
      } else {
        const { report, measured } = runTool(options.database, join(WORK_DIR, 'tool.db'), rows, oneCore)
        runs.tool.push(measured)
        lastReport = report
        log(`  tool: ${formatDuration(measured.ms)}, CPU ${measured.cpu.toFixed(1)} s, peak RSS ${measured.rssMib.toFixed(0)} MiB`)
      }
    }
  }
  const med = (side: 'tool' | 'pipeline', key: keyof Measured) => median(runs[side].map((r) => r[key]))
  const wallRatio = med('tool', 'ms') / med('pipeline', 'ms')
  const cpuRatio = med('tool', 'cpu') / med('pipeline', 'cpu')
  const rss = med('tool', 'rssMib')
  const perSecond = (ms: number) => Math.round(rows / (ms / 1000)).toLocaleString('en')
  const line = (label: string, side: 'tool' | 'pipeline') =>
    `  ${label.padEnd(30)}${formatDuration(med(side, 'ms')).padStart(7)}  ${perSecond(med(side, 'ms')).padStart(9)} rows/s  CPU ${med(side, 'cpu').toFixed(1)} s  peak RSS ${med(side, 'rssMib').toFixed(0)} MiB  [${runs[side].map((r) => formatDuration(r.ms)).join(', ')}]`
  const phases = Object.entries(lastReport?.phases ?? {}).map(([name, ms]) => `${name} ${formatDuration(ms)}`).join(', ')
  const mark = (ok: boolean) => (ok ? 'within' : 'OVER')
  // On one core the wall is the CPU: without --one-core, the CPU ratio is what the target reads.
  const oneCoreRatio = oneCore ? wallRatio : cpuRatio
  console.log(`PostgreSQL → SQLite, ${rows.toLocaleString('en')} rows (${TABLES.join(', ')}) from ${redactUrl(options.database)}, median of ${options.runs} run(s)${oneCore ? ', both pinned to CPU 0' : ''}, load average ${loadAverage()}:`)
  console.log(line('psql \\copy | sqlite3 .import', 'pipeline'))
  console.log(line('migrate-postgres-to-sqlite', 'tool'))
  console.log(`  tool phases (last run): ${phases}`)
  console.log(`  peak RSS ${rss.toFixed(0)} MiB: ${mark(rss <= RSS_TARGET_MIB)} the target (≤ ${RSS_TARGET_MIB} MiB)`)
  console.log(`  wall ${wallRatio.toFixed(2)}×, CPU ${cpuRatio.toFixed(2)}× the pipeline; ${oneCore ? 'wall on one core' : 'CPU (the wall on one free core)'} ${oneCoreRatio.toFixed(2)}×: ${mark(oneCoreRatio <= RATIO_TARGET)} the target (≤ ${RATIO_TARGET}×)`)
  if (!options.keep) rmSync(WORK_DIR, { recursive: true, force: true })
  return rss <= RSS_TARGET_MIB && oneCoreRatio <= RATIO_TARGET ? 0 : 1
})

/**
 * The standard tools: the SQLite schema from the committed migration, then one psql | sqlite3 pipe per
 * table, all in one bash under GNU time (the schema file and the final counts are not part of it).
 */
function runPipeline(url: string, path: string, rows: number, oneCore: boolean): Measured {
  for (const suffix of ['', '-journal']) rmSync(path + suffix, { force: true })
  const schema = readMigrations(MIGRATIONS_DIRS.sqlite).map((m) => m.sql).join('\n;\n')
  execFileSync('sqlite3', [path], { input: schema })
  const script = TABLES.map((table) => `psql -X -q -v ON_ERROR_STOP=1 "$URL" -c '\\copy "${table}" to stdout csv' | sqlite3 "$DB" '.import --csv /dev/stdin ${table}'`).join(' && ')
  const timeFile = join(WORK_DIR, 'pipeline.time')
  const [command, args] = timed(['bash', '-o', 'pipefail', '-c', script], timeFile, oneCore)
  const result = spawnSync(command, args, { env: { ...process.env, URL: url, DB: path }, encoding: 'utf8' })
  if (result.status !== 0) throw new ToolkitError(`the pipeline failed: ${result.stderr}`)
  const copied = TABLES.reduce((sum, table) => sum + Number(execFileSync('sqlite3', [path, `SELECT count(*) FROM "${table}"`], { encoding: 'utf8' })), 0)
  if (copied !== rows) throw new ToolkitError(`the pipeline copied ${copied} rows, expected ${rows}`)
  return readTimeFile(timeFile)
}

/** The tool as a user runs it (a process of its own), with --json to read its own phases and verification. */
function runTool(url: string, path: string, rows: number, oneCore: boolean): { report: MigrationReportJson; measured: Measured } {
  for (const suffix of ['', '.before-migration']) rmSync(path + suffix, { force: true })
  const timeFile = join(WORK_DIR, 'tool.time')
  const [command, args] = timed([process.execPath, '--import', 'tsx', join(ROOT, 'scripts', 'migrate-postgres-to-sqlite.ts'), '--from', url, '--to', path, '--yes', '--json'], timeFile, oneCore)
  const result = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  if (result.status !== 0) throw new ToolkitError(`migrate-postgres-to-sqlite failed (exit ${result.status}): ${result.stderr}`)
  const report = JSON.parse(result.stdout) as MigrationReportJson
  const copied = report.tables.reduce((sum, table) => sum + table.targetRows, 0)
  if (report.status !== 'migrated' || copied !== rows || !report.tables.every((table) => table.ok)) {
    throw new ToolkitError(`migrate-postgres-to-sqlite copied ${copied} rows (${report.status}), expected ${rows} verified rows`)
  }
  return { report, measured: readTimeFile(timeFile) }
}
