/**
 * The interactive loop shared in behaviour with demo-databases.ps1: show the options, read a
 * choice, run its npm script, report its exit code, until 0 or Ctrl-C at the prompt.
 */
import type { Menu, MenuOption } from './options.ts'

export interface MenuEffects {
  /** Reads one answer; rejects with an error named `ExitPromptError` on Ctrl-C. */
  ask(message: string): Promise<string>
  print(text: string): void
  /** Runs `npm run <script>` and resolves with how it ended. */
  runNpmScript(script: string): Promise<ScriptOutcome>
}

/** How an option's npm script ended: its exit code, and whether the user stopped it with Ctrl-C. */
export interface ScriptOutcome {
  exitCode: number
  interrupted: boolean
}

export function renderMenu(menu: Menu): string {
  const lines = menu.options.map((option) => `  [${option.key}] ${option.label}`)
  return ['', '='.repeat(70), menu.title, '='.repeat(70), '', menu.question, '', ...lines, ''].join('\n')
}

/** The message shown after an option ran: stopped by Ctrl-C, success, or failure with the command's own exit code. */
export function renderOutcome(option: MenuOption, { exitCode, interrupted }: ScriptOutcome): string {
  if (interrupted) return `INTERROMPU : [${option.key}] npm run ${option.npmScript} arrêté par Ctrl+C, retour au menu (code ${exitCode})`
  return exitCode === 0
    ? `OK: [${option.key}] terminé (npm run ${option.npmScript}, code 0)`
    : `ECHEC: [${option.key}] npm run ${option.npmScript} a échoué avec le code ${exitCode}`
}

/** Runs the menu until the user quits (0) or presses Ctrl-C at its prompt (Ctrl-C inside an option only stops the option). */
export async function runMenu(menu: Menu, effects: MenuEffects): Promise<void> {
  for (;;) {
    effects.print(renderMenu(menu))
    let answer: string
    try {
      answer = (await effects.ask(menu.prompt)).trim()
    } catch (error) {
      if (error instanceof Error && error.name === 'ExitPromptError') {
        effects.print('Interrompu (Ctrl+C). Au revoir.')
        return
      }
      throw error
    }
    const option = menu.options.find((candidate) => candidate.key === answer)
    if (option === undefined) {
      effects.print(`Choix invalide : "${answer}". Tapez un numéro entre ${menu.options.map((o) => o.key).join(', ')}.`)
      continue
    }
    if (option.npmScript === undefined) {
      effects.print('Au revoir.')
      return
    }
    effects.print(renderOutcome(option, await effects.runNpmScript(option.npmScript)))
  }
}
