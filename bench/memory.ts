/**
 * Peak memory against data size (issue #17: "bounded buffers so RSS stays flat at any size (show
 * 100k, 1M, 3M)"): the built tool as cron runs it — `create` (every format, compressed, verified),
 * `export --to` (every format) and `restore --to` of that backup — on scale SQLite databases of each
 * size (bench/.data/, seeded once), each under GNU `/usr/bin/time`. Prints wall, CPU and peak RSS per
 * size and operation, then whether each operation stays under 256 MiB and how its peak RSS grew from
 * the smallest size to the largest (flat: under 1.25× for 30× the data).
 *
 *   npx tsx bench/memory.ts [--sizes 100000,1000000,3000000] [--keep-output]
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { Command } from 'commander'
import { runCommand } from '../scripts/lib/cli.ts'
import { buildDist } from '../scripts/lib/dist.ts'
import { formatBytes } from '../scripts/lib/format.ts'
import { BENCH_DATA_DIR, loadAverage, readGnuTime, scaleSqliteDatabase, underGnuTime, type GnuTimeReport } from './_data.ts'

const ROOT = join(import.meta.dirname, '..')
const RSS_TARGET_MIB = 256
/** Peak RSS may grow this much from the smallest size to the largest and still count as flat. */
const FLAT_GROWTH = 1.25

const OPERATIONS = ['create', 'export', 'restore'] as const
type Operation = (typeof OPERATIONS)[number]

const program = new Command('bench-memory')
  .option('--sizes <list>', 'dossiers of each scale database, comma-separated', (v) => v.split(',').map((n) => Number(n.replaceAll('_', ''))), [100_000, 1_000_000, 3_000_000])
  .option('--keep-output', 'keep the work folder (bench/.data/memory-run-*) for inspection')

runCommand<{ sizes: number[]; keepOutput?: boolean }>(program, async (options) => {
  await buildDist({ root: ROOT, outDir: join(ROOT, 'dist') })
  const work = mkdtempSync(join(BENCH_DATA_DIR, 'memory-run-'))
  const tool = (args: string[], label: string): GnuTimeReport => {
    const timeFile = join(work, 'tool.time')
    const [command, argv] = underGnuTime([process.execPath, join(ROOT, 'dist', 'advanced-backup.mjs'), '--quiet', ...args], timeFile)
    const result = spawnSync(command, argv, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
    if (result.status !== 0) throw new Error(`${label} failed (exit ${result.status})`)
    return readGnuTime(timeFile)
  }
  const results = new Map<number, Record<Operation, GnuTimeReport>>()
  try {
    console.log(`Memory benchmark: the built tool at ${options.sizes.map((n) => n.toLocaleString('en')).join(', ')} dossiers, load average ${loadAverage()}`)
    for (const size of options.sizes) {
      const database = await scaleSqliteDatabase(size, { log: (line) => console.log(line) })
      const url = `file:${database}`
      const dir = join(work, `backups-${size}`)
      mkdirSync(dir)
      const create = tool(['--database', url, '--dir', dir, 'create'], `create at ${size}`)
      const id = readdirSync(dir).find((name) => name.endsWith('.tar.gz'))!.replace(/\.tar\.gz$/, '')
      const exportDir = join(work, `export-${size}`)
      const exported = tool(['--database', url, '--formats', 'csv,sql,json', 'export', '--to', exportDir], `export at ${size}`)
      rmSync(exportDir, { recursive: true, force: true })
      const target = join(work, `restored-${size}.db`)
      const restore = tool(['--database', url, '--dir', dir, 'restore', id, '--to', target, '--yes'], `restore at ${size}`)
      rmSync(target, { force: true })
      rmSync(dir, { recursive: true, force: true })
      const measured = { create, export: exported, restore }
      results.set(size, measured)
      const line = OPERATIONS.map((op) => `${op} ${measured[op].wallS.toFixed(1)} s, CPU ${measured[op].cpuS.toFixed(1)} s, RSS ${measured[op].rssMib.toFixed(0)} MiB`)
      console.log(`  ${size.toLocaleString('en').padStart(9)} dossiers (${formatBytes(statSync(database).size)}): ${line.join(' · ')}`)
    }
    let allMet = true
    const smallest = results.get(Math.min(...options.sizes))!
    const largest = results.get(Math.max(...options.sizes))!
    for (const op of OPERATIONS) {
      const peak = Math.max(...[...results.values()].map((r) => r[op].rssMib))
      const growth = largest[op].rssMib / smallest[op].rssMib
      const met = peak <= RSS_TARGET_MIB && growth <= FLAT_GROWTH
      allMet &&= met
      console.log(`  ${op.padEnd(8)} peak RSS ${peak.toFixed(0)} MiB (target ≤ ${RSS_TARGET_MIB}), ×${growth.toFixed(2)} from the smallest size to the largest (flat: ≤ ×${FLAT_GROWTH})  ${met ? '✓' : '✗'}`)
    }
    return allMet ? 0 : 1
  } finally {
    if (!options.keepOutput) rmSync(work, { recursive: true, force: true })
  }
})
