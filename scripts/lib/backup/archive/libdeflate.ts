/**
 * The libdeflate binding (libdeflate.c): gzip members compressed and inflated by libdeflate when the
 * build has the binding and the machine has libdeflate.so.0, by Node's zlib otherwise — the same
 * gzip format either way (any gzip reader, and our reader, read both). gzip-blocks.ts asks
 * `libdeflateBinding` once per pool, uses the binding it loaded on this thread and hands its path to
 * the worker threads (each loads its own).
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { PROJECT_ROOT } from '../../environment.ts'
import { compileSharedLibrary, sourceDigest } from '../../native.ts'

/** The C source, relative to the project root (dist.ts lists it among the build's sources). */
export const LIBDEFLATE_SOURCE = 'scripts/lib/backup/archive/libdeflate.c'
/** The compiled binding's name in dist/. */
export const LIBDEFLATE_BINDING = 'libdeflate.node'

/** What the binding exports when libdeflate.so.0 opened (libdeflate.c). */
export interface LibdeflateCodec {
  /** Bytes written into `output`; 0 when it is too small. */
  gzip(input: Uint8Array, level: number, output: Uint8Array): number
  /** Bytes written into `output`; throws on anything but one whole gzip member. */
  gunzip(input: Uint8Array, output: Uint8Array): number
}

interface LoadedBinding extends Partial<LibdeflateCodec> {
  sourceSha256: string
  unavailable?: string
}

/**
 * Compiles the binding into `outDir` against Node's own headers (`<prefix>/include/node`, which
 * Node's installers and node-gyp provide); returns why it could not, or undefined once built.
 */
export function compileLibdeflateBinding(root: string, outDir: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const headers = join(dirname(dirname(process.execPath)), 'include', 'node')
  if (!existsSync(join(headers, 'node_api.h'))) return `en-têtes de Node introuvables (${headers}/node_api.h)`
  return compileSharedLibrary(root, { source: LIBDEFLATE_SOURCE, output: join(outDir, LIBDEFLATE_BINDING), includes: [headers], libraries: ['-ldl', '-lpthread'] }, env)
}

/** The binding to use (its path, and the binding as this thread loaded it), or why zlib is used instead. */
export type LibdeflateChoice = { path: string; binding: LibdeflateCodec } | { unavailable: string }

/**
 * The binding this process and its threads load, checked here: built from this source (a build older
 * than a `git pull` is left unused), and libdeflate.so.0 found.
 * @example const choice = libdeflateBinding(); if ('path' in choice) choice.binding.gzip(block, 6, output)
 */
export function libdeflateBinding(library = join(PROJECT_ROOT, 'dist', LIBDEFLATE_BINDING), source = join(PROJECT_ROOT, LIBDEFLATE_SOURCE)): LibdeflateChoice {
  if (!existsSync(library)) return { unavailable: `${library} absent (npm run build)` }
  const loaded = loadBinding(library)
  if (loaded.sourceSha256 !== sourceDigest(source)) return { unavailable: `${library} construit d’une autre source (npm run build)` }
  if (loaded.unavailable !== undefined) return { unavailable: loaded.unavailable }
  return { path: library, binding: loaded as LibdeflateCodec }
}

function loadBinding(path: string): LoadedBinding {
  return createRequire(import.meta.url)(path) as LoadedBinding
}
