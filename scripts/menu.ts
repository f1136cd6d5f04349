/**
 * `npm run menu`: the demo-databases.ps1 menu for Linux and macOS users without PowerShell,
 * from the same option list (scripts/menu-options.json).
 */
import './lib/node-floor.ts'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { input } from '@inquirer/prompts'
import { loadMenu } from './lib/menu/options.ts'
import { runMenu } from './lib/menu/run-menu.ts'
import { Command } from 'commander'
import { runCommand } from './lib/cli.ts'
import { ToolkitError } from './lib/errors.ts'

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

runCommand(new Command('menu').description('Le menu de l’outil (les scripts de package.json)'), async () => {
  if (!process.stdin.isTTY) {
    throw new ToolkitError('le menu demande un terminal interactif', { hint: 'Lancez directement les scripts npm, par exemple `npm run backup` (voir README).' })
  }
  const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }
  const menu = loadMenu(packageJson.scripts)
  return runMenu(menu, {
    ask: (message) => input({ message }),
    print: (text) => console.log(text),
    runNpmScript: (script) =>
      new Promise((resolve) => {
        const child = spawn(npm, ['run', '--silent', script], { stdio: 'inherit', shell: process.platform === 'win32' })
        child.on('exit', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 1)))
      }),
  })
})
