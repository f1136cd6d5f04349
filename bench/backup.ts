/**
 * Benchmark of a full backup (issue #17's first row): the built tool as cron runs it (`node
 * dist/advanced-backup.mjs create`: database.db, export.sql, data.json, CSV, each hashed, a tar.gz
 * read back to verify; rebuilt here from the sources as `npm run build` does) against the standard
 * tools doing the same on the 1M-dossier SQLite database (seeded once under bench/.data/):
 * `VACUUM INTO` + `.dump` + `-csv` and `-json` per table + `sha256sum` of every file + `tar czf`.
 * Both sides run under GNU `/usr/bin/time` (wall, CPU of the process tree, peak RSS), alternately,
 * from a warm page cache; the medians of `--runs` are compared. Targets: wall ≤ 0.5×, CPU ≤ 0.8×,
 * peak RSS ≤ 256 MB. Then what `--compression-level 1` and `9` cost and save against the default 6.
 *
 *   npx tsx bench/backup.ts [--dossiers 1000000] [--runs 3] [--no-levels] [--keep-output]
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { Command } from 'commander'
import { runCommand } from '../scripts/lib/cli.ts'
import { buildDist } from '../scripts/lib/dist.ts'
import { formatBytes } from '../scripts/lib/format.ts'
import { BENCH_DATA_DIR, loadAverage, median, readGnuTime, scaleSqliteDatabase, underGnuTime, userTables, type GnuTimeReport } from './_data.ts'

const ROOT = join(import.meta.dirname, '..')
const WALL_TARGET = 0.5
const CPU_TARGET = 0.8
const RSS_TARGET_MB = 256

const program = new Command('bench-backup')
  .option('--dossiers <n>', 'size of the scale database', (v) => Number(v.replaceAll('_', '')), 1_000_000)
  .option('--runs <n>', 'runs of each side (the medians are compared)', (v) => Number(v), 3)
  .option('--keep-output', 'keep the work folder (bench/.data/backup-run-*) for inspection')
  .option('--no-levels', 'skip the runs at --compression-level 1 and 9')

interface Measured extends GnuTimeReport {
  archiveBytes: number
}

runCommand<{ dossiers: number; runs: number; keepOutput?: boolean; levels: boolean }>(program, async (options) => {
  const database = await scaleSqliteDatabase(options.dossiers, { log: (line) => console.log(line) })
  const tables = userTables(database)
  const work = mkdtempSync(join(BENCH_DATA_DIR, 'backup-run-'))
  await buildDist({ root: ROOT, outDir: join(ROOT, 'dist') })

  // The standard tools: a consistent copy, the two text exports per table, a hash per file, one archive.
  const shell = (): Measured => {
    const dir = join(work, 'shell')
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(join(dir, 'b', 'exports'), { recursive: true })
    const perTable = tables.flatMap((t) => [`sqlite3 -header -csv "$DB" 'SELECT * FROM "${t}"' > b/exports/${t}.csv`, `sqlite3 -json "$DB" 'SELECT * FROM "${t}"' > b/exports/${t}.json`])
    const script = ['set -euo pipefail', `sqlite3 "$DB" "VACUUM INTO 'b/database.db'"`, 'sqlite3 "$DB" .dump > b/export.sql', ...perTable, '(cd b && find . -type f -print0 | sort -z | xargs -0 sha256sum > ../SHA256SUMS)', 'tar czf b.tar.gz b SHA256SUMS'].join('\n')
    const timeFile = join(work, 'shell.time')
    const [command, args] = underGnuTime(['bash', '-c', script], timeFile)
    const result = spawnSync(command, args, { cwd: dir, env: { ...process.env, DB: database }, stdio: ['ignore', 'ignore', 'inherit'] })
    if (result.status !== 0) throw new Error(`the shell pipeline failed (exit ${result.status})`)
    return { ...readGnuTime(timeFile), archiveBytes: statSync(join(dir, 'b.tar.gz')).size }
  }
  // Ours as cron runs it, in its own process tree.
  const ours = (level?: number): Measured => {
    const dir = join(work, `ours-${level ?? 'default'}`)
    rmSync(dir, { recursive: true, force: true })
    const timeFile = join(work, 'ours.time')
    const [command, args] = underGnuTime([process.execPath, join(ROOT, 'dist', 'advanced-backup.mjs'), 'create', '--quiet', '--database', `file:${database}`, '--dir', dir, ...(level !== undefined ? ['--compression-level', String(level)] : [])], timeFile)
    const result = spawnSync(command, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
    if (result.status !== 0) throw new Error(`advanced-backup create failed (exit ${result.status})`)
    const archive = readdirSync(dir).find((name) => name.endsWith('.tar.gz'))!
    return { ...readGnuTime(timeFile), archiveBytes: statSync(join(dir, archive)).size }
  }

  try {
    // Every run starts with the database in the page cache.
    execFileSync('cat', [database], { stdio: ['ignore', 'ignore', 'inherit'] })
    const dossiers = Number(execFileSync('sqlite3', [database, 'SELECT count(*) FROM "Dossier"'], { encoding: 'utf8' }).trim())
    console.log(`Backup benchmark: ${dossiers.toLocaleString('en')} dossiers, database ${formatBytes(statSync(database).size)}, ${availableParallelism()} cores, load average ${loadAverage()}`)
    const runs: Record<'shell' | 'ours', Measured[]> = { shell: [], ours: [] }
    for (let run = 1; run <= options.runs; run++) {
      // Alternate which side goes first.
      for (const side of run % 2 === 1 ? (['shell', 'ours'] as const) : (['ours', 'shell'] as const)) {
        const measured = side === 'shell' ? shell() : ours()
        runs[side].push(measured)
        console.log(`  run ${run} ${side}: ${measured.wallS.toFixed(1)} s, CPU ${measured.cpuS.toFixed(1)} s, peak RSS ${measured.rssMib.toFixed(0)} MiB (load ${loadAverage()})`)
      }
    }
    const med = (side: 'shell' | 'ours', key: keyof Measured) => median(runs[side].map((r) => r[key]))
    const wall = med('ours', 'wallS') / med('shell', 'wallS')
    const cpu = med('ours', 'cpuS') / med('shell', 'cpuS')
    const rssMb = (med('ours', 'rssMib') * 1024 * 1024) / 1e6
    const mark = (ok: boolean) => (ok ? '✓' : '✗ over target')
    const line = (label: string, side: 'shell' | 'ours') =>
      console.log(`  ${label.padEnd(78)} ${med(side, 'wallS').toFixed(1).padStart(6)} s  CPU ${med(side, 'cpuS').toFixed(1).padStart(5)} s  archive ${formatBytes(med(side, 'archiveBytes'))}`)
    console.log(`Medians of ${options.runs} run(s):`)
    line(`shell: VACUUM INTO + .dump + -csv and -json ×${tables.length} + sha256sum per file + tar czf`, 'shell')
    line('node dist/advanced-backup.mjs create: database.db + sql + json + csv, hashed, tar.gz, verified', 'ours')
    console.log(`  wall ${wall.toFixed(2)}×  target ≤ ${WALL_TARGET}×  ${mark(wall <= WALL_TARGET)}`)
    console.log(`  CPU ${cpu.toFixed(2)}×  target ≤ ${CPU_TARGET}×  ${mark(cpu <= CPU_TARGET)}`)
    console.log(`  peak RSS of create: ${rssMb.toFixed(0)} MB  target ≤ ${RSS_TARGET_MB} MB  ${mark(rssMb <= RSS_TARGET_MB)}`)
    if (options.levels) {
      console.log('  --compression-level, against the default 6 (same database, one run each):')
      for (const level of [1, 9]) {
        const measured = ours(level)
        console.log(`  create --compression-level ${level}: ${measured.wallS.toFixed(1)} s, CPU ${measured.cpuS.toFixed(1)} s, archive ${formatBytes(measured.archiveBytes)}  time ×${(measured.wallS / med('ours', 'wallS')).toFixed(2)}, size ×${(measured.archiveBytes / med('ours', 'archiveBytes')).toFixed(2)}`)
      }
    }
    return wall <= WALL_TARGET && cpu <= CPU_TARGET && rssMb <= RSS_TARGET_MB ? 0 : 1
  } finally {
    if (options.keepOutput) console.log(`  output kept in ${work}`)
    else rmSync(work, { recursive: true, force: true })
  }
})
