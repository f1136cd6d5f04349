/**
 * The documentation index (what `npm run docs` shows) and how the main document is opened with the
 * platform's opener. Opening is best effort: on a server without a graphical session, or without
 * an opener, the caller gets `{ opened: false, reason }` and prints the path instead.
 */
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

export interface DocEntry {
  /** Path relative to the project root, `/`-separated. */
  path: string
  /** The document's first `# ` heading, or its file name when it has none. */
  title: string
  /** False when the file is listed but absent (a checkout without docs/). */
  exists: boolean
}

/** The documents, the main one (the overview) first. */
export const DOC_PATHS = [
  'docs/SYNTHESE_GESTION_DATABASES.md',
  'docs/ADVANCED_FEATURES_DATABASES.md',
  'docs/MIGRATION_DATABASES_GUIDE.md',
  'docs/cron.md',
  'README.md',
] as const

export const MAIN_DOC = DOC_PATHS[0]

/** The first `# ` heading of a Markdown text. */
export function markdownTitle(text: string): string | undefined {
  for (const line of text.split('\n')) {
    const match = /^#\s+(.+?)\s*#*\s*$/.exec(line)
    if (match) return match[1]
  }
  return undefined
}

/**
 * The index of the documents under `root` (optional ones that do not exist are left out).
 * @example for (const doc of docIndex(environment.projectRoot)) console.log(doc.path, doc.title)
 */
export function docIndex(root: string): DocEntry[] {
  const entries: DocEntry[] = []
  for (const path of DOC_PATHS) {
    const file = join(root, path)
    const exists = existsSync(file)
    if (!exists && path === 'docs/cron.md') continue
    entries.push({ path, exists, title: (exists ? markdownTitle(readFileSync(file, 'utf8')) : undefined) ?? path.split('/').at(-1)! })
  }
  return entries
}

export interface Opener {
  command: string
  args: string[]
}

/** The command that opens a file with the desktop's default application, or why there is none. */
/** The environment variables that tell whether there is a graphical session. */
export interface DisplayVariables {
  DISPLAY?: string
  WAYLAND_DISPLAY?: string
}

export function openerFor(file: string, platform: NodeJS.Platform, env: DisplayVariables): Opener | { reason: string } {
  // `start` takes its first quoted argument as a window title: give an empty one, then the quoted path.
  if (platform === 'win32') return { command: 'cmd', args: ['/c', 'start', '""', `"${file}"`] }
  if (platform === 'darwin') return { command: 'open', args: [file] }
  if (!env.DISPLAY && !env.WAYLAND_DISPLAY) return { reason: 'pas de session graphique (DISPLAY et WAYLAND_DISPLAY ne sont pas définis)' }
  return { command: 'xdg-open', args: [file] }
}

export type OpenResult = { opened: true; command: string } | { opened: false; reason: string }

/**
 * Opens a file with the platform's opener, detached; never throws.
 * @example const result = await openDocument('docs/SYNTHESE_GESTION_DATABASES.md', { env: environment.display })
 */
export function openDocument(file: string, options: { platform?: NodeJS.Platform; env: DisplayVariables }): Promise<OpenResult> {
  const opener = openerFor(file, options.platform ?? process.platform, options.env)
  if ('reason' in opener) return Promise.resolve({ opened: false, reason: opener.reason })
  return new Promise((resolve) => {
    const child = spawn(opener.command, opener.args, { detached: true, stdio: 'ignore', windowsVerbatimArguments: opener.command === 'cmd' })
    child.once('error', (error) => resolve({ opened: false, reason: `${opener.command}: ${error.message}` }))
    child.once('spawn', () => {
      child.unref()
      resolve({ opened: true, command: opener.command })
    })
  })
}
