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
import { existsSync, rmSync, writeFileSync } from 'node:fs'
import { npmScriptRunner } from '../scripts/lib/menu/npm-script.ts'
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

test('demo-databases.ps1: Ctrl+C inside an option is handled around the child, so the menu comes back', () => {
  // PowerShell cannot run here: the structure is pinned. try/finally alone would not do: PowerShell
  // stops the whole script on Ctrl+C (finally runs, then the stop goes on), so a console handler that
  // cancels the event is registered only while the child runs, and removed in the finally.
  const invoke = /function Invoke-MenuOption[^]*?\n\}\n/.exec(ps1)?.[0] ?? ''
  assert.match(invoke, /\[IpmMenuCtrlC\]::Ignore\(\)\s*\n\s*try \{\s*\n\s*& \$npm run --silent \$script\s*\n\s*\$code = \$LASTEXITCODE\s*\n\s*\}\s*\n\s*finally \{\s*\n\s*\$interrupted = \[IpmMenuCtrlC\]::Restore\(\)/)
  assert.match(invoke, /if \(\$interrupted\) \{[^}]*INTERROMPU : \[\{0\}\] npm run \{1\} arrete par Ctrl\+C, retour au menu/)
  assert.match(ps1, /Console\.CancelKeyPress \+= Keep/)
  assert.match(ps1, /e\.Cancel = true/)
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
      return exitCodes[script] === 130 ? { exitCode: 130, interrupted: true } : { exitCode: exitCodes[script] ?? 0, interrupted: false }
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

test('an option stopped by Ctrl-C is reported as interrupted and the menu asks again', async () => {
  const menu = loadMenu(npmScripts)
  const { effects, printed, ran } = scriptedEffects(['6', '0'], { dev: 130 })
  await runMenu(menu, effects)
  assert.deepEqual(ran, ['dev'])
  assert.ok(printed.includes('INTERROMPU : [6] npm run dev arrêté par Ctrl+C, retour au menu (code 130)'))
  assert.equal(printed.filter((text) => text === renderMenu(menu)).length, 2)
  assert.equal(printed.at(-1), 'Au revoir.')
})

test('Ctrl-C at the prompt ends the menu cleanly', async () => {
  const { effects, printed, ran } = scriptedEffects(['CTRL-C'])
  await runMenu(loadMenu(npmScripts), effects)
  assert.deepEqual(ran, [])
  assert.equal(printed.at(-1), 'Interrompu (Ctrl+C). Au revoir.')
})

test('without job control (Windows, no bash) the menu ignores a Ctrl-C while its option runs, and reports the option as interrupted; SIGTERM is passed on and ends the menu', async (t) => {
  const dir = tempDir(t)
  // The option: says it started, then stops by SIGINT (as the terminal's Ctrl-C would) when told to, or runs until SIGTERM.
  const option = "const fs = require('fs'); fs.writeFileSync('started-' + process.argv[2], String(process.pid)); setInterval(() => { if (fs.existsSync('stop')) process.kill(process.pid, 'SIGINT') }, 20)"
  writeFileSync(join(dir, 'option.js'), option)
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'menu-test', private: true, scripts: { first: 'node option.js first', second: 'node option.js second' } }))
  const runner = npmScriptRunner({ windows: process.platform === 'win32', jobControl: false, cwd: dir })
  const started = async (name: string) => {
    for (let i = 0; !existsSync(join(dir, `started-${name}`)); i++) {
      if (i === 3000) assert.fail(`option ${name} did not start`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  assert.equal(runner.onInterrupt('SIGINT'), false, 'no option running: Ctrl-C ends the menu')
  const first = runner.run('first')
  await started('first')
  assert.equal(runner.onInterrupt('SIGINT'), 'ignored', 'an option running: the Ctrl-C is the option’s')
  writeFileSync(join(dir, 'stop'), '')
  assert.deepEqual(await first, { exitCode: 130, interrupted: true })
  assert.equal(runner.onInterrupt('SIGINT'), false)
  rmSync(join(dir, 'stop'))
  const second = runner.run('second')
  await started('second')
  // npm's shell may not pass SIGTERM on to the option's own process: never leave it running (it holds
  // the test runner's output open, and the suite would wait for it).
  const optionPid = Number(readFileSync(join(dir, 'started-second'), 'utf8'))
  t.after(() => {
    try {
      process.kill(optionPid, 'SIGKILL')
    } catch {}
  })
  assert.equal(runner.onInterrupt('SIGTERM'), false, 'SIGTERM ends the menu…')
  assert.notEqual((await second).exitCode, 0, '…and the option with it')
})

/** A menu in its own tmux server (other tests' tmux sessions never meet it); the pane stays after the menu ends. */
function tmuxMenu(t: Parameters<typeof defer>[0], command: string) {
  const socket = `ipm-menu-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' })
  tmux('new-session', '-d', '-s', 'menu', '-x', '160', '-y', '50', '-c', REPO_ROOT, command)
  tmux('set-option', '-t', 'menu', 'remain-on-exit', 'on')
  defer(t, () => tmux('kill-server'))
  const screen = () => tmux('capture-pane', '-p', '-t', 'menu', '-S', '-400')
  const waitFor = async (pattern: RegExp) => {
    for (let i = 0; i < 600; i++) {
      if (pattern.test(screen())) return
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    assert.fail(`timed out waiting for ${pattern}:\n${screen()}`)
  }
  const keys = (...keys: string[]) => tmux('send-keys', '-t', 'menu', ...keys)
  return { screen, waitFor, keys }
}

test('npm run menu in a real terminal: invalid choice, an option with its exit code, then quit', { skip: requireJudge('tmux') }, async (t) => {
  const { screen, waitFor, keys } = tmuxMenu(t, `env NO_COLOR=1 npm run --silent menu; echo MENU-EXIT=$?`)
  await waitFor(/Votre choix/)
  keys('9', 'Enter')
  await waitFor(/Choix invalide : "9"/)
  keys('5', 'Enter')
  await waitFor(/OK: \[5\] terminé \(npm run docs, code 0\)/)
  keys('0', 'Enter')
  await waitFor(/MENU-EXIT=0/)
  assert.match(screen(), /Au revoir\./)
  assert.match(screen(), /\[8\] Dashboard de performance/)
})

test('Ctrl-C inside a running option stops only that option: the menu comes back and still answers', { skip: requireJudge('tmux') }, async (t) => {
  // DASHBOARD_PORT=0: the live dashboard of option 6 listens on a free port, whatever else runs here.
  const { screen, waitFor, keys } = tmuxMenu(t, `env NO_COLOR=1 DASHBOARD_PORT=0 npm run --silent menu; echo MENU-EXIT=$?`)
  await waitFor(/Votre choix/)
  keys('6', 'Enter')
  await waitFor(/Dashboard en direct: http:\/\/127\.0\.0\.1:\d+\//)
  keys('C-c')
  await waitFor(/INTERROMPU : \[6\] npm run dev arrêté par Ctrl\+C, retour au menu/)
  await waitFor(/INTERROMPU[^]*Votre choix/)
  assert.doesNotMatch(screen(), /MENU-EXIT/, 'the menu is still running')
  keys('0', 'Enter')
  await waitFor(/MENU-EXIT=0/)
  assert.match(screen(), /Au revoir\./)
})
