/**
 * One error type for every failure a user can act on. Scripts map it to
 * `Error: <message>` / `Try: <hint>` and its exit code; everything else is a bug.
 */
export class ToolkitError extends Error {
  readonly hint: string | undefined
  readonly exitCode: number

  constructor(message: string, options: { hint?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ToolkitError'
    this.hint = options.hint
    this.exitCode = options.exitCode ?? 1
  }
}

/** Exit code for a command line that cannot be understood (unknown verb, bad flag). */
export const USAGE_EXIT_CODE = 2

/** The first line of an error's message, with its causes' messages appended. */
export function describeError(error: unknown): string {
  const parts: string[] = []
  let current: unknown = error
  while (current instanceof Error && parts.length < 4) {
    const line = current.message.split('\n').find((l) => l.trim() !== '') ?? current.name
    if (!parts.some((p) => p.includes(line.trim()))) parts.push(line.trim())
    current = current.cause
  }
  if (parts.length === 0) parts.push(String(error))
  return parts.join(': ')
}
