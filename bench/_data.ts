/**
 * The benchmarks' shared data: a scale SQLite database under bench/.data/ (git-ignored), seeded once
 * and reused by every benchmark. `--scale 1000000` takes about 20 s and makes a ~700 MB file.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { openDatabase } from '../scripts/lib/db/open.ts'
import { applyMigrations } from '../scripts/lib/db/migrations.ts'
import { seedDemo } from '../scripts/lib/seed/demo.ts'
import { seedScale } from '../scripts/lib/seed/scale.ts'
import { commitRename, fsyncPath, temporaryPathFor } from '../scripts/lib/fs/atomic.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'
import { AdvancedBackupSystem, type AdvancedBackupOptions } from '../scripts/lib/backup/backup-system.ts'
import type { BackupMetadata } from '../scripts/lib/backup/metadata.ts'

export const BENCH_DATA_DIR = join(dirname(fileURLToPath(import.meta.url)), '.data')

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

/**
 * One create of the SQLite file `database` into `dir`, in this process (a bench's child), timed and
 * measured from inside: the peak RSS counts the compression and export threads too.
 * @example const { ms, maxRssMb, metadata } = await measuredCreate(path, dir, { exportFormats: ['csv'] })
 */
export async function measuredCreate(database: string, dir: string, options: Partial<AdvancedBackupOptions> = {}): Promise<{ ms: number; maxRssMb: number; metadata: BackupMetadata }> {
  const started = performance.now()
  const system = new AdvancedBackupSystem({ databaseUrl: `file:${database}`, backupDir: dir, environment: resolveEnvironment({}), maxBackups: 1, ...options })
  const { metadata } = await system.create()
  return { ms: performance.now() - started, maxRssMb: process.resourceUsage().maxRSS / 1024, metadata }
}
