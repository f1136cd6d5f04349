/**
 * `npm run docs`: the documentation index (path and title of each document); `--open` also opens the
 * main document with the platform's opener, and only prints its path on a server without a desktop.
 */
import './lib/node-floor.ts'
import { join } from 'node:path'
import { Command } from 'commander'
import { runCommand } from './lib/cli.ts'
import { resolveEnvironment } from './lib/environment.ts'
import { MAIN_DOC, docIndex, openDocument } from './lib/docs.ts'

const program = new Command('show-docs')
  .description('Lister la documentation (chemin et titre) ; --open ouvre la vue d’ensemble')
  .option('--open', `ouvrir ${MAIN_DOC} avec l’application par défaut du bureau (xdg-open, open, start)`)
  .option('--json', 'écrire l’index en JSON')

async function main(options: { open?: boolean; json?: boolean }): Promise<number> {
  const environment = resolveEnvironment()
  const root = environment.projectRoot
  const docs = docIndex(root)
  if (options.json) {
    process.stdout.write(`${JSON.stringify(docs, null, 2)}\n`)
  } else {
    const width = Math.max(...docs.map((doc) => doc.path.length))
    process.stdout.write('Documentation:\n')
    for (const doc of docs) process.stdout.write(`  ${doc.path.padEnd(width)}  ${doc.exists ? doc.title : '(manquant)'}\n`)
  }
  if (!options.open) return 0
  const result = await openDocument(join(root, MAIN_DOC), { env: environment.display })
  const message = result.opened ? `${MAIN_DOC} ouvert (${result.command}).` : `Non ouvert : ${result.reason}. Lisez ${join(root, MAIN_DOC)}`
  process.stderr.write(`${message}\n`)
  return 0
}

runCommand(program, main)
