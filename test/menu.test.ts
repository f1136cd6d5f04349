import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadMenu, MENU_OPTIONS_PATH } from '../scripts/lib/menu/options.ts'
import { renderMenu, runMenu, type MenuEffects } from '../scripts/lib/menu/run-menu.ts'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { powershellSyntaxProblems } from './helpers/powershell.ts'
import { REPO_ROOT } from './helpers/cli.ts'
import { defer, tempDir } from './helpers/databases.ts'
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { requireJudge } from './helpers/judges.ts'

const ps1 = readFileSync(join(REPO_ROOT, 'demo-databases.ps1'), 'utf8')
const npmScripts = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts

test('demo-databases.ps1 parses with the PowerShell grammar', async () => {
  assert.deepEqual(await powershellSyntaxProblems(ps1), [])
})

test('the syntax check catches a broken script', async () => {
  const broken = ps1.replace(/finally \{\n/, 'finally \n')
  assert.notEqual(broken, ps1)
  const problems = await powershellSyntaxProblems(broken)
  assert.ok(problems.length > 0)
  assert.equal(problems[0]!.kind, 'ERROR')
})

test('demo-databases.ps1 takes its options from the shared list, portable to PowerShell 5.1 and 7', () => {
  assert.match(ps1, /'menu-options\.json'/)
  assert.ok(/^[\x00-\x7F]*$/.test(ps1), 'ASCII only: Windows PowerShell 5.1 reads a .ps1 without BOM as ANSI')
  for (const option of loadMenu(npmScripts).options) assert.ok(!ps1.includes(option.label), `label "${option.label}" is not duplicated in the .ps1`)
  assert.match(ps1, /\$env:OS -eq 'Windows_NT'/)
  assert.match(ps1, /'npm\.cmd'/)
  assert.match(ps1, /\$LASTEXITCODE/)
  assert.match(ps1, /Join-Path \(Join-Path \$root 'scripts'\) 'menu-options\.json'/, 'paths are built with Join-Path, not a separator')
  assert.doesNotMatch(ps1, /\$IsWindows|\?\?|\?\./, 'no PowerShell 7-only syntax or variables')
})

test('the menu has the spec numbering and every option calls an npm script that exists', () => {
  const menu = loadMenu(npmScripts)
  assert.deepEqual(menu.options.map((o) => o.key), ['1', '2', '3', '4', '5', '6', '7', '8', '0'])
  assert.match(menu.options[0]!.label, /SQLite uniquement \(rapide\)/)
  assert.match(menu.options[6]!.label, /Backup avancé avec monitoring/)
  assert.match(menu.options[7]!.label, /Dashboard de performance/)
  assert.equal(npmScripts.dev !== undefined && menu.options[5]!.npmScript, 'dev')
})

test('a menu naming a missing npm script is refused', (t) => {
  const path = join(tempDir(t), 'menu.json')
  const menu = JSON.parse(readFileSync(MENU_OPTIONS_PATH, 'utf8'))
  menu.options[0].npmScript = 'no-such-script'
  writeFileSync(path, JSON.stringify(menu))
  assert.throws(() => loadMenu(npmScripts, path), (error: unknown) => error instanceof ToolkitError && /l’option 1 nomme un script npm absent : "no-such-script"/.test(error.message))
})

function scriptedEffects(answers: (string | 'CTRL-C')[], exitCodes: Record<string, number> = {}) {
  const printed: string[] = []
  const ran: string[] = []
  const effects: MenuEffects = {
    async ask() {
      const answer = answers.shift()
      if (answer === undefined || answer === 'CTRL-C') throw Object.assign(new Error('User force closed the prompt'), { name: 'ExitPromptError' })
      return answer
    },
    print: (text) => printed.push(text),
    async runNpmScript(script) {
      ran.push(script)
      return exitCodes[script] ?? 0
    },
  }
  return { effects, printed, ran }
}

test('the menu loop runs the chosen scripts, reports their exit codes, rejects bad choices and quits on 0', async () => {
  const menu = loadMenu(npmScripts)
  const { effects, printed, ran } = scriptedEffects(['9', ' 1 ', '7', '0'], { 'backup:monitor': 3 })
  await runMenu(menu, effects)
  assert.deepEqual(ran, ['test:db:sqlite', 'backup:monitor'])
  assert.ok(printed.includes('Choix invalide : "9". Tapez un numéro entre 1, 2, 3, 4, 5, 6, 7, 8, 0.'))
  assert.ok(printed.includes('OK: [1] terminé (npm run test:db:sqlite, code 0)'))
  assert.ok(printed.includes('ECHEC: [7] npm run backup:monitor a échoué avec le code 3'))
  assert.equal(printed.at(-1), 'Au revoir.')
  assert.equal(printed.filter((text) => text === renderMenu(menu)).length, 4, 'the menu is shown again after each choice')
})

test('Ctrl-C at the prompt ends the menu cleanly', async () => {
  const { effects, printed, ran } = scriptedEffects(['CTRL-C'])
  await runMenu(loadMenu(npmScripts), effects)
  assert.deepEqual(ran, [])
  assert.equal(printed.at(-1), 'Interrompu (Ctrl+C). Au revoir.')
})

test('npm run menu in a real terminal: invalid choice, an option with its exit code, then quit', { skip: requireJudge('tmux') }, async (t) => {
  const session = `ipm-menu-${process.pid}`
  const tmux = (...args: string[]) => execFileSync('tmux', args, { encoding: 'utf8' })
  const screen = () => tmux('capture-pane', '-p', '-t', session, '-S', '-200')
  const waitFor = async (pattern: RegExp) => {
    for (let i = 0; i < 150; i++) {
      if (pattern.test(screen())) return
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    assert.fail(`timed out waiting for ${pattern}:\n${screen()}`)
  }
  tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '50', '-c', REPO_ROOT, `env NO_COLOR=1 npm run --silent menu; echo MENU-EXIT=$?; sleep 30`)
  defer(t, () => tmux('kill-session', '-t', session))
  await waitFor(/Votre choix/)
  tmux('send-keys', '-t', session, '9', 'Enter')
  await waitFor(/Choix invalide : "9"/)
  tmux('send-keys', '-t', session, '5', 'Enter')
  await waitFor(/OK: \[5\] terminé \(npm run docs, code 0\)/)
  tmux('send-keys', '-t', session, '0', 'Enter')
  await waitFor(/MENU-EXIT=0/)
  assert.match(screen(), /Au revoir\./)
  assert.match(screen(), /\[8\] Dashboard de performance/)
})
