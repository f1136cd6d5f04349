/**
 * The toolkit's SQLite extension (extension.c): the per-row work of exports and content checksums
 * done in C by the connection that reads the rows (export-format.ts, content-checksum.ts use it).
 * The build compiles it into dist/ (`compileExtension`, run by dist.ts at `npm ci` and `npm test`)
 * with the machine's C compiler; without one, both format and sum in JavaScript: the same bytes and
 * sums (test/sqlite-export-format.test.ts, test/content-checksum.test.ts), two to three times the CPU.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type Database from 'better-sqlite3'
import { PROJECT_ROOT } from '../../environment.ts'
import { compileSharedLibrary, sourceDigest } from '../../native.ts'

/** The C source, relative to the project root (dist.ts lists it among the build's sources). */
export const EXTENSION_SOURCE = 'scripts/lib/engines/sqlite/extension.c'
/** The compiled extension's name in dist/. */
export const EXTENSION_LIBRARY = 'sqlite-extension.so'

/**
 * Compiles the extension into `outDir` with the machine's C compiler against the SQLite headers
 * better-sqlite3 ships; returns why it could not, or undefined once built.
 */
export function compileExtension(root: string, outDir: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const headers = join(dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json')), 'deps', 'sqlite3')
  return compileSharedLibrary(root, { source: EXTENSION_SOURCE, output: join(outDir, EXTENSION_LIBRARY), includes: [headers], libraries: ['-lm'] }, env)
}

const loaded = new WeakSet<Database.Database>()

/**
 * Loads the extension into `db` (once per connection); false when the build has none, or was built
 * from another extension.c than the project's (`source`): a `git pull` not yet followed by `npm run
 * build` keeps working, in JavaScript, instead of calling functions the old build does not have.
 * @example if (loadExtension(db)) for (const chunk of csvChunks(db, table, columns, order)!.chunks) …
 */
export function loadExtension(db: Database.Database, library = join(PROJECT_ROOT, 'dist', EXTENSION_LIBRARY), source = join(PROJECT_ROOT, EXTENSION_SOURCE)): boolean {
  if (loaded.has(db)) return true
  if (!existsSync(library)) return false
  db.loadExtension(library)
  let built: unknown
  try {
    built = db.prepare('SELECT toolkit_extension_source()').pluck().get()
  } catch {
    // A build older than this function: another source too.
    return false
  }
  if (built !== sourceDigest(source)) return false
  loaded.add(db)
  return true
}

/** Whether `loadExtension` loaded the extension into `db`. */
export function hasExtension(db: Database.Database): boolean {
  return loaded.has(db)
}

/** SQLite's limit on the arguments of a function (SQLITE_MAX_FUNCTION_ARG): the extension's calls take the columns' values after their own. */
export const MAX_FUNCTION_ARGUMENTS = 1000

/**
 * What a query of the extension's record functions gives (`select` run with `params`): the chunks it
 * returns, then what the connection's buffer still holds; `records()`, once they are read, how many
 * records they hold. The buffer is emptied first: what a read abandoned on this connection left in
 * it is not this one's. `afterChunk` runs after each chunk of the query and once at its end.
 * @example const { chunks, records } = extensionChunks(db, select, [kinds]); for (const chunk of chunks) out.write(chunk); records()
 */
export function extensionChunks(db: Database.Database, select: Database.Statement, params: readonly unknown[], afterChunk?: () => void): { chunks: Generator<Buffer>; records(): number } {
  const recordsSoFar = db.prepare('SELECT export_format_records()').pluck()
  const rest = db.prepare('SELECT export_format_rest()').pluck()
  let total: number | undefined
  function* chunks(): Generator<Buffer> {
    rest.get()
    for (const chunk of select.iterate(...params)) {
      afterChunk?.()
      yield chunk as Buffer
    }
    afterChunk?.()
    total = recordsSoFar.get() as number
    const last = rest.get() as Buffer | null
    if (last !== null) yield last
  }
  return { chunks: chunks(), records: () => total ?? (recordsSoFar.get() as number) }
}
