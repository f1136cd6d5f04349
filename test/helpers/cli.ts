/** Runs a toolkit script as a user would: a child process with tsx, no TTY, the exit code and both streams. */
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

export interface CliResult {
  status: number | null
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
    timeout: 120_000,
  }
  const result = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, script), ...args], spawnOptions)
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
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000)
    child.on('error', reject)
    child.on('close', (status) => {
      clearTimeout(timer)
      resolve({ status, stdout, stderr })
    })
  })
}
