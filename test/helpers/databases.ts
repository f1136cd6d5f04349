/**
 * Real databases for tests: a SQLite file in a temp dir, a fresh PostgreSQL database with a random
 * name (dropped after the test), a Miniflare D1 with its own state dir. Nothing is mocked.
 * TEST_ENGINES=sqlite,postgres narrows the engine matrix; TEST_POSTGRES_URL points at the server.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { after, type TestContext } from 'node:test'
import pg from 'pg'
import { openDatabase } from '../../scripts/lib/db/open.ts'
import { applyMigrations } from '../../scripts/lib/db/migrations.ts'
import { seedDemo } from '../../scripts/lib/seed/demo.ts'
import type { DatabaseHandle } from '../../scripts/lib/db/connection.ts'
import type { EngineName } from '../../scripts/lib/db/url.ts'
import { resolveEnvironment } from '../../scripts/lib/environment.ts'

export const POSTGRES_SERVER_URL = process.env.TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres'

export const ENGINES: EngineName[] = (process.env.TEST_ENGINES?.split(',') ?? ['sqlite', 'postgres', 'd1']) as EngineName[]

type Cleanup = Pick<TestContext, 'after'>

const cleanupStacks = new WeakMap<Cleanup, (() => unknown)[]>()

/**
 * Runs `cleanup` after the test, in reverse order of registration (unlike `t.after`, which runs
 * hooks in registration order): a reader closes before its database, a database before it is dropped.
 */
export function defer(t: Cleanup, cleanup: () => unknown): void {
  let stack = cleanupStacks.get(t)
  if (stack === undefined) {
    const created: (() => unknown)[] = []
    stack = created
    cleanupStacks.set(t, created)
    t.after(async () => {
      while (created.length > 0) await created.pop()!()
    })
  }
  stack.push(cleanup)
}

/**
 * A cleanup context for fixtures built once per suite (in `before`): what is registered on it is
 * cleaned, last first, when the suite ends. Call it inside the `describe` body.
 */
export function suiteCleanup(): Cleanup {
  const cleanups: (() => unknown)[] = []
  after(async () => {
    while (cleanups.length > 0) await cleanups.pop()!()
  })
  return { after: (cleanup: () => unknown) => void cleanups.push(cleanup) } as Cleanup
}

/** A temp directory removed after the test. */
export function tempDir(t: Cleanup, prefix = 'ipm-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  defer(t, () => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A URL of a brand-new PostgreSQL database, empty or a copy of `template`; dropped after the test. */
export async function createPostgresDatabase(t: Cleanup, template?: string): Promise<string> {
  const name = `ipm_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: POSTGRES_SERVER_URL })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}${template === undefined ? '' : ` TEMPLATE "${template}"`}`)
  await admin.end()
  defer(t, async () => {
    const cleanup = new pg.Client({ connectionString: POSTGRES_SERVER_URL })
    await cleanup.connect()
    await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await cleanup.end()
  })
  const url = new URL(POSTGRES_SERVER_URL)
  url.pathname = `/${name}`
  return url.toString()
}

/** A URL of a new, empty database of the given engine. */
export async function createEmptyDatabaseUrl(t: Cleanup, engine: EngineName): Promise<string> {
  switch (engine) {
    case 'sqlite':
      return `file:${join(tempDir(t), 'test.db')}`
    case 'postgres':
      return createPostgresDatabase(t)
    case 'd1':
      return `d1://local/${join(tempDir(t), 'd1')}`
  }
}

/**
 * An open, migrated database of the given engine, with the demo data unless `seed: false`; closed
 * after the test (or before, by the test: closing twice is harmless).
 */
export async function openTestDatabase(t: Cleanup, engine: EngineName, options: { seed?: boolean } = {}): Promise<DatabaseHandle & { url: string }> {
  const url = await createEmptyDatabaseUrl(t, engine)
  const db = await openDatabase(url, { environment: resolveEnvironment(), create: true })
  const close = db.close.bind(db)
  let closed: Promise<void> | undefined
  db.close = () => (closed ??= close())
  defer(t, () => db.close())
  await applyMigrations(db.sql)
  if (options.seed ?? true) await seedDemo(db.prisma)
  return Object.assign(db, { url })
}

/**
 * A copy of a test database that no connection holds open (a template, closed), removed after the
 * test: the SQLite file copied, `CREATE DATABASE … TEMPLATE` on PostgreSQL, D1's state folder copied.
 * @example const db = await openTestDatabase(t, engine); await db.close(); const url = await copyTestDatabase(t, engine, db.url)
 */
export async function copyTestDatabase(t: Cleanup, engine: EngineName, url: string): Promise<string> {
  switch (engine) {
    case 'sqlite': {
      const copy = join(tempDir(t), 'test.db')
      cpSync(url.replace(/^file:/, ''), copy)
      return `file:${copy}`
    }
    case 'postgres': {
      return createPostgresDatabase(t, new URL(url).pathname.slice(1))
    }
    case 'd1': {
      const copy = join(tempDir(t), 'd1')
      cpSync(url.replace(/^d1:\/\/local\//, ''), copy, { recursive: true })
      return `d1://local/${copy}`
    }
  }
}
