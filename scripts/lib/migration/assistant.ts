/**
 * The migration assistant: asks for the source and the target, shows the dry run, and asks for
 * consent — a second, explicit one before replacing an existing file. Reads and writes only the
 * streams it is given (a terminal, or test streams), and never shows a password.
 */
import { existsSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { confirm, input } from '@inquirer/prompts'
import { redactUrl } from '../db/url.ts'
import { ToolkitError, describeError } from '../errors.ts'
import { BEFORE_MIGRATION_SUFFIX, type PlanProblem } from './plan.ts'
import { refusalHint } from './report.ts'

export interface AssistantOptions {
  /** Offered as the source (POSTGRES_URL); shown with its password masked. */
  defaultSource?: string
  defaultTarget: string
  cwd: string
  /** Runs the dry run for the answers so far and returns it as text, with whether it found problems. */
  preview(answers: { from: string; to: string; force: boolean }): Promise<{ text: string; problems: readonly PlanProblem[]; rows: number; tables: number }>
  input?: NodeJS.ReadableStream
  output?: NodeJS.WritableStream
}

export interface AssistantAnswers {
  from: string
  /** Absolute path of the target. */
  to: string
  force: boolean
}

/**
 * Runs the assistant; resolves with the answers once the user agreed, or throws a ToolkitError
 * (declined, problems found, Ctrl-C).
 * @example const answers = await runAssistant({ defaultTarget: 'prisma/from-postgres.db', cwd, preview })
 */
export async function runAssistant(options: AssistantOptions): Promise<AssistantAnswers> {
  const context = { input: options.input, output: options.output, clearPromptOnDone: false }
  const write = (text: string) => (options.output ?? process.stdout).write(text)
  try {
    write('Assistant de migration PostgreSQL → SQLite. Rien n’est écrit avant votre confirmation.\n\n')
    let source = options.defaultSource
    let from = ''
    let to = ''
    let force = false
    let preview: Awaited<ReturnType<AssistantOptions['preview']>>
    for (;;) {
      from = await askSource(source, context)
      ;({ to, force } = await askTarget(options, context))
      write('\nVérification de la source (simulation)…\n')
      try {
        preview = await options.preview({ from, to, force })
        break
      } catch (error) {
        // Cannot connect, no such database…: say why and ask again (Ctrl-C leaves).
        if (!(error instanceof ToolkitError) || /^interrompu/.test(error.message)) throw error
        write(`✗ ${describeError(error)}\n${error.hint ? `  ${error.hint}\n` : ''}\n`)
        source = from
      }
    }
    write(`\n${preview.text}\n`)
    const problems = preview.problems.length
    if (problems > 0) {
      throw new ToolkitError(`la migration ne peut pas se faire : ${problems} problème${problems === 1 ? '' : 's'} (listés ci-dessus) ; rien n’a été écrit`, {
        hint: refusalHint(preview.problems),
      })
    }
    const go = await confirm(
      { message: `Copier ${preview.rows.toLocaleString('fr-FR')} lignes de ${preview.tables} tables dans ${to}${force ? ', en le remplaçant' : ''} ?`, default: !force },
      context,
    )
    if (!go) throw new ToolkitError('annulé : rien n’a été écrit')
    return { from, to, force }
  } catch (error) {
    if (error instanceof Error && error.name === 'ExitPromptError') throw new ToolkitError('interrompu (Ctrl-C) : rien n’a été écrit')
    throw error
  }
}

type PromptContext = { input?: NodeJS.ReadableStream; output?: NodeJS.WritableStream; clearPromptOnDone: boolean }

/** The source URL; a default is shown with its password masked, and Enter takes the real one. */
async function askSource(defaultSource: string | undefined, context: PromptContext): Promise<string> {
  const shown = defaultSource === undefined ? undefined : redactUrl(defaultSource)
  const typed = await input(
    {
      message: 'URL PostgreSQL de la source :',
      ...(shown ? { default: shown } : {}),
      required: true,
      transformer: (value, { isFinal }) => (isFinal ? redactUrl(value) : value),
      validate: (value) => /^postgres(ql)?:\/\/\S+$/i.test(value.trim()) || 'Attendu : postgresql://utilisateur[:mot-de-passe]@hôte[:port]/base',
    },
    context,
  )
  return typed.trim() === shown ? defaultSource! : typed.trim()
}

/** The target path; an existing file needs an explicit yes (then it is kept as .before-migration), else another path. */
async function askTarget(options: AssistantOptions, context: PromptContext): Promise<{ to: string; force: boolean }> {
  for (;;) {
    const answer = await input(
      {
        message: 'Fichier SQLite cible (un nouveau fichier) :',
        default: options.defaultTarget,
        required: true,
        validate: (value) => {
          const path = resolve(options.cwd, value.trim().replace(/^file:/, ''))
          if (!existsSync(dirname(path))) return `Le dossier ${dirname(path)} n’existe pas`
          if (existsSync(path) && statSync(path).isDirectory()) return `${path} est un dossier`
          return true
        },
      },
      context,
    )
    const to = resolve(options.cwd, answer.trim().replace(/^file:/, ''))
    if (!existsSync(to)) return { to, force: false }
    if (await confirm({ message: `${to} existe. Le remplacer (le fichier actuel est gardé sous ${to}${BEFORE_MIGRATION_SUFFIX}) ?`, default: false }, context)) return { to, force: true }
  }
}
