/**
 * Benchmark of the exports alone (issue #17's rows 2–4), each against the standard tool on the same
 * scale SQLite database (bench/.data/), in one run: the built tool as an operator runs it (`node
 * dist/advanced-backup.mjs --formats csv export --to <new folder>`: read in place, each file hashed
 * as it is written and fsynced, SHA256SUMS and export.json; rebuilt here from the sources as `npm run
 * build` does) against `sqlite3 -header -csv` per table, `sqlite3 .dump`, `sqlite3 -json` per table.
 * Both sides run under GNU `/usr/bin/time` (wall, CPU of the process tree, peak RSS), alternately,
 * from a warm page cache; the medians of `--runs` are compared against the target (≤ 1.5× wall).
 *
 *   npx tsx bench/exports.ts [--dossiers 1000000] [--runs 3] [--formats csv,sql,json] [--keep-output]
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { Command } from 'commander'
import { runCommand } from '../scripts/lib/cli.ts'
import { buildDist } from '../scripts/lib/dist.ts'
import { formatBytes } from '../scripts/lib/format.ts'
import type { ExportFormat } from '../scripts/lib/backup/layout.ts'
import type { ExportManifest } from '../scripts/lib/backup/create/export-only.ts'
import { BENCH_DATA_DIR, loadAverage, median, readGnuTime, scaleSqliteDatabase, underGnuTime, userTables, type GnuTimeReport } from './_data.ts'

const ROOT = join(import.meta.dirname, '..')
const RATIO_TARGET = 1.5
const FORMATS: readonly ExportFormat[] = ['csv', 'sql', 'json']

const program = new Command('bench-exports')
  .option('--dossiers <n>', 'size of the scale database', (v) => Number(v.replaceAll('_', '')), 1_000_000)
  .option('--runs <n>', 'runs of each side (the medians are compared)', Number, 3)
  .option('--formats <list>', 'formats to measure, comma-separated', (v) => v.split(',') as ExportFormat[], [...FORMATS])
  .option('--keep-output', 'keep the work folder (bench/.data/exports-run-*) for inspection')

interface BenchOptions {
  dossiers: number
  runs: number
  formats: ExportFormat[]
  keepOutput?: boolean
}

runCommand<BenchOptions>(program, async (options) => {
  const database = await scaleSqliteDatabase(options.dossiers, { log: (line) => console.log(line) })
  await buildDist({ root: ROOT, outDir: join(ROOT, 'dist') })
  const tables = userTables(database)
  const work = mkdtempSync(join(BENCH_DATA_DIR, 'exports-run-'))
  const tool: Record<ExportFormat, { label: string; script: string }> = {
    csv: { label: `sqlite3 -header -csv ×${tables.length}`, script: tables.map((t) => `sqlite3 -header -csv "$DB" 'SELECT * FROM "${t}"' > "out/${t}.csv"`).join('\n') },
    sql: { label: 'sqlite3 .dump', script: 'sqlite3 "$DB" .dump > out/export.sql' },
    json: { label: `sqlite3 -json ×${tables.length}`, script: tables.map((t) => `sqlite3 -json "$DB" 'SELECT * FROM "${t}"' > "out/${t}.json"`).join('\n') },
  }

  try {
    execFileSync('cat', [database], { stdio: ['ignore', 'ignore', 'inherit'] })
    const dossiers = Number(execFileSync('sqlite3', [database, 'SELECT count(*) FROM "Dossier"'], { encoding: 'utf8' }).trim())
    console.log(`Exports benchmark: ${dossiers.toLocaleString('en')} dossiers, database ${formatBytes(statSync(database).size)}, ${availableParallelism()} cores, load average ${loadAverage()}, median of ${options.runs}`)

    const runTool = (format: ExportFormat): GnuTimeReport => {
      const dir = join(work, `tool-${format}`)
      rmSync(dir, { recursive: true, force: true })
      mkdirSync(join(dir, 'out'), { recursive: true })
      const timeFile = join(work, 'tool.time')
      const [command, args] = underGnuTime(['bash', '-c', `set -euo pipefail\n${tool[format].script}`], timeFile)
      const shell = spawnSync(command, args, { cwd: dir, env: { ...process.env, DB: database }, stdio: ['ignore', 'ignore', 'inherit'] })
      if (shell.status !== 0) throw new Error(`${tool[format].label} failed (exit ${shell.status})`)
      return readGnuTime(timeFile)
    }
    const runOurs = (format: ExportFormat): GnuTimeReport & { bytes: number } => {
      const dir = join(work, `ours-${format}`)
      rmSync(dir, { recursive: true, force: true })
      const timeFile = join(work, 'ours.time')
      const [command, args] = underGnuTime([process.execPath, join(ROOT, 'dist', 'advanced-backup.mjs'), '--quiet', '--database', `file:${database}`, '--formats', format, 'export', '--to', dir], timeFile)
      const result = spawnSync(command, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
      if (result.status !== 0) throw new Error(`advanced-backup export --formats ${format} failed (exit ${result.status})`)
      const manifest = JSON.parse(readFileSync(join(dir, 'export.json'), 'utf8')) as ExportManifest
      return { ...readGnuTime(timeFile), bytes: manifest.files.reduce((sum, file) => sum + file.size, 0) }
    }

    let allMet = true
    for (const format of options.formats) {
      const toolRuns: GnuTimeReport[] = []
      const oursRuns: (GnuTimeReport & { bytes: number })[] = []
      for (let run = 1; run <= options.runs; run++) {
        // Alternate which side goes first.
        if (run % 2 === 1) toolRuns.push(runTool(format))
        oursRuns.push(runOurs(format))
        if (run % 2 === 0) toolRuns.push(runTool(format))
      }
      const wall = (runs: GnuTimeReport[]) => median(runs.map((r) => r.wallS))
      const cpu = (runs: GnuTimeReport[]) => median(runs.map((r) => r.cpuS))
      const ratio = wall(oursRuns) / wall(toolRuns)
      const met = ratio <= RATIO_TARGET
      allMet &&= met
      const seconds = (s: number) => `${s.toFixed(2).padStart(6)} s`
      console.log(
        `  ${format.padEnd(4)} ${tool[format].label.padEnd(24)} ${seconds(wall(toolRuns))} (CPU ${seconds(cpu(toolRuns))})   export --formats ${format} ${seconds(wall(oursRuns))} (CPU ${seconds(cpu(oursRuns))}, RSS ${median(oursRuns.map((r) => r.rssMib)).toFixed(0)} MiB, ${formatBytes(oursRuns[0]!.bytes)})` +
          `   wall ${ratio.toFixed(2)}×  CPU ${(cpu(oursRuns) / cpu(toolRuns)).toFixed(2)}×  target ≤ ${RATIO_TARGET.toFixed(1)}×  ${met ? '✓' : '✗ over target'}`,
      )
    }
    return allMet ? 0 : 1
  } finally {
    if (options.keepOutput) console.log(`  output kept in ${work}`)
    else rmSync(work, { recursive: true, force: true })
  }
})
