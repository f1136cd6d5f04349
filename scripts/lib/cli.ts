/**
 * The one CLI skeleton, and the only place where a process exits. A script declares its commander
 * program and hands it to `runCommand` with the action to run once the arguments are parsed:
 * - a command-line error (unknown option, bad value, missing argument) → `Error: …` / `Try: <cmd> --help`, exit 2;
 * - a `ToolkitError` → its message, hint and exit code; any other error → exit 1 (stack only with DEBUG);
 * - Ctrl-C → exit 130 (a script that must clean up first passes an AbortSignal handler instead);
 * every line written to stderr has its passwords masked, whatever produced it.
 * Results go out through `print(result, render, { json, quiet })`: JSON or text from the same object.
 */
import { Command, CommanderError } from 'commander'
import { ToolkitError, USAGE_EXIT_CODE, describeError } from './errors.ts'
import { redactSecrets } from './db/url.ts'

export interface RunCommandOptions {
  /** Print stacks (DEBUG is set). */
  debug?: boolean
  /** Turns a commander error into a more precise usage error (e.g. an unknown verb); undefined keeps the default. */
  usage?: (error: CommanderError) => ToolkitError | undefined
  /**
   * Ctrl-C: by default the process exits 130 at once. With `onInterrupt`, the first Ctrl-C (or SIGTERM)
   * calls it (the work stops and cleans up, then its error decides the exit code); a second one exits 130.
   * Returning `false` means "nothing to clean up here": the process exits 130 at once (a script whose
   * verbs differ, where only some stop cleanly).
   */
  onInterrupt?: () => boolean | void
}

/**
 * Parses the arguments of `program`, runs `action` and exits with its code (or the error's).
 * @example runCommand(new Command('seed').option('--database <url>'), async (options) => { … return 0 })
 */
export function runCommand<Options>(program: Command, action: (options: Options, program: Command) => Promise<number | void>, options: RunCommandOptions = {}): void {
  quietCommander(program)
  let interrupted = false
  // With onInterrupt, SIGTERM (a service manager, a container stop) gets the same chance to clean up.
  for (const signal of options.onInterrupt === undefined ? (['SIGINT'] as const) : (['SIGINT', 'SIGTERM'] as const)) {
    process.on(signal, () => {
      if (options.onInterrupt !== undefined && !interrupted) {
        interrupted = true
        if (options.onInterrupt() !== false) return
      } else if (interrupted) {
        process.exit(130)
      }
      process.stderr.write('\nInterrupted.\n')
      process.exit(130)
    })
  }
  const main = async (): Promise<number | void> => {
    try {
      await program.parseAsync()
    } catch (error) {
      if (!(error instanceof CommanderError)) throw error
      if (error.exitCode === 0) return 0
      throw options.usage?.(error) ?? usageError(error.message.replace(/^error: /, ''), `See \`${program.name()} --help\`.`)
    }
    return action(program.opts<Options & object>() as Options, program)
  }
  main().then(
    (code) => process.exit(code ?? 0),
    (error: unknown) => {
      process.stderr.write(redactSecrets(renderError(error, options.debug ?? false)))
      process.exit(error instanceof ToolkitError ? error.exitCode : 1)
    },
  )
}

/** Commander prints nothing itself and throws instead of exiting, on the program and every subcommand. */
function quietCommander(command: Command): void {
  command.exitOverride().configureOutput({ writeErr: () => {}, outputError: () => {} })
  for (const sub of command.commands) quietCommander(sub)
}

/**
 * Writes a result: JSON on stdout with `json`, nothing with `quiet`, else the rendered text.
 * `failed` results go to stderr when quiet (cron sees what went wrong).
 */
export function print(result: unknown, render: () => string, options: { json?: boolean; quiet?: boolean; failed?: boolean }): void {
  if (options.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
  else if (options.failed) (options.quiet ? process.stderr : process.stdout).write(render())
  else if (!options.quiet) process.stdout.write(render())
}

/** A warning beside a result (stderr, passwords masked): what went wrong without deciding the exit code. */
export function warn(message: string): void {
  process.stderr.write(redactSecrets(`Attention : ${message}\n`))
}

/** The text shown for a failure: one line, a hint when there is one, the stack only in debug mode. */
export function renderError(error: unknown, debug: boolean): string {
  let text = `Error: ${describeError(error)}\n`
  if (error instanceof ToolkitError && error.hint) text += `Try: ${error.hint}\n`
  if (debug && error instanceof Error && error.stack) text += `${error.stack}\n`
  return text
}

/** A usage error: the command line itself is wrong. */
export function usageError(message: string, hint?: string): ToolkitError {
  return new ToolkitError(message, { hint, exitCode: USAGE_EXIT_CODE })
}

export { Command }
