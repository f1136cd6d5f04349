/**
 * The benchmarks' shared data: a scale SQLite database under bench/.data/ (git-ignored), seeded once
 * and reused by every benchmark. `--scale 1000000` takes about 20 s and makes a ~700 MB file.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { Command, InvalidArgumentError } from 'commander'
import pg from 'pg'
import { openDatabase } from '../scripts/lib/db/open.ts'
import { applyMigrations } from '../scripts/lib/db/migrations.ts'
import { seedDemo } from '../scripts/lib/seed/demo.ts'
import { seedScale } from '../scripts/lib/seed/scale.ts'
import { commitRename, fsyncPath, temporaryPathFor } from '../scripts/lib/fs/atomic.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'
import { ToolkitError } from '../scripts/lib/errors.ts'

export const BENCH_DATA_DIR = join(dirname(fileURLToPath(import.meta.url)), '.data')
const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

/** What GNU time reports of a finished command (its whole process tree): wall and CPU (user + system) seconds, peak RSS. */
export interface GnuTimeReport {
  wallS: number
  cpuS: number
  rssMib: number
}

/** The command line that runs `argv` under GNU time, its report (read by `readGnuTime`) written to `timeFile`. */
export function underGnuTime(argv: readonly string[], timeFile: string): [string, string[]] {
  return ['/usr/bin/time', ['-o', timeFile, '-f', '%e %U %S %M', ...argv]]
}

export function readGnuTime(timeFile: string): GnuTimeReport {
  // The last line: a command that fails has "Command exited with non-zero status" first.
  const [wall = NaN, user = NaN, system = NaN, maxKib = NaN] = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number)
  return { wallS: wall, cpuS: user + system, rssMib: maxKib / 1024 }
}

/**
 * The path of a migrated SQLite database with the demo data plus about `dossiers` scale dossiers;
 * seeded under a temporary name and renamed into place, so a killed seed is never reused.
 * @example const path = await scaleSqliteDatabase(1_000_000)
 */
export async function scaleSqliteDatabase(dossiers: number, options: { log?: (line: string) => void } = {}): Promise<string> {
  const path = join(BENCH_DATA_DIR, `scale-${dossiers}.db`)
  if (existsSync(path)) return path
  mkdirSync(BENCH_DATA_DIR, { recursive: true })
  const temporary = temporaryPathFor(path)
  options.log?.(`Seeding ${path} with ${dossiers.toLocaleString('en')} dossiers (once; reused afterwards)…`)
  try {
    const db = await openDatabase(`file:${temporary}`, { environment: resolveEnvironment(), create: true })
    try {
      await db.sql.query('PRAGMA journal_mode = DELETE')
      await applyMigrations(db.sql)
      await seedDemo(db.prisma)
      await seedScale(db.sql, { dossiers })
    } finally {
      await db.close()
    }
    fsyncPath(temporary)
    commitRename(temporary, path)
  } finally {
    for (const suffix of ['', '-journal', '-wal', '-shm']) rmSync(temporary + suffix, { force: true })
  }
  return path
}

/** The user tables of a SQLite file, by name (the standard tools' pipelines export them one by one). */
export function userTables(path: string): string[] {
  const db = new Database(path, { readonly: true })
  try {
    return db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name`).pluck().all() as string[]
  } finally {
    db.close()
  }
}

/** The PostgreSQL bench database (bench/migrate.ts, bench/pg-backup.ts). */
const PG_BENCH_URL = 'postgresql://postgres@127.0.0.1:5432/ipm_bench'

/** A commander parser of counts (`1_000_000` allowed). */
function positiveInteger(value: string): number {
  const n = Number(value.replaceAll('_', ''))
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer')
  return n
}

/**
 * The command of a bench against the PostgreSQL bench database, with the options they share:
 * `--database` (created and seeded by `scalePostgresDatabase`), `--scale`, `--runs`.
 * @example const program = pgBenchCommand('bench-migrate').option('--keep', '…')
 */
export function pgBenchCommand(name: string): Command {
  return new Command(name)
    .option('--database <url>', 'the PostgreSQL bench database (created and seeded if missing)', PG_BENCH_URL)
    .option('--scale <dossiers>', 'dossiers in the bench database', positiveInteger, 1_000_000)
    .option('--runs <n>', 'runs of each side (the median is compared)', positiveInteger, 1)
}

/** The median the benches compare: the middle value of an odd count, the upper of the two middle ones of an even count. */
export function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
}

/** The tables of the PostgreSQL bench database that the pipelines copy, in foreign-key order. */
export const PG_BENCH_TABLES = ['Plan', 'Tenant', 'Client', 'Dossier', 'User']

/**
 * Creates, migrates and seeds the PostgreSQL bench database `url` (about `scale` dossiers, ~90 s at
 * 1M) unless it is already complete; returns its rows in `PG_BENCH_TABLES`.
 * @example const rows = await scalePostgresDatabase('postgresql://postgres@127.0.0.1:5432/ipm_bench', 1_000_000)
 */
export async function scalePostgresDatabase(url: string, scale: number, options: { log?: (line: string) => void } = {}): Promise<number> {
  const log = options.log ?? (() => {})
  const name = new URL(url).pathname.slice(1)
  if (!/^\w+$/.test(name)) throw new ToolkitError(`unexpected bench database name "${name}"`)
  const adminUrl = new URL(url)
  adminUrl.pathname = '/postgres'
  const admin = new pg.Client({ connectionString: adminUrl.toString() })
  await admin.connect()
  try {
    const exists = (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1
    if (exists && (await countDossiers(url)) >= scale) return countRows(url)
    if (exists) {
      log(`${name} is incomplete (an interrupted seed?): recreating it.`)
      await admin.query(`DROP DATABASE ${name} WITH (FORCE)`)
    }
    log(`Creating ${name} with ${scale.toLocaleString('en')} dossiers (once; reused afterwards)…`)
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  const db = await openDatabase(url, { environment: resolveEnvironment() })
  try {
    await applyMigrations(db.sql)
  } finally {
    await db.close()
  }
  execFileSync(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'prisma', 'seed.ts'), '--database', url, '--scale', String(scale)], { cwd: PROJECT_ROOT, stdio: ['ignore', 'inherit', 'inherit'] })
  await new Promise<void>((resolve, reject) => {
    const vacuum = new pg.Client({ connectionString: url })
    vacuum.connect().then(() => vacuum.query('VACUUM ANALYZE')).then(() => vacuum.end()).then(resolve, reject)
  })
  return countRows(url)
}

async function countDossiers(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return Number((await client.query(`SELECT count(*) AS n FROM "Dossier"`)).rows[0].n)
  } catch {
    return 0
  } finally {
    await client.end()
  }
}

async function countRows(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const union = PG_BENCH_TABLES.map((table) => `SELECT count(*) AS n FROM "${table}"`).join(' UNION ALL ')
    return (await client.query(`SELECT sum(n)::int8 AS n FROM (${union}) counts`)).rows.reduce((sum, row) => sum + Number(row.n), 0)
  } finally {
    await client.end()
  }
}

/** The machine's 1-minute load average, to read the timings with (other work slows both sides). */
export function loadAverage(): string {
  return existsSync('/proc/loadavg') ? readFileSync('/proc/loadavg', 'utf8').split(' ')[0]! : 'unknown'
}
