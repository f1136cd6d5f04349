/**
 * Benchmark of the exports alone, each against the standard tool on the same scale SQLite database
 * (bench/.data/), in one run: `advanced-backup create --formats csv` vs `sqlite3 -header -csv` per
 * table, `--formats sql` vs `sqlite3 .dump`, `--formats json` vs `sqlite3 -json` per table. Ours
 * runs in a child process, uncompressed and unverified (the tools neither compress nor verify), so
 * its time is start-up + snapshot + the export + hashing. Ratios (wall time incl. process start,
 * median of `--runs`, ours and the tool alternating) are printed against the target (≤ 1.5×).
 *
 *   npx tsx bench/exports.ts [--dossiers 1000000] [--runs 3] [--formats csv,sql,json] [--keep-output]
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { availableParallelism, loadavg } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command } from 'commander'
import { runCommand } from '../scripts/lib/cli.ts'
import { formatBytes } from '../scripts/lib/format.ts'
import type { ExportFormat } from '../scripts/lib/backup/layout.ts'
import { BENCH_DATA_DIR, measuredCreate, median, scaleSqliteDatabase, userTables } from './_data.ts'

const RATIO_TARGET = 1.5
const FORMATS: readonly ExportFormat[] = ['csv', 'sql', 'json']

interface ChildReport {
  ms: number
  maxRssMb: number
  contentBytes: number
}

const program = new Command('bench-exports')
  .option('--dossiers <n>', 'size of the scale database', (v) => Number(v.replaceAll('_', '')), 1_000_000)
  .option('--runs <n>', 'runs of each side (the median is compared)', Number, 3)
  .option('--formats <list>', 'formats to measure, comma-separated', (v) => v.split(',') as ExportFormat[], [...FORMATS])
  .option('--keep-output', 'keep the work folder (bench/.data/exports-run-*) for inspection')
  .option('--child <db>', '(internal) run one create in this process and report as JSON')
  .option('--format <format>', '(internal) the one format of --child')
  .option('--dir <dir>', '(internal) backup folder of --child')

interface BenchOptions {
  dossiers: number
  runs: number
  formats: ExportFormat[]
  keepOutput?: boolean
  child?: string
  format?: ExportFormat
  dir?: string
}


runCommand<BenchOptions>(program, async (options) => {
  if (options.child !== undefined) {
    const { ms, maxRssMb, metadata } = await measuredCreate(options.child, options.dir!, { exportFormats: [options.format!], compressionEnabled: false, verifyIntegrity: false })
    const report: ChildReport = { ms, maxRssMb, contentBytes: metadata.contentSize }
    process.stdout.write(JSON.stringify(report) + '\n')
    return 0
  }

  const database = await scaleSqliteDatabase(options.dossiers, { log: (line) => console.log(line) })
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
    console.log(`Exports benchmark: ${dossiers.toLocaleString('en')} dossiers, database ${formatBytes(statSync(database).size)}, ${availableParallelism()} cores, load average ${loadavg()[0]!.toFixed(1)}, median of ${options.runs}`)

    const runTool = (format: ExportFormat): number => {
      const dir = join(work, `tool-${format}`)
      rmSync(dir, { recursive: true, force: true })
      mkdirSync(join(dir, 'out'), { recursive: true })
      const started = performance.now()
      const shell = spawnSync('bash', ['-c', `set -euo pipefail\n${tool[format].script}`], { cwd: dir, env: { ...process.env, DB: database }, stdio: ['ignore', 'ignore', 'inherit'] })
      if (shell.status !== 0) throw new Error(`${tool[format].label} failed (exit ${shell.status})`)
      return performance.now() - started
    }
    const runOurs = async (format: ExportFormat): Promise<{ wallMs: number; report: ChildReport }> => {
      const dir = join(work, `ours-${format}`)
      rmSync(dir, { recursive: true, force: true })
      const started = performance.now()
      const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), fileURLToPath(import.meta.url), '--child', database, '--format', format, '--dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] })
      let output = ''
      child.stdout.on('data', (chunk: Buffer) => (output += chunk))
      const status = await new Promise<number | null>((resolve) => child.on('close', resolve))
      if (status !== 0) throw new Error(`advanced-backup create --formats ${format} failed (exit ${status})`)
      return { wallMs: performance.now() - started, report: JSON.parse(output) as ChildReport }
    }

    let allMet = true
    for (const format of options.formats) {
      const toolMs: number[] = []
      const oursMs: number[] = []
      let last: ChildReport | undefined
      for (let run = 0; run < options.runs; run++) {
        toolMs.push(runTool(format))
        const ours = await runOurs(format)
        oursMs.push(ours.wallMs)
        last = ours.report
      }
      const ratio = median(oursMs) / median(toolMs)
      const met = ratio <= RATIO_TARGET
      allMet &&= met
      const seconds = (ms: number) => `${(ms / 1000).toFixed(2).padStart(6)} s`
      console.log(`  ${format.padEnd(4)} ${tool[format].label.padEnd(26)} ${seconds(median(toolMs))}   create --formats ${format} ${seconds(median(oursMs))} (in-process ${seconds(last!.ms)}, RSS ${last!.maxRssMb.toFixed(0)} MB, ${formatBytes(last!.contentBytes)})   ratio ${ratio.toFixed(2)}  target ≤ ${RATIO_TARGET.toFixed(1)}  ${met ? '✓' : '✗ over target'}`)
    }
    return allMet ? 0 : 1
  } finally {
    if (options.keepOutput) console.log(`  output kept in ${work}`)
    else rmSync(work, { recursive: true, force: true })
  }
})
