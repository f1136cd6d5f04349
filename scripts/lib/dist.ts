/**
 * The built entry: scripts/advanced-backup.ts bundled by esbuild into `dist/advanced-backup.mjs`,
 * so that a backup starts under plain `node` (tsx's own start costs ~0.2 s of CPU and ~35 MB,
 * bench/startup.ts). Our TypeScript and the generated Prisma clients are bundled, one chunk per
 * dynamic import (a verb still loads only what it uses); packages stay in node_modules. The
 * thread entries are built beside it: threads.ts runs `<name>.mjs` when it runs built.
 * Invariant: `dist/` is a whole build or absent — built in a temporary folder, fsynced, swapped in.
 */
import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { build } from 'esbuild'
import { commitRename, fsyncPath, temporaryPathFor } from './fs/atomic.ts'

/** The script users run, and every thread entry it may start (startTypeScriptThread in threads.ts). */
export const DIST_ENTRIES = ['scripts/advanced-backup.ts', 'scripts/lib/backup/create/exports-thread.ts', 'scripts/lib/engines/sqlite/_checksum-thread.ts'] as const

/**
 * Builds DIST_ENTRIES of the project at `root` into `outDir` (replaced whole).
 * @example await buildDist({ root: PROJECT_ROOT, outDir: join(PROJECT_ROOT, 'dist') }) // dist/advanced-backup.mjs
 */
export async function buildDist({ root, outDir }: { root: string; outDir: string }): Promise<{ files: string[] }> {
  const building = temporaryPathFor(outDir)
  try {
    await build({
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
    })
    const files = readdirSync(building).sort()
    for (const file of files) fsyncPath(join(building, file))
    fsyncPath(building)
    const previous = existsSync(outDir) ? temporaryPathFor(outDir) : undefined
    if (previous !== undefined) renameSync(outDir, previous)
    commitRename(building, outDir)
    if (previous !== undefined) rmSync(previous, { recursive: true, force: true })
    return { files }
  } catch (error) {
    rmSync(building, { recursive: true, force: true })
    throw error
  }
}
