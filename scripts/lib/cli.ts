/**
 * The one CLI skeleton, and the only place where a process exits. A script declares its commander
 * program and hands it to `runCommand` with the action to run once the arguments are parsed:
 * - a command-line error (unknown option, bad value, missing argument) → `Erreur : …` / `Essayez : npx tsx <script> --help`, exit 2
 *   (commander's own messages and help headings are put in French here: one language per line);
 * - a `ToolkitError` → its message, hint and exit code; any other error → exit 1 (stack only with DEBUG);
 * - Ctrl-C → exit 130 (a script that must clean up first passes an AbortSignal handler instead);
 * every line written to stderr has its passwords masked, whatever produced it;
 * a built script (dist/) older than its sources says so on stderr first, and runs: a backup is not skipped for it.
 * Results go out through `print(result, render, { json, quiet })`: JSON or text from the same object.
 */
import { dirname, relative } from 'node:path'
import { Command, CommanderError } from 'commander'
import { sourcesChangedSince } from './dist.ts'
import { ToolkitError, USAGE_EXIT_CODE, describeError } from './errors.ts'
import { redactSecrets } from './db/url.ts'
import { PROJECT_ROOT } from './environment.ts'

export interface RunCommandOptions {
  /** Print stacks (DEBUG is set). */
  debug?: boolean
  /** Turns a commander error into a more precise usage error (e.g. an unknown verb); undefined keeps the default. */
  usage?: (error: CommanderError) => ToolkitError | undefined
  /**
   * Ctrl-C: by default the process exits 130 at once. With `onInterrupt`, the first Ctrl-C (or SIGTERM)
   * calls it (the work stops and cleans up, then its error decides the exit code); a second one exits 130.
   * Returning `false` means "nothing to clean up here": the process exits 130 at once (a script whose
   * verbs differ, where only some stop cleanly). Returning `'ignored'` means the signal was not for
   * this process (a child in the terminal's foreground took the Ctrl-C): it carries on, and the next
   * signal is handled afresh.
   */
  onInterrupt?: (signal: 'SIGINT' | 'SIGTERM') => boolean | void | 'ignored'
}

/**
 * Parses the arguments of `program`, runs `action` and exits with its code (or the error's).
 * @example runCommand(new Command('seed').option('--database <url>'), async (options) => { … return 0 })
 */
