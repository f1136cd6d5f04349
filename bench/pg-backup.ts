/**
 * Benchmark of a full backup of a 1M-dossier PostgreSQL database against the standard tools, in one
 * run (issue #17's row "PostgreSQL backup, all formats"): the built tool as cron runs it
 * (`node dist/advanced-backup.mjs create`, rebuilt here from the sources as `npm run build` does;
 * `--tsx` runs the TypeScript instead) — database.sql,
 * data.json, SQL and CSV exports, hashed, packed in a .tar.gz and read back to verify — against
 * `pg_dump` (plain) + `psql \copy … csv` per table, each through `gzip`. Each side runs under GNU
 * `/usr/bin/time` (wall, CPU of the process tree, peak RSS), alternately; the PostgreSQL server's own
 * work is in neither side's CPU. Targets: peak RSS ≤ 256 MiB, wall ≤ 3× the pipeline's.
 *
 * The pipeline is a floor, not an equal: it writes two formats, hashes nothing, packs nothing and
 * verifies nothing; the tool writes four, hashes every file and reads its archive back.
 *
 *   npx tsx bench/pg-backup.ts [--database postgresql://postgres@127.0.0.1:5432/ipm_bench] [--scale 1000000] [--runs 1] [--tsx] [--keep]
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { runCommand } from '../scripts/lib/cli.ts'
import { redactUrl } from '../scripts/lib/db/url.ts'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { buildDist } from '../scripts/lib/dist.ts'
import { formatBytes, formatDuration } from '../scripts/lib/format.ts'
import { BENCH_DATA_DIR, loadAverage, median, PG_BENCH_TABLES, pgBenchCommand, readGnuTime, scalePostgresDatabase, underGnuTime, type GnuTimeReport } from './_data.ts'

const ROOT = join(import.meta.dirname, '..')
const WORK_DIR = join(BENCH_DATA_DIR, 'pg-backup')
const RSS_TARGET_MIB = 256
const RATIO_TARGET = 3

const program = pgBenchCommand('bench-pg-backup')
  .option('--tsx', 'run scripts/advanced-backup.ts under tsx instead of the built tool')
  .option('--keep', 'keep the outputs under bench/.data/pg-backup/')

const log = (line: string) => process.stderr.write(`${line}\n`)

/** Bytes of every file under `dir`. */
function sizeOf(dir: string): number {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).reduce((sum, entry) => (entry.isFile() ? sum + statSync(join(entry.parentPath, entry.name)).size : sum), 0)
}

/** pg_dump plain and one psql \copy per table, each gzipped, in one bash under GNU time. */
function runPipeline(url: string): GnuTimeReport & { bytes: number } {
  const out = join(WORK_DIR, 'pipeline')
  rmSync(out, { recursive: true, force: true })
  mkdirSync(out, { recursive: true })
  const copies = PG_BENCH_TABLES.map((table) => `psql -X -q -v ON_ERROR_STOP=1 "$URL" -c '\\copy "${table}" to stdout csv header' | gzip > "$OUT/${table}.csv.gz"`)
  const script = [`pg_dump --format=plain "$URL" | gzip > "$OUT/dump.sql.gz"`, ...copies].join(' && ')
  const timeFile = join(WORK_DIR, 'pipeline.time')
  const [command, args] = underGnuTime(['bash', '-o', 'pipefail', '-c', script], timeFile)
  const result = spawnSync(command, args, { env: { ...process.env, URL: url, OUT: out }, encoding: 'utf8' })
  if (result.status !== 0) throw new ToolkitError(`the pipeline failed: ${result.stderr}`)
  return { ...readGnuTime(timeFile), bytes: sizeOf(out) }
}

