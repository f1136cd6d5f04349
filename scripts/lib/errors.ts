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

/**
 * The usual words of SQLite, PostgreSQL, Prisma and the system, in French: an error line quotes
 * them after our own French text, and a line speaks one language.
 */
const FOREIGN_MESSAGES: [RegExp, string][] = [
  [/database or disk is full/g, 'disque plein'],
  [/file is not a database/g, 'ce fichier n’est pas une base SQLite'],
  [/database is locked/g, 'base verrouillée'],
  [/no such file or directory/g, 'fichier ou dossier introuvable'],
  [/permission denied/g, 'permission refusée'],
  [/read-only file system/g, 'système de fichiers en lecture seule'],
  [/no space left on device/g, 'plus de place sur le disque'],
  [/not a directory/g, 'pas un dossier'],
  [/password authentication failed for user "([^"]*)"/g, 'échec de l’authentification par mot de passe de l’utilisateur "$1"'],
  [/role "([^"]*)" does not exist/g, 'le rôle "$1" n’existe pas'],
  [/database "([^"]*)" does not exist/g, 'la base "$1" n’existe pas'],
  [/The table `([^`]*)` does not exist in the current database\./g, 'La table `$1` n’existe pas dans la base.'],
  [/Connection terminated unexpectedly/g, 'connexion coupée de façon inattendue'],
]

/** One error line in French: the known foreign phrases replaced, the rest (names, codes) kept. */
export function frenchErrorText(text: string): string {
  return FOREIGN_MESSAGES.reduce((line, [pattern, french]) => line.replace(pattern, french), text)
}

/** The first line of an error's message, with its causes' messages appended (known foreign phrases in French). */
export function describeError(error: unknown): string {
  const parts: string[] = []
  let current: unknown = error
  while (current instanceof Error && parts.length < 4) {
    const line = frenchErrorText(current.message.split('\n').find((l) => l.trim() !== '') ?? current.name)
    if (!parts.some((p) => p.includes(line.trim()))) parts.push(line.trim())
    current = current.cause
  }
  if (parts.length === 0) parts.push(String(error))
  return parts.join(': ')
}
