/**
 * The migration assistant: asks for the source and the target, shows the dry run, and asks for
 * consent — a second, explicit one before replacing an existing file. Reads and writes only the
 * streams it is given (a terminal, or test streams), and never shows a password.
 */
import { existsSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { confirm, input } from '@inquirer/prompts'
import { redactUrl } from '../db/url.ts'
import { ToolkitError } from '../errors.ts'
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
    write('PostgreSQL → SQLite migration assistant. Nothing is written before you confirm.\n\n')
    const shownDefault = options.defaultSource === undefined ? undefined : redactUrl(options.defaultSource)
    const typed = await input(
      {
        message: 'Source PostgreSQL URL:',
        ...(shownDefault ? { default: shownDefault } : {}),
        required: true,
        transformer: (value, { isFinal }) => (isFinal ? redactUrl(value) : value),
        validate: (value) => /^postgres(ql)?:\/\/\S+$/i.test(value.trim()) || 'Expected postgresql://user[:password]@host[:port]/database',
      },
      context,
    )
    const from = typed.trim() === shownDefault ? options.defaultSource! : typed.trim()

    let to = ''
    let force = false
    for (;;) {
      const answer = await input(
        {
          message: 'Target SQLite file (a new file):',
          default: options.defaultTarget,
          required: true,
          validate: (value) => {
            const path = resolve(options.cwd, value.trim().replace(/^file:/, ''))
            if (!existsSync(dirname(path))) return `The directory ${dirname(path)} does not exist`
            if (existsSync(path) && statSync(path).isDirectory()) return `${path} is a directory`
            return true
          },
        },
        context,
      )
      to = resolve(options.cwd, answer.trim().replace(/^file:/, ''))
      if (!existsSync(to)) break
      force = await confirm({ message: `${to} exists. Replace it (the current file is kept as ${to}${BEFORE_MIGRATION_SUFFIX})?`, default: false }, context)
      if (force) break
    }

    write('\nChecking the source (dry run)…\n')
    const preview = await options.preview({ from, to, force })
    write(`\n${preview.text}\n`)
    const problems = preview.problems.length
    if (problems > 0) {
      throw new ToolkitError(`the migration cannot run: ${problems} problem${problems === 1 ? '' : 's'} (listed above); nothing was written`, {
        hint: refusalHint(preview.problems),
      })
    }
    const go = await confirm(
      { message: `Copy ${preview.rows.toLocaleString('en')} rows in ${preview.tables} tables into ${to}${force ? ', replacing it' : ''}?`, default: !force },
      context,
    )
    if (!go) throw new ToolkitError('cancelled: nothing was written')
    return { from, to, force }
  } catch (error) {
    if (error instanceof Error && error.name === 'ExitPromptError') throw new ToolkitError('interrupted (Ctrl-C): nothing was written')
    throw error
  }
}
