/**
 * The one list of menu options, scripts/menu-options.json, read by both menus: demo-databases.ps1
 * (PowerShell) and scripts/menu.ts (`npm run menu`). Each option runs one npm script, so the menu,
 * cron, CI and the README all call the same commands.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PROJECT_ROOT } from '../environment.ts'
import { ToolkitError } from '../errors.ts'

export interface MenuOption {
  key: string
  label: string
  /** The npm script this option runs; absent only for the option that quits. */
  npmScript?: string
}

export interface Menu {
  version: 1
  title: string
  question: string
  prompt: string
  options: MenuOption[]
}

export const MENU_OPTIONS_PATH = join(PROJECT_ROOT, 'scripts', 'menu-options.json')

/** Reads and validates the menu; every npm script it names must exist in `npmScripts`. */
export function loadMenu(npmScripts: Record<string, string>, path = MENU_OPTIONS_PATH): Menu {
  const menu = JSON.parse(readFileSync(path, 'utf8')) as Menu
  const problems: string[] = []
  if (menu.version !== 1) problems.push(`version non prise en charge : ${String(menu.version)}`)
  const keys = new Set<string>()
  for (const option of menu.options ?? []) {
    if (keys.has(option.key)) problems.push(`clé en double : ${option.key}`)
    keys.add(option.key)
    if (option.npmScript === undefined && option.key !== '0') problems.push(`l’option ${option.key} ne lance rien`)
    if (option.npmScript !== undefined && !(option.npmScript in npmScripts)) problems.push(`l’option ${option.key} nomme un script npm absent : "${option.npmScript}"`)
  }
  if (!keys.has('0')) problems.push('pas d’option 0 pour quitter')
  if (problems.length > 0) throw new ToolkitError(`menu invalide ${path} : ${problems.join(' ; ')}`)
  return menu
}
