/**
 * The external judges of the suite (standard tools that check what the toolkit produces) and what
 * to do when one is missing. A fresh machine may lack some: a test that needs one is skipped with
 * the reason and the install command, so `npm test` passes there; `.ci/run` sets
 * TEST_REQUIRE_ALL=1, and then a missing judge fails its test instead (CI must run everything).
 *
 * @example test('promtool accepts the exposition', { skip: requireJudge('promtool') }, () => {
 *   judge('promtool', ['check', 'metrics'], { input: text })
 * })
 */
import { spawnSync } from 'node:child_process'
import { accessSync, constants, existsSync, readdirSync } from 'node:fs'
import { delimiter, join } from 'node:path'

interface Judge {
  /** The Debian package that provides it. */
  apt: string
  /** True when the judge can run on this machine. */
  present(): boolean
}

/** An executable found on PATH (no process spawned: cheap enough for test declarations). */
function onPath(command: string): () => boolean {
  return () =>
    (process.env.PATH ?? '').split(delimiter).some((dir) => {
      if (dir === '') return false
      try {
        accessSync(join(dir, command), constants.X_OK)
        return true
      } catch {
        return false
      }
    })
}

/** A PostgreSQL extension whose control file is installed for some server version. */
function postgresExtension(name: string): () => boolean {
  return () => {
    const root = '/usr/share/postgresql'
    if (!existsSync(root)) return false
    return readdirSync(root).some((version) => existsSync(join(root, version, 'extension', `${name}.control`)))
  }
}

/** A shared library the dynamic linker finds in one of the usual folders (Debian's multiarch one first). */
function sharedLibrary(name: string): () => boolean {
  return () => [`/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`, '/usr/lib64', '/usr/lib', '/lib'].some((dir) => existsSync(join(dir, name)))
}

export const JUDGES = {
  sqlite3: { apt: 'sqlite3', present: onPath('sqlite3') },
  psql: { apt: 'postgresql-client', present: onPath('psql') },
  pg_dump: { apt: 'postgresql-client', present: onPath('pg_dump') },
  tar: { apt: 'tar', present: onPath('tar') },
  sha256sum: { apt: 'coreutils', present: onPath('sha256sum') },
  python3: { apt: 'python3', present: onPath('python3') },
  promtool: { apt: 'prometheus', present: onPath('promtool') },
  prometheus: { apt: 'prometheus', present: onPath('prometheus') },
  tmux: { apt: 'tmux', present: onPath('tmux') },
  strace: { apt: 'strace', present: onPath('strace') },
  chromium: { apt: 'chromium', present: () => existsSync('/usr/bin/chromium') },
  pgbackrest: { apt: 'pgbackrest', present: onPath('pgbackrest') },
  hypopg: { apt: 'postgresql-15-hypopg', present: postgresExtension('hypopg') },
  // Not a judge but what the archives are compressed with (backup/archive/libdeflate.ts): its tests need it.
  libdeflate: { apt: 'libdeflate0', present: sharedLibrary('libdeflate.so.0') },
} satisfies Record<string, Judge>

export type JudgeName = keyof typeof JUDGES

/** The line that says how to get a judge. */
export function installHint(name: JudgeName): string {
  return `apt-get install --no-install-recommends ${JUDGES[name].apt}`
}

/** True when TEST_REQUIRE_ALL=1: nothing may be skipped for a missing judge. */
export function requireAll(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.TEST_REQUIRE_ALL === '1'
}

/**
 * The `skip` option of a test that needs these judges: false when all are there (or when
 * TEST_REQUIRE_ALL=1, so the test runs and fails naming the missing tool), otherwise the reason
 * with the install command.
 */
export function requireJudge(...names: JudgeName[]): false | string {
  const missing = names.filter((name) => !JUDGES[name].present())
  if (missing.length === 0 || requireAll()) return false
  return missing.map((name) => `${name} is not installed (${installHint(name)})`).join('; ')
}

export interface JudgeResult {
  status: number
  stdout: string
  stderr: string
}

/**
 * Runs an external tool and returns its exit status and output. A tool that cannot start (not
 * installed, not executable) throws an error naming it and its install command, never a bare
 * `null` status; so does one killed by a signal.
 */
export function judge(command: string, args: string[], options: { cwd?: string; input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): JudgeResult {
  const result = spawnSync(command, args, { cwd: options.cwd, input: options.input, env: options.env, encoding: 'utf8', maxBuffer: 256 << 20, timeout: options.timeoutMs })
  if (result.error !== undefined) {
    const hint = command in JUDGES ? ` (${installHint(command as JudgeName)})` : ''
    throw new Error(`${command} could not start: ${result.error.message}${hint}`)
  }
  if (result.status === null) throw new Error(`${command} ${args.join(' ')} was killed by ${result.signal}: ${result.stderr}`)
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}
