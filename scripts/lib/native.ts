/**
 * The toolkit's C sources compiled by the build (dist.ts) with the machine's C compiler: the SQLite
 * extension (engines/sqlite/extension.ts) and the libdeflate binding (backup/archive/libdeflate.ts).
 * Each build carries the SHA-256 of its source (TOOLKIT_SOURCE_SHA256), so a build of another
 * source (a `git pull` not yet followed by `npm run build`) is left unused rather than called.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export interface NativeBuild {
  /** The C source, relative to the project root. */
  source: string
  /** The shared library to write. */
  output: string
  includes: readonly string[]
  /** Linker arguments after the source (`-lm`…). */
  libraries: readonly string[]
}

/**
 * Compiles one C source of the project at `root` into a shared library with the machine's C
 * compiler (`CC`, else `cc`); returns why it could not, or undefined once built.
 * @example const why = compileSharedLibrary(root, { source: 'x.c', output: 'dist/x.so', includes: [], libraries: [] })
 */
export function compileSharedLibrary(root: string, build: NativeBuild, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const compiler = env.CC || 'cc'
  const source = join(root, build.source)
  const digest = `-DTOOLKIT_SOURCE_SHA256="${hashSource(source)}"`
  try {
    execFileSync(compiler, ['-O2', '-shared', '-fPIC', digest, ...build.includes.flatMap((dir) => ['-I', dir]), '-o', build.output, source, ...build.libraries], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 })
    return undefined
  } catch (error) {
    const failure = error as { code?: string; stderr?: Buffer }
    if (failure.code === 'ENOENT') return `compilateur C introuvable (${compiler})`
    return `${compiler} a échoué : ${failure.stderr?.toString().trim().split('\n')[0] ?? String(error)}`
  }
}

/** The digests already computed, each source read once per process. */
const digests = new Map<string, string>()

/** The SHA-256 of a source file, as its build records it; read once per process (the build itself reads it afresh). */
export function sourceDigest(path: string): string {
  let digest = digests.get(path)
  if (digest === undefined) {
    digest = hashSource(path)
    digests.set(path, digest)
  }
  return digest
}

function hashSource(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex')
}
