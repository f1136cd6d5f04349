/**
 * Run by `npm ci` (postinstall) and `npm test`: builds dist/advanced-backup.mjs, the backup tool that
 * cron and the npm scripts run under plain `node` (scripts/lib/dist.ts). Run it again after changing
 * the TypeScript: `npm run build`.
 */
import './lib/node-floor.ts'
import { join } from 'node:path'
import { Command, print, runCommand } from './lib/cli.ts'
import { PROJECT_ROOT } from './lib/environment.ts'
import { buildDist } from './lib/dist.ts'

runCommand<{ quiet?: boolean }>(new Command('build-dist').description('Construit dist/advanced-backup.mjs (l’outil de backup lancé par node, sans tsx)').option('--quiet', 'rien afficher en cas de succès'), async (options) => {
  const result = await buildDist({ root: PROJECT_ROOT, outDir: join(PROJECT_ROOT, 'dist') })
  // Said even with --quiet (npm ci): what runs slower without the C parts.
  if (result.withoutExtension !== undefined) console.error(`⚠ dist/ sans l’extension SQLite en C (${result.withoutExtension}) : les exports CSV, SQL et JSON et les empreintes de contenu seront calculés en JavaScript, deux à trois fois plus lentement. Installez un compilateur C (apt-get install gcc) puis npm run build.`)
  if (result.withoutLibdeflate !== undefined) console.error(`⚠ dist/ sans libdeflate (${result.withoutLibdeflate}) : les archives seront compressées par zlib, environ 30 % de CPU en plus. Installez gcc et libdeflate0 (apt-get install gcc libdeflate0) puis npm run build.`)
  print(result, () => `✓ dist/ construit : ${result.files.length} fichiers (dist/advanced-backup.mjs)\n`, { quiet: options.quiet })
})
