/**
 * Benchmark of `advanced-backup create` (all formats, compressed, verified) against the shell
 * pipeline `sqlite3 .backup` + `sqlite3 .dump` + `sqlite3 -csv` per table + `tar czf` + `sha256sum`
 * on the 1M-dossier SQLite database (seeded once under bench/.data/). Prints both times, their
 * ratio and our peak RSS against the targets (ratio ≤ 1.0, RSS ≤ 256 MB). Then what
 * `--compression-level 1` and `9` cost and save against the default 6 (time and archive size).
 *
 *   npx tsx bench/backup.ts [--dossiers 1000000] [--no-levels] [--keep-output]
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { availableParallelism, loadavg } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command } from 'commander'
import { runCommand } from '../scripts/lib/cli.ts'
import { formatBytes } from '../scripts/lib/format.ts'
import { BENCH_DATA_DIR, measuredCreate, scaleSqliteDatabase, userTables } from './_data.ts'

const RATIO_TARGET = 1.0
const RSS_TARGET_MB = 256

interface ChildReport {
  ms: number
  maxRssMb: number
  archiveBytes: number
  contentBytes: number
}

const program = new Command('bench-backup')
  .option('--dossiers <n>', 'size of the scale database', (v) => Number(v.replaceAll('_', '')), 1_000_000)
  .option('--keep-output', 'keep the work folder (bench/.data/backup-run-*) for inspection')
  .option('--no-levels', 'skip the runs at --compression-level 1 and 9')
  .option('--level <n>', '(internal) gzip level of --child', Number)
  .option('--child <db>', '(internal) run one create in this process and report as JSON')
  .option('--dir <dir>', '(internal) backup folder of --child')

interface BenchOptions {
  dossiers: number
  keepOutput?: boolean
  levels: boolean
  level?: number
  child?: string
  dir?: string
}

runCommand<BenchOptions>(program, async (options) => {
  if (options.child !== undefined) {
    // Child mode: one create, measured from inside (maxRSS counts the compression threads too).
    const { ms, maxRssMb, metadata } = await measuredCreate(options.child, options.dir!, options.level !== undefined ? { compressionLevel: options.level } : {})
    const report: ChildReport = { ms, maxRssMb, archiveBytes: metadata.size, contentBytes: metadata.contentSize }
    process.stdout.write(JSON.stringify(report) + '\n')
    return 0
  }

  const database = await scaleSqliteDatabase(options.dossiers, { log: (line) => console.log(line) })
  const tables = userTables(database)
  const work = mkdtempSync(join(BENCH_DATA_DIR, 'backup-run-'))

  try {
    // Both runs start with the database in the page cache.
    execFileSync('cat', [database], { stdio: ['ignore', 'ignore', 'inherit'] })
    const dossiers = Number(execFileSync('sqlite3', [database, 'SELECT count(*) FROM "Dossier"'], { encoding: 'utf8' }).trim())
    console.log(`Backup benchmark: ${dossiers.toLocaleString('en')} dossiers, database ${formatBytes(statSync(database).size)}, ${availableParallelism()} cores, load average ${loadavg()[0]!.toFixed(1)}`)

    // The shell pipeline: what an administrator would script with the standard tools.
    const shellDir = join(work, 'shell')
    mkdirSync(join(shellDir, 'b', 'exports'), { recursive: true })
    const csv = tables.map((t) => `sqlite3 -header -csv "$DB" 'SELECT * FROM "${t}"' > b/exports/${t}.csv`).join('\n')
    const script = `set -euo pipefail
  sqlite3 "$DB" ".backup b/database.db"
  sqlite3 "$DB" .dump > b/export.sql
  ${csv}
  tar czf b.tar.gz b
  sha256sum b.tar.gz > b.tar.gz.sha256`
    const started = performance.now()
    const shell = spawnSync('bash', ['-c', script], { cwd: shellDir, env: { ...process.env, DB: database }, stdio: ['ignore', 'ignore', 'inherit'] })
    if (shell.status !== 0) throw new Error(`the shell pipeline failed (exit ${shell.status})`)
    const shellMs = performance.now() - started
    const shellArchive = statSync(join(shellDir, 'b.tar.gz')).size
    rmSync(join(shellDir, 'b'), { recursive: true, force: true })

    // Ours, in its own process so that its peak RSS is its own.
    const create = async (level?: number): Promise<{ wallMs: number; report: ChildReport }> => {
      const started = performance.now()
      const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), fileURLToPath(import.meta.url), '--child', database, '--dir', join(work, `ours-${level ?? 'default'}`), ...(level !== undefined ? ['--level', String(level)] : [])], {
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      let output = ''
      child.stdout.on('data', (chunk: Buffer) => (output += chunk))
      const status = await new Promise<number | null>((resolve) => child.on('close', resolve))
      if (status !== 0) throw new Error(`advanced-backup create failed (exit ${status})`)
      return { wallMs: performance.now() - started, report: JSON.parse(output) as ChildReport }
    }
    const { wallMs: oursWallMs, report: ours } = await create()

    const ratio = oursWallMs / shellMs
    const mark = (ok: boolean) => (ok ? '✓' : '✗ over target')
    const line = (label: string, ms: number, bytes: number, extra = '') => console.log(`  ${label.padEnd(64)} ${(ms / 1000).toFixed(1).padStart(6)} s   archive ${formatBytes(bytes)}${extra}`)
    line('shell: sqlite3 .backup + .dump + -csv ×' + tables.length + ' + tar czf + sha256sum', shellMs, shellArchive)
    line('advanced-backup create: sql+json+csv, tar.gz, SHA-256, verified', oursWallMs, ours.archiveBytes, ` (content ${formatBytes(ours.contentBytes)})`)
    console.log(`  ratio (ours / shell, wall time incl. process start): ${ratio.toFixed(2)}  target ≤ ${RATIO_TARGET.toFixed(1)}  ${mark(ratio <= RATIO_TARGET)}`)
    console.log(`  peak RSS of create: ${ours.maxRssMb.toFixed(0)} MB  target ≤ ${RSS_TARGET_MB} MB  ${mark(ours.maxRssMb <= RSS_TARGET_MB)}`)
    if (options.levels) {
      console.log('  --compression-level, against the default 6 (same database, one run each):')
      for (const level of [1, 9]) {
        const { wallMs, report } = await create(level)
        line(`advanced-backup create --compression-level ${level}`, wallMs, report.archiveBytes, `  time ×${(wallMs / oursWallMs).toFixed(2)}, size ×${(report.archiveBytes / ours.archiveBytes).toFixed(2)}`)
      }
    }
    return ratio <= RATIO_TARGET && ours.maxRssMb <= RSS_TARGET_MB ? 0 : 1
  } finally {
    if (options.keepOutput) console.log(`  output kept in ${work}`)
    else rmSync(work, { recursive: true, force: true })
  }
})
