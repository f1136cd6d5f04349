/**
 * Runs a menu option's npm script so that Ctrl-C stops the option and not the menu.
 * - On Linux and macOS with a terminal, the script runs under `bash -c 'set -m; …'`: bash's job
 *   control gives it its own process group, made the terminal's foreground group, so Ctrl-C reaches
 *   the option alone. Without it, the terminal's SIGINT also reaches the menu and every process above
 *   it (npm, the `sh -c` of `npm run menu`, which then ends with the signal once the menu quits).
 * - Elsewhere (Windows, no bash), the Ctrl-C reaches the menu too: it ignores it while a child runs
 *   (`onInterrupt`), the child stops, and the menu asks again.
 */
import { spawn } from 'node:child_process'
import type { ScriptOutcome } from './run-menu.ts'

export interface NpmScriptRunner {
  /** Runs `npm run --silent <script>` with the terminal and resolves with how it ended. */
  run(script: string): Promise<ScriptOutcome>
  /**
   * The menu's `onInterrupt` (scripts/lib/cli.ts): with a child running, Ctrl-C is the child's
   * ('ignored' here) and SIGTERM is passed on to it before the menu ends; without one, the menu ends.
   */
  onInterrupt(signal: 'SIGINT' | 'SIGTERM'): 'ignored' | false
}

/** Exit code of a command stopped by Ctrl-C (128 + SIGINT), as shells report it. */
const INTERRUPTED_EXIT_CODE = 130

/**
 * @param options.jobControl run the script in its own foreground process group (needs bash and a terminal).
 * @example const runner = npmScriptRunner({ windows: false, jobControl: process.stdin.isTTY, cwd: projectRoot }); await runner.run('dev')
 */
export function npmScriptRunner(options: { windows: boolean; jobControl: boolean; cwd: string }): NpmScriptRunner {
  let running: { child: ReturnType<typeof spawn>; interrupted: boolean } | undefined
  let jobControl = options.jobControl && !options.windows
  const start = (script: string): Promise<ScriptOutcome> =>
    new Promise((resolve) => {
      const npm = [options.windows ? 'npm.cmd' : 'npm', 'run', '--silent', script]
      const usingJobControl = jobControl
      const child = usingJobControl
        ? spawn('bash', ['-c', 'set -m; "$@"; exit $?', 'bash', ...npm], { cwd: options.cwd, stdio: 'inherit' })
        : spawn(npm[0]!, npm.slice(1), { cwd: options.cwd, stdio: 'inherit', shell: options.windows })
      const current = { child, interrupted: false }
      running = current
      const done = (outcome: ScriptOutcome | 'retry') => {
        if (running === current) running = undefined
        if (outcome === 'retry') resolve(start(script))
        else resolve(outcome)
      }
      child.on('error', (error: NodeJS.ErrnoException) => {
        // No bash on this machine: run npm directly, the menu then ignores the Ctrl-C itself.
        if (usingJobControl && error.code === 'ENOENT') {
          jobControl = false
          done('retry')
        } else done({ exitCode: 127, interrupted: false })
      })
      child.on('exit', (code, signal) => {
        const exitCode = code ?? (signal === 'SIGINT' ? INTERRUPTED_EXIT_CODE : 1)
        done({ exitCode, interrupted: current.interrupted || exitCode === INTERRUPTED_EXIT_CODE })
      })
    })
  return {
    run: start,
    onInterrupt(signal) {
      if (running === undefined) return false
      if (signal === 'SIGINT') {
        running.interrupted = true
        return 'ignored'
      }
      running.child.kill(signal)
      return false
    },
  }
}
