/**
 * The built entry: scripts/advanced-backup.ts bundled by esbuild into `dist/advanced-backup.mjs`,
 * so that a backup starts under plain `node` (tsx's own start costs ~0.2 s of CPU and ~35 MB,
 * bench/startup.ts). Our TypeScript and the generated Prisma clients are bundled, one chunk per
 * dynamic import (a verb still loads only what it uses); packages stay in node_modules. The
 * thread entries are built beside it: threads.ts runs `<name>.mjs` when it runs built.
 * Invariant: `dist/` is a whole build or absent — built in a temporary folder, fsynced, swapped in.
 * `dist/sources.json` lists the project files it was built from, so that a build older than its
 * sources (a `git pull` without `npm ci` or `npm run build`) is told (`sourcesChangedSince`).
 * The SQLite extension that formats the exports and sums the content checksums in C is compiled
 * into it too (engines/sqlite/extension.ts), and so is the libdeflate binding that (de)compresses the
 * archives (backup/archive/libdeflate.ts); without a C compiler the build goes on without them, and says why.
 */
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { commitRename, fsyncPath, temporaryPathFor } from './fs/atomic.ts'
import { compileExtension, EXTENSION_SOURCE } from './engines/sqlite/extension.ts'
import { compileLibdeflateBinding, libdeflateBinding, LIBDEFLATE_BINDING, LIBDEFLATE_SOURCE } from './backup/archive/libdeflate.ts'

/** Beside the build: when it started and the project files it was built from. */
export const DIST_SOURCES_FILE = 'sources.json'

interface DistSources {
  /** Epoch milliseconds when the build started: a source changed after it is newer than the build. */
  startedAt: number
  /** Paths relative to the project root. */
  inputs: string[]
}

/** The script users run, and every thread entry it may start (startTypeScriptThread in threads.ts). */
export const DIST_ENTRIES = ['scripts/advanced-backup.ts', 'scripts/lib/backup/create/exports-thread.ts', 'scripts/lib/engines/sqlite/_checksum-thread.ts', 'scripts/lib/engines/sqlite/_staged-check-thread.ts'] as const

/**
 * Builds DIST_ENTRIES of the project at `root` into `outDir` (replaced whole).
 * @example await buildDist({ root: PROJECT_ROOT, outDir: join(PROJECT_ROOT, 'dist') }) // dist/advanced-backup.mjs
 */
export async function buildDist({ root, outDir }: { root: string; outDir: string }): Promise<{ files: string[]; withoutExtension?: string; withoutLibdeflate?: string }> {
  const building = temporaryPathFor(outDir)
  const startedAt = Date.now()
  // Loaded here only: the built tool itself (which imports this module for sourcesChangedSince) never builds.
  const { build } = await import('esbuild')
  try {
    const { metafile } = await build({
      absWorkingDir: root,
      entryPoints: [...DIST_ENTRIES],
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      outdir: building,
      entryNames: '[name]',
      outExtension: { '.js': '.mjs' },
      logLevel: 'warning',
      metafile: true,
    })
    const withoutExtension = compileExtension(root, building)
    const withoutLibdeflate = compileLibdeflateBinding(root, building) ?? usableLibdeflate(root, building)
    const inputs = [...Object.keys(metafile.inputs).filter((input) => !input.includes('node_modules/')), EXTENSION_SOURCE, LIBDEFLATE_SOURCE]
    const sources: DistSources = { startedAt, inputs: inputs.sort() }
    writeFileSync(join(building, DIST_SOURCES_FILE), `${JSON.stringify(sources)}\n`)
    const files = readdirSync(building).sort()
    for (const file of files) fsyncPath(join(building, file))
    fsyncPath(building)
    const previous = existsSync(outDir) ? temporaryPathFor(outDir) : undefined
    if (previous !== undefined) renameSync(outDir, previous)
    commitRename(building, outDir)
    if (previous !== undefined) rmSync(previous, { recursive: true, force: true })
    return { files, ...(withoutExtension === undefined ? {} : { withoutExtension }), ...(withoutLibdeflate === undefined ? {} : { withoutLibdeflate }) }
  } catch (error) {
    rmSync(building, { recursive: true, force: true })
    throw error
  }
}

/** Why the binding just built will not be used (no libdeflate.so.0 on this machine), or undefined. */
function usableLibdeflate(root: string, building: string): string | undefined {
  const choice = libdeflateBinding(join(building, LIBDEFLATE_BINDING), join(root, LIBDEFLATE_SOURCE))
  return 'unavailable' in choice ? choice.unavailable : undefined
}

/**
 * The project files the build in `outDir` was made from that changed since (or are gone), relative
 * to `root`; empty when the build is current. A build without its list counts as current (nothing to compare).
 * @example if (sourcesChangedSince(PROJECT_ROOT, join(PROJECT_ROOT, 'dist')).length > 0) … // npm run build
 */
export function sourcesChangedSince(root: string, outDir: string): string[] {
  let sources: DistSources
  try {
    sources = JSON.parse(readFileSync(join(outDir, DIST_SOURCES_FILE), 'utf8')) as DistSources
  } catch {
    return []
  }
  return sources.inputs.filter((input) => {
    try {
      return statSync(join(root, input)).mtimeMs > sources.startedAt
    } catch {
      return true
    }
  })
}
