/**
 * What the dashboard's instrumentation costs: the median latency of each of the spec's six tests
 * through the measured client and through the app-side collector (`instrument(client, { sink })`)
 * vs the handle's plain Prisma client, on the same connection (one shared driver adapter), in the
 * same process, interleaved (rotating order per round), on a 1M-dossier SQLite database; then the
 * time of a whole dashboard run on that database.
 *
 *   npx tsx bench/dashboard-overhead.ts [--rounds 30] [--database file:<path>]
 *
 * The database is seeded once into bench/.data/ (git-ignored) and reused; targets: ≤ 5 % added median
 * latency, and ≤ 50 µs added per operation for the collector.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnSync } from 'node:child_process'
import { Command, InvalidArgumentError } from 'commander'
import { applyMigrations } from '../scripts/lib/db/migrations.ts'
import { openDatabase } from '../scripts/lib/db/open.ts'
import type { AppPrismaClient } from '../scripts/lib/db/connection.ts'
import { seedDemo } from '../scripts/lib/seed/demo.ts'
import { seedScale } from '../scripts/lib/seed/scale.ts'
import { runCommand } from '../scripts/lib/cli.ts'
import { instrumentDatabase } from '../scripts/lib/metrics/instrumentation.ts'
import { collectorOf, instrument } from '../scripts/lib/metrics/collector.ts'
import { PERFORMANCE_TESTS } from '../scripts/lib/metrics/performance-tests.ts'
import { DatabasePerformanceDashboard } from '../scripts/lib/metrics/dashboard.ts'
import { percentile } from '../scripts/lib/statistics.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const DEFAULT_DATABASE = join(ROOT, 'bench', '.data', 'dashboard-1m.db')
const DOSSIERS = 1_000_000

const program = new Command('dashboard-overhead')
  .option('--rounds <n>', 'interleaved rounds of the six tests per client', (v) => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < 2) throw new InvalidArgumentError('expected an integer ≥ 2')
    return n
  }, 30)
  .option('--database <url>', 'an existing database to use instead of the seeded 1M-dossier SQLite')

const median = (values: readonly number[]) => percentile([...values].sort((a, b) => a - b), 50)
const ms = (value: number) => `${value.toFixed(3)} ms`

/** Seeds the 1M-dossier database once, under a temporary name renamed when complete. */
async function ensureDatabase(path: string): Promise<void> {
  if (existsSync(path)) return
  mkdirSync(dirname(path), { recursive: true })
  const partial = `${path}.partial`
  rmSync(partial, { force: true })
  const started = performance.now()
  const db = await openDatabase(`file:${partial}`, { environment: resolveEnvironment(), create: true })
  try {
    await applyMigrations(db.sql)
    await seedDemo(db.prisma)
    await seedScale(db.sql, {
      dossiers: DOSSIERS,
      onProgress: ({ table, rows }) => {
        if (process.stderr.isTTY) process.stderr.write(`\r  seeding ${table}: ${rows.toLocaleString('en')} rows`.padEnd(44))
      },
    })
  } finally {
    await db.close()
  }
  if (process.stderr.isTTY) process.stderr.write('\n')
  renameSync(partial, path)
  console.log(`Seeded ${path} (${DOSSIERS.toLocaleString('en')} dossiers) in ${((performance.now() - started) / 1000).toFixed(1)} s.`)
}

