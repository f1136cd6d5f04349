/**
 * The one place where a script's outcome becomes output and an exit code:
 * `Error: <message>` and `Try: <hint>` on stderr, stacks only with DEBUG, 130 on Ctrl-C.
 */
import { ToolkitError, USAGE_EXIT_CODE, describeError } from './errors.ts'
import { resolveEnvironment } from './environment.ts'

export interface RunMainOptions {
  debug?: boolean
}

/** Runs a script's main function and exits with its code (or the error's). */
export function runMain(main: () => Promise<number | void>, options: RunMainOptions = {}): void {
  process.once('SIGINT', () => {
    process.stderr.write('\nInterrupted.\n')
    process.exit(130)
  })
  main().then(
    (code) => process.exit(code ?? 0),
    (error: unknown) => {
      process.stderr.write(renderError(error, options.debug ?? resolveEnvironment().debug))
      process.exit(error instanceof ToolkitError ? error.exitCode : 1)
    },
  )
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