/** The tool as cron runs it (or under tsx): its own process, every format, compressed and verified. */
function runTool(url: string, tsx: boolean): GnuTimeReport & { bytes: number } {
  const out = join(WORK_DIR, 'backups')
  rmSync(out, { recursive: true, force: true })
  const timeFile = join(WORK_DIR, 'tool.time')
  const tool = tsx ? ['--import', 'tsx', join(ROOT, 'scripts', 'advanced-backup.ts')] : [join(ROOT, 'dist', 'advanced-backup.mjs')]
  const [command, args] = underGnuTime([process.execPath, ...tool, 'create', '--quiet', '--database', url, '--dir', out], timeFile)
  const result = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8' })
  if (result.status !== 0) throw new ToolkitError(`advanced-backup create failed (exit ${result.status}): ${result.stderr}`)
  return { ...readGnuTime(timeFile), bytes: sizeOf(out) }
}

runCommand<{ database: string; scale: number; runs: number; tsx?: boolean; keep?: boolean }>(program, async (options) => {
  const rows = await scalePostgresDatabase(options.database, options.scale, { log })
  if (!options.tsx) await buildDist({ root: ROOT, outDir: join(ROOT, 'dist') })
  mkdirSync(WORK_DIR, { recursive: true })
  const runs: Record<'tool' | 'pipeline', (GnuTimeReport & { bytes: number })[]> = { tool: [], pipeline: [] }
  for (let run = 1; run <= options.runs; run++) {
    // Alternate which side goes first, so neither always meets a warm (or cold) cache.
    for (const side of run % 2 === 1 ? (['pipeline', 'tool'] as const) : (['tool', 'pipeline'] as const)) {
      const measured = side === 'tool' ? runTool(options.database, options.tsx ?? false) : runPipeline(options.database)
      runs[side].push(measured)
      log(`  ${side}: ${measured.wallS.toFixed(2)} s, CPU ${measured.cpuS.toFixed(1)} s, peak RSS ${measured.rssMib.toFixed(0)} MiB, ${formatBytes(measured.bytes)} (load ${loadAverage()})`)
    }
  }
  const med = (side: 'tool' | 'pipeline', key: 'wallS' | 'cpuS' | 'rssMib' | 'bytes') => median(runs[side].map((r) => r[key]))
  const line = (label: string, side: 'tool' | 'pipeline') =>
    `  ${label.padEnd(46)}${formatDuration(med(side, 'wallS') * 1000).padStart(7)}  CPU ${med(side, 'cpuS').toFixed(1)} s  peak RSS ${med(side, 'rssMib').toFixed(0)} MiB  ${formatBytes(med(side, 'bytes'))}`
  const wallRatio = med('tool', 'wallS') / med('pipeline', 'wallS')
  const cpuRatio = med('tool', 'cpuS') / med('pipeline', 'cpuS')
  const rss = med('tool', 'rssMib')
  const mark = (ok: boolean) => (ok ? 'within' : 'OVER')
  console.log(`PostgreSQL backup, ${rows.toLocaleString('en')} rows (${PG_BENCH_TABLES.join(', ')}) from ${redactUrl(options.database)}, median of ${options.runs} run(s), load average ${loadAverage()}:`)
  console.log(line('pg_dump | gzip + psql \\copy csv | gzip per table', 'pipeline'))
  console.log(line(`${options.tsx ? 'tsx scripts/advanced-backup.ts' : 'node dist/advanced-backup.mjs'} create`, 'tool'))
  console.log(`  peak RSS ${rss.toFixed(0)} MiB: ${mark(rss <= RSS_TARGET_MIB)} the target (≤ ${RSS_TARGET_MIB} MiB)`)
  console.log(`  wall ${wallRatio.toFixed(2)}×, CPU ${cpuRatio.toFixed(2)}× the pipeline: ${mark(wallRatio <= RATIO_TARGET)} the target (wall ≤ ${RATIO_TARGET}×)`)
  if (!options.keep) rmSync(WORK_DIR, { recursive: true, force: true })
  return rss <= RSS_TARGET_MIB && wallRatio <= RATIO_TARGET ? 0 : 1
})