runCommand<{ rounds: number; database?: string }>(program, async (options) => {
  const url = options.database ?? `file:${DEFAULT_DATABASE}`
  if (options.database === undefined) await ensureDatabase(DEFAULT_DATABASE)
  const db = await openDatabase(url, { environment: resolveEnvironment() })
  try {
    const metrics = instrumentDatabase(db)
    const sink = join(ROOT, 'bench', '.data', 'collector-bench.metrics.ndjson')
    rmSync(sink, { force: true })
    rmSync(`${sink}.1`, { force: true })
    const collected = instrument(db.prisma, { sink })
    const clients: Record<'plain' | 'measured' | 'collected', AppPrismaClient> = { plain: db.prisma, measured: metrics.prisma, collected }
    const [demo] = await db.sql.query<{ id: string }>(`SELECT id FROM "Tenant" WHERE slug = 'cabinet-demo'`)
    const tenantId = demo?.id ?? ''
    const [{ n: dossiers } = { n: 0 }] = await db.sql.query<{ n: number }>(`SELECT COUNT(*) AS n FROM "Dossier"`)
    console.log(`Database: ${db.redactedUrl} (${db.engine}), ${Number(dossiers).toLocaleString('en')} dossiers; ${options.rounds} interleaved rounds per client.`)

    // Warm-up: Prisma compiles each query shape once per client; the engine's caches fill. The
    // warm-up also sizes the repetitions: sub-millisecond tests run several times per round, so
    // every test gets enough samples for its median.
    const repetitions = PERFORMANCE_TESTS.map(() => 1)
    for (let i = 0; i < 3; i++) {
      for (const [index, test] of PERFORMANCE_TESTS.entries()) {
        for (const client of Object.values(clients)) await test.run(client, tenantId)
        const started = performance.now()
        await test.run(clients.plain, tenantId)
        repetitions[index] = Math.min(50, Math.max(1, Math.floor(20 / Math.max(performance.now() - started, 0.01))))
      }
    }
    metrics.drain()

    const samples = PERFORMANCE_TESTS.map(() => ({ plain: [] as number[], measured: [] as number[], collected: [] as number[] }))
    // CPU time of the process (µs) spent in each client's test-2 operations: the instrumentation only
    // adds work on the app's thread, and CPU time, unlike wall time, does not count the waits a
    // loaded machine inserts, so it separates that cost from the machine's noise.
    const countCpu = { plain: [] as number[], measured: [] as number[], collected: [] as number[] }
    const ORDERS = [
      ['plain', 'measured', 'collected'],
      ['collected', 'plain', 'measured'],
      ['measured', 'collected', 'plain'],
    ] as const

    function report(candidate: 'measured' | 'collected') {
      console.log(`  ${'test'.padEnd(38)} ${'samples'.padStart(8)} ${'plain'.padStart(12)} ${candidate.padStart(12)} ${'added'.padStart(11)} ${'added %'.padStart(8)}`)
      let totalPlain = 0
      let totalMeasured = 0
      for (const [index, test] of PERFORMANCE_TESTS.entries()) {
        const plain = median(samples[index]!.plain)
        const measured = median(samples[index]![candidate])
        totalPlain += plain
        totalMeasured += measured
        const added = measured - plain
        console.log(`  ${`${test.number}. ${test.name}`.padEnd(38)} ${String(samples[index]!.plain.length).padStart(8)} ${ms(plain).padStart(12)} ${ms(measured).padStart(12)} ${`${(added * 1000).toFixed(0)} µs`.padStart(11)} ${`${((added / plain) * 100).toFixed(1)} %`.padStart(8)}`)
      }
      const overhead = ((totalMeasured - totalPlain) / totalPlain) * 100
      console.log(`  ${'sum of the six medians'.padEnd(38)} ${''.padStart(8)} ${ms(totalPlain).padStart(12)} ${ms(totalMeasured).padStart(12)} ${`${((totalMeasured - totalPlain) * 1000).toFixed(0)} µs`.padStart(11)} ${`${overhead.toFixed(1)} %`.padStart(8)}`)
      console.log(`  target ≤ 5 % added median latency: ${overhead <= 5 ? 'met' : 'NOT met'}`)
      // Test 2 (one count) is one operation: its added median is the cost per operation.
      const perOperation = (median(samples[1]![candidate]) - median(samples[1]!.plain)) * 1000
      console.log(`  added per operation (test 2, one count), wall: ${perOperation.toFixed(0)} µs; target ≤ 50 µs: ${perOperation <= 50 ? 'met' : 'NOT met'}`)
      const cpuPerOperation = median(countCpu[candidate]) - median(countCpu.plain)
      console.log(`  added per operation (test 2, one count), CPU of the process: ${cpuPerOperation.toFixed(0)} µs (median ${median(countCpu.plain).toFixed(0)} → ${median(countCpu[candidate]).toFixed(0)} µs over ${countCpu.plain.length} operations each); target ≤ 50 µs: ${cpuPerOperation <= 50 ? 'met' : 'NOT met'}`)
    }
    for (let round = 0; round < options.rounds; round++) {
      let expected = 0
      for (const [index, test] of PERFORMANCE_TESTS.entries()) {
        for (let repetition = 0; repetition < repetitions[index]!; repetition++) {
          // Rotating order: each client goes first as often as the others, so none profits from another's warm caches.
          for (const name of ORDERS[(round + repetition) % 3]!) {
            const cpu = process.cpuUsage()
            const started = performance.now()
            await test.run(clients[name], tenantId)
            samples[index]![name].push(performance.now() - started)
            if (index === 1) {
              const used = process.cpuUsage(cpu)
              countCpu[name].push(used.user + used.system)
            }
          }
          expected += test.number === 6 ? 5 : 1
        }
      }
      const recorded = metrics.drain()
      if (recorded.operations.length !== expected) throw new Error(`expected ${expected} recorded operations in round ${round}, got ${recorded.operations.length}`)
    }

    await collectorOf(collected).close()

    for (const candidate of ['measured', 'collected'] as const) {
      console.log(`\nMedian latency per test, ${candidate === 'measured' ? "the dashboard's measured client" : 'the app-side collector'} vs plain (same connection, same process, interleaved):`)
      report(candidate)
    }
  } finally {
    await db.close()
  }

  // A whole dashboard run: open, six tests, analysis (catalog, plans, tenants, storage, cache), close.
  const started = performance.now()
  const dashboard = new DatabasePerformanceDashboard({ environment: resolveEnvironment(), database: url })
  const report = await dashboard.analyzePerformance()
  const firstRun = performance.now() - started
  const warmStarted = performance.now()
  await dashboard.analyzePerformance()
  const secondRun = performance.now() - warmStarted
  await dashboard.close()
  console.log(`\nWhole dashboard run (in process): ${ms(firstRun)} first (opening, compiling queries), ${ms(secondRun)} next analysis.`)
  console.log(`  ${report.globalMetrics.totalQueries} operations, ${report.fingerprints.length} fingerprints, ${report.recommendations.length} recommendation(s): ${report.recommendations.map((r) => r.kind).join(', ') || 'none'}`)

  const cliStarted = performance.now()
  const cli = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'database-performance-dashboard.ts'), '--database', url, '--output', join(ROOT, 'bench', '.data', 'performance-metrics.json')], {
    cwd: ROOT,
    encoding: 'utf8',
  })
  if (cli.status !== 0) throw new Error(`the dashboard CLI failed (${cli.status}): ${cli.stderr}`)
  console.log(`Whole dashboard run (CLI, new process): ${ms(performance.now() - cliStarted)}.`)
})