export function runCommand<Options>(program: Command, action: (options: Options, program: Command) => Promise<number | void>, options: RunCommandOptions = {}): void {
  quietCommander(program)
  frenchCommander(program)
  warnIfStaleBuild()
  let interrupted = false
  // With onInterrupt, SIGTERM (a service manager, a container stop) gets the same chance to clean up.
  for (const signal of options.onInterrupt === undefined ? (['SIGINT'] as const) : (['SIGINT', 'SIGTERM'] as const)) {
    process.on(signal, () => {
      if (options.onInterrupt !== undefined && !interrupted) {
        const outcome = options.onInterrupt(signal)
        if (outcome === 'ignored') return
        interrupted = true
        if (outcome !== false) return
      } else if (interrupted) {
        process.exit(130)
      }
      process.stderr.write('\nInterrompu.\n')
      process.exit(130)
    })
  }
  const main = async (): Promise<number | void> => {
    try {
      await program.parseAsync()
    } catch (error) {
      if (!(error instanceof CommanderError)) throw error
      if (error.exitCode === 0) return 0
      throw options.usage?.(error) ?? usageError(frenchCommanderMessage(error), `${helpCommandOf(program)} --help`)
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

/** One line on stderr when this script runs built (dist/) from sources changed since the build. */
function warnIfStaleBuild(): void {
  const script = process.argv[1]
  if (script === undefined || script.endsWith('.ts')) return
  const changed = sourcesChangedSince(PROJECT_ROOT, dirname(script))
  if (changed.length === 0) return
  const named = changed.slice(0, 3).join(', ') + (changed.length > 3 ? ` et ${changed.length - 3} autre(s)` : '')
  process.stderr.write(`Attention : ${relative(PROJECT_ROOT, script)} a été construit avant la dernière modification de ${named} : il exécute l’ancien code. Lancez \`npm run build\` (ou \`npm ci\`).\n`)
}

/** The command line that runs this script again from the project's root, as the docs write it (the program's name is not a command; a built one runs under node). */
function helpCommandOf(program: Command): string {
  const script = process.argv[1]
  if (script === undefined) return program.name()
  return `${script.endsWith('.ts') ? 'npx tsx' : 'node'} ${relative(PROJECT_ROOT, script)}`
}

/** Commander prints nothing itself and throws instead of exiting, on the program and every subcommand. */
function quietCommander(command: Command): void {
  command.exitOverride().configureOutput({ writeErr: () => {}, outputError: () => {} })
  for (const sub of command.commands) quietCommander(sub)
}

const HELP_TITLES: Record<string, string> = {
  'Usage:': 'Utilisation :',
  'Options:': 'Options :',
  'Commands:': 'Commandes :',
  'Arguments:': 'Arguments :',
  'Global Options:': 'Options globales :',
}

/**
 * `--help` in French, on the program and every subcommand: headings, the help option and command,
 * and the `(default: …)`/`(choices: …)` notes commander adds to descriptions.
 */
function frenchCommander(command: Command): void {
  command.helpOption('-h, --help', 'afficher cette aide')
  if (command.commands.length > 0) command.helpCommand('help [commande]', 'afficher l’aide d’une commande')
  command.configureHelp({
    styleTitle: (title) => HELP_TITLES[title] ?? title,
    optionDescription: (option) => withNotes(option.description, option.argChoices, option.required || option.optional || (option.isBoolean() && typeof option.defaultValue === 'boolean') ? (option.defaultValueDescription ?? (option.defaultValue === undefined ? undefined : JSON.stringify(option.defaultValue))) : undefined),
    argumentDescription: (argument) => withNotes(argument.description, argument.argChoices, argument.defaultValueDescription ?? (argument.defaultValue === undefined ? undefined : JSON.stringify(argument.defaultValue))),
  })
  for (const sub of command.commands) frenchCommander(sub)
}

function withNotes(description: string, choices: readonly string[] | undefined, byDefault: string | undefined): string {
  const notes = [...(choices ? [`choix : ${choices.map((c) => JSON.stringify(c)).join(', ')}`] : []), ...(byDefault !== undefined ? [`par défaut : ${byDefault}`] : [])]
  return notes.length === 0 ? description : `${description} (${notes.join(' ; ')})`.trim()
}

/** Commander's error, in French, by its code; the option or argument named as the user typed it. */
export function frenchCommanderMessage(error: CommanderError): string {
  const message = error.message.replace(/^error: /, '')
  const quoted = [...message.matchAll(/'([^']*)'/g)].map((m) => m[1]!)
  const suggestion = /\(Did you mean ([^?]+)\?\)/.exec(message)?.[1]
  const didYouMean = suggestion ? ` (vouliez-vous dire ${suggestion} ?)` : ''
  switch (error.code) {
    case 'commander.unknownOption':
      return `option inconnue : ${quoted[0]}${didYouMean}`
    case 'commander.unknownCommand':
      return `commande inconnue : ${quoted[0]}${didYouMean}`
    case 'commander.missingArgument':
      return `argument obligatoire manquant : ${quoted[0]}`
    case 'commander.optionMissingArgument':
      return `l’option ${quoted[0]} attend une valeur`
    case 'commander.missingMandatoryOptionValue':
      return `option obligatoire absente : ${quoted[0]}`
    case 'commander.conflictingOption':
      return `les options ${quoted[0]} et ${quoted[1]} s’excluent`
    case 'commander.excessArguments': {
      const counts = /Expected (\d+) arguments? but got (\d+)/.exec(message)
      return `trop d’arguments${quoted[0] ? ` pour ${quoted[0]}` : ''}${counts ? ` : ${counts[1]} attendu(s), ${counts[2]} donné(s)` : ''}`
    }
    case 'commander.invalidArgument': {
      // "option '--x <v>' argument 'v' is invalid. <reason>" or "command-argument value 'v' is invalid for argument 'a'. <reason>"
      const reason = message.split(/is invalid(?: for argument '[^']*')?\. ?/)[1]?.trim()
      const what = message.startsWith('option') ? `l’option ${quoted[0]}` : `l’argument ${quoted[1]}`
      const value = message.startsWith('option') ? quoted[1] : quoted[0]
      return `${what} refuse la valeur '${value}'${reason ? ` : ${reason}` : ''}`
    }
    default:
      return message
  }
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
  let text = `Erreur : ${describeError(error)}\n`
  if (error instanceof ToolkitError && error.hint) text += `Essayez : ${error.hint}\n`
  if (debug && error instanceof Error && error.stack) text += `${error.stack}\n`
  return text
}

/** A usage error: the command line itself is wrong. */
export function usageError(message: string, hint?: string): ToolkitError {
  return new ToolkitError(message, { hint, exitCode: USAGE_EXIT_CODE })
}

export { Command }
