/**
 * `npm run menu`: the demo-databases.ps1 menu for Linux and macOS users without PowerShell,
 * from the same option list (scripts/menu-options.json). Ctrl-C inside an option stops the option
 * and shows the menu again (lib/menu/npm-script.ts). package.json runs it with `node --import tsx`,
 * not the `tsx` command: where the Ctrl-C reaches the menu too, tsx's parent process SIGKILLs its
 * child when the child is slow (30 ms) to acknowledge it, which a loaded machine can be.
 */
import './lib/node-floor.ts'
import { readFileSync } from 'node:fs'
import { input } from '@inquirer/prompts'
import { loadMenu } from './lib/menu/options.ts'
import { runMenu } from './lib/menu/run-menu.ts'
import { npmScriptRunner } from './lib/menu/npm-script.ts'
import { resolveEnvironment } from './lib/environment.ts'
import { Command } from 'commander'
import { runCommand } from './lib/cli.ts'
import { ToolkitError } from './lib/errors.ts'

const runner = npmScriptRunner({ windows: process.platform === 'win32', jobControl: process.stdin.isTTY === true, cwd: resolveEnvironment().projectRoot })

runCommand(new Command('menu').description('Le menu de l’outil (les scripts de package.json)'), async () => {
  if (!process.stdin.isTTY) {
    throw new ToolkitError('le menu demande un terminal interactif', { hint: 'Lancez directement les scripts npm, par exemple `npm run backup` (voir README).' })
  }
  const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }
  const menu = loadMenu(packageJson.scripts)
  return runMenu(menu, {
    ask: (message) => input({ message }),
    print: (text) => console.log(text),
    runNpmScript: (script) => runner.run(script),
  })
}, { onInterrupt: (signal) => runner.onInterrupt(signal) })
