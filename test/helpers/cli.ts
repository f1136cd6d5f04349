/** Runs a toolkit script as a user would: a child process with tsx, no TTY, the exit code and both streams. */
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/**
 * How long a script may run before it is killed as hung. Generous on purpose: on a machine with a
 * load average of 80 a plain `list` took two minutes, and a test must not fail because of load.
 */
const HANG_MS = 900_000

export interface CliResult {
  status: number
  stdout: string
  stderr: string
}

/** @example runScript('scripts/advanced-backup.ts', ['list', '--json'], { env: { DATABASE_URL: url } }) */
export function runScript(script: string, args: string[] = [], options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {}): CliResult {
  const spawnOptions: SpawnSyncOptions = {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    encoding: 'utf8',
    input: options.input ?? '',
    timeout: HANG_MS,
  }
  const result = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, script), ...args], spawnOptions)
  if (result.error !== undefined && result.status === null) throw new Error(`${script} could not run: ${result.error.message}`)
  if (result.status === null) throw new Error(`${script} ${args.join(' ')} was killed by ${result.signal} (hung for ${HANG_MS / 1000} s?): ${String(result.stderr)}`)
  return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) }
}

/**
 * runScript without blocking the event loop: independent CLI runs of a test overlap, and an
 * in-process server (a webhook) can answer the child. Killed after `timeoutMs`.
 */
export function runScriptAsync(script: string, args: string[] = [], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, script), ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? HANG_MS)
    child.on('error', (error) => reject(new Error(`${script} could not run: ${error.message}`)))
    child.on('close', (status, signal) => {
      clearTimeout(timer)
      if (status === null) reject(new Error(`${script} ${args.join(' ')} was killed by ${signal}: ${stderr}`))
      else resolve({ status, stdout, stderr })
    })
  })
}
