import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { ENGINES, tempDir } from './helpers/databases.ts'
import { databaseUrl } from './helpers/health.ts'
import { runScriptAsync } from './helpers/cli.ts'
import { parseHealthReport } from '../scripts/lib/health/report.ts'

const SCRIPT = 'scripts/test-all-databases.ts'

/** The environment of a run: nothing from the developer's shell decides which databases are checked. */
function cleanEnv(env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { DATABASE_URL: '', POSTGRES_URL: '', D1_URL: '', D1_PERSIST_DIR: '', CLOUDFLARE_D1_TOKEN: '', DEBUG: '', FORCE_COLOR: '', ...env }
}

/** Replaces what changes from run to run (times, dates, versions, temp paths) and column padding. */
function normalise(text: string, replacements: [string, string][] = []): string {
  let result = text
  for (const [from, to] of replacements) result = result.replaceAll(from, to)
  return result
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, '<date>')
    .replace(/\b\d+(\.\d+)?(ms|s)\b/g, '<t>')
    .replace(/\bv?\d+\.\d+(\.\d+)?\b/g, '<v>')
    .replace(/(?<=\S) {2,}(?=\S)/g, ' ')
    .replace(/ +$/gm, '')
}

describe('test-all-databases', { concurrency: true }, () => {
  // The default report lives at the project's root; these runs name it in their own folder (--report),
  // so the suite never writes into the checkout.
  test('checks SQLite, PostgreSQL and a fresh local D1, prints the table and writes RESULTATS_TESTS_DATABASES.md where --report says', {
    skip: !(ENGINES.includes('postgres') && ENGINES.includes('d1')) && 'needs every engine',
  }, async (t) => {
    const dir = tempDir(t)
    const sqlite = await databaseUrl(t, 'sqlite')
    const postgres = await databaseUrl(t, 'postgres')
    const result = await runScriptAsync(SCRIPT, ['--report', 'RESULTATS_TESTS_DATABASES.md'], {
      cwd: dir,
      env: cleanEnv({ DATABASE_URL: sqlite, POSTGRES_URL: postgres, D1_PERSIST_DIR: join(dir, 'd1') }),
    })
    assert.equal(result.status, 0, result.stdout + result.stderr)
    assert.equal(result.stderr, '')
    const replacements: [string, string][] = [[postgres, '<postgres>'], [sqlite, '<sqlite>'], [dir, '<dir>']]
    assert.equal(normalise(result.stdout, replacements), `Santé des bases — <date>

contrôle SQLite PostgreSQL D1
connexion ✓ <t> ✓ <t> ✓ <t>
migrations ✓ <t> ✓ <t> ✓ <t>
lecture des plans ✓ <t> ✓ <t> ✓ <t>
requête avec relations ✓ <t> ✓ <t> ✓ <t>
écriture/lecture/suppression ✓ <t> ✓ <t> ✓ <t>
rollback ✓ <t> ✓ <t> ✓ <t>

✓ SQLite 6/6 OK
✓ PostgreSQL 6/6 OK
✓ D1 6/6 OK
    Note : le D1 local de <dir>/d1 n’avait pas de schéma : 1 migration appliquée et données de démo chargées (6 plans, 6 cabinets, 9 dossiers)

Rapport : RESULTATS_TESTS_DATABASES.md (RESULTATS_TESTS_DATABASES.json)
`)
    assert.deepEqual(readdirSync(dir).sort(), ['RESULTATS_TESTS_DATABASES.json', 'RESULTATS_TESTS_DATABASES.md', 'd1'])
    const report = parseHealthReport(JSON.parse(readFileSync(join(dir, 'RESULTATS_TESTS_DATABASES.json'), 'utf8')))
    assert.deepEqual(report.summary, { passed: 18, failed: 0, skipped: 0, ok: true })
    assert.deepEqual(report.engines.map((engine) => engine.source), ['DATABASE_URL', 'POSTGRES_URL', 'default'])
    assert.equal(normalise(readFileSync(join(dir, 'RESULTATS_TESTS_DATABASES.md'), 'utf8'), replacements), `# Résultats des tests des bases — IA Poste Manager

Écrit par \`npx tsx scripts/test-all-databases.ts\` ; les mêmes résultats en JSON sont dans le fichier \`.json\` à côté de celui-ci.

| | |
| --- | --- |
| Date | <date> |
| Durée | <t> |
| Résultat | ✓ aucun échec (18 réussi(s), 0 non lancé(s)) |
| Outil | ia-poste-manager-db-toolkit <v> |
| Node.js | <v> |
| Prisma | <v> |

## Résumé

- SQLite 6/6 OK
- PostgreSQL 6/6 OK
- D1 6/6 OK

## Moteurs

| Moteur | Base | Origine | Serveur | Résultat |
| --- | --- | --- | --- | --- |
| SQLite | \`<sqlite>\` | DATABASE_URL | SQLite <v> | ✓ 6/6 |
| PostgreSQL | \`<postgres>\` | POSTGRES_URL | PostgreSQL <v> | ✓ 6/6 |
| D1 | \`d1://local\` | default | workerd <v> (Miniflare <v>) | ✓ 6/6 |

## Résultats

| Contrôle | SQLite | PostgreSQL | D1 |
| --- | --- | --- | --- |
| connexion | ✓ <t> | ✓ <t> | ✓ <t> |
| migrations | ✓ <t> | ✓ <t> | ✓ <t> |
| lecture des plans | ✓ <t> | ✓ <t> | ✓ <t> |
| requête avec relations | ✓ <t> | ✓ <t> | ✓ <t> |
| écriture/lecture/suppression | ✓ <t> | ✓ <t> | ✓ <t> |
| rollback | ✓ <t> | ✓ <t> | ✓ <t> |

## Détails

### SQLite

- ✓ **connexion** (<t>) : SQLite <v>
- ✓ **migrations** (<t>) : 1 migration appliquée, aucune en attente (dernière : 20260121153000_init)
- ✓ **lecture des plans** (<t>) : 6 plans: business, cabinet, decouverte, entreprise, pro, solo
- ✓ **requête avec relations** (<t>) : 6 cabinets avec plan et compteurs (8 utilisateurs), 9 dossiers avec client et cabinet
- ✓ **écriture/lecture/suppression** (<t>) : 5 lignes liées écrites, relues, supprimées, en une transaction
- ✓ **rollback** (<t>) : une transaction annulée ne laisse rien derrière elle

### PostgreSQL

- ✓ **connexion** (<t>) : PostgreSQL <v>
- ✓ **migrations** (<t>) : 1 migration appliquée, aucune en attente (dernière : 20260121153000_init)
- ✓ **lecture des plans** (<t>) : 6 plans: business, cabinet, decouverte, entreprise, pro, solo
- ✓ **requête avec relations** (<t>) : 6 cabinets avec plan et compteurs (8 utilisateurs), 9 dossiers avec client et cabinet
- ✓ **écriture/lecture/suppression** (<t>) : 5 lignes liées écrites, relues, supprimées, en une transaction
- ✓ **rollback** (<t>) : une transaction annulée ne laisse rien derrière elle

### D1

- ✓ **connexion** (<t>) : workerd <v> (Miniflare <v>), état dans <dir>/d1
- ✓ **migrations** (<t>) : 1 migration appliquée, aucune en attente (dernière : 20260121153000_init)
- ✓ **lecture des plans** (<t>) : 6 plans: business, cabinet, decouverte, entreprise, pro, solo
- ✓ **requête avec relations** (<t>) : 6 cabinets avec plan et compteurs (8 utilisateurs), 9 dossiers avec client et cabinet
- ✓ **écriture/lecture/suppression** (<t>) : 5 lignes liées écrites, relues, supprimées, en instructions séparées (D1 n’a pas de transactions interactives)
- ✓ **rollback** (<t>) : un lot atomique en échec sur sa deuxième instruction ne laisse rien (D1 n’a pas de transactions interactives : vérifié avec batch())

Note : le D1 local de <dir>/d1 n’avait pas de schéma : 1 migration appliquée et données de démo chargées (6 plans, 6 cabinets, 9 dossiers).
`)
  })

  test('an unmigrated SQLite database fails with exit 1, says why and how to fix it', async (t) => {
    const dir = tempDir(t)
    const url = await databaseUrl(t, 'sqlite', { migrate: false })
    const result = await runScriptAsync(SCRIPT, ['--only', 'sqlite', '--no-report'], { cwd: dir, env: cleanEnv({ DATABASE_URL: url }) })
    assert.equal(result.status, 1, result.stdout + result.stderr)
    assert.equal(normalise(result.stdout, [[url, '<sqlite>']]), `Santé des bases — <date>

contrôle SQLite
connexion ✓ <t>
migrations ✗ <t>
lecture des plans ✗ <t>
requête avec relations ✗ <t>
écriture/lecture/suppression – non lancé
rollback – non lancé

✗ SQLite 1/6 ÉCHEC (migrations, lecture des plans, requête avec relations), 2 non lancé(s)
    migrations : aucune migration appliquée ; 1 en attente (20260121153000_init)
    Essayez : Appliquez les migrations du dépôt : npm run db:migrate -- --database "<sqlite>" (le contrôle de santé ne migre jamais cette base).
    lecture des plans : La table \`main.Plan\` n’existe pas dans la base. (P2021)
    requête avec relations : La table \`main.Tenant\` n’existe pas dans la base. (P2021)
    écriture/lecture/suppression, rollback : non lancé : le schéma n’est pas à jour (voir migrations), aucune ligne de test n’est écrite
`)
    assert.deepEqual(readdirSync(dir), [], '--no-report writes nothing')
  })

  test('PostgreSQL asked for (--postgres or POSTGRES_URL) but unreachable fails the run with exit 1, password masked; not configured, it is skipped and the run exits 0', { skip: !ENGINES.includes('postgres') }, async (t) => {
    const sqlite = await databaseUrl(t, 'sqlite')
    const down = 'postgresql://app:topsecret@127.0.0.1:1/app'
    const [byFlag, byEnv, unset] = await Promise.all([
      runScriptAsync(SCRIPT, ['--only', 'sqlite,postgres', '--no-report', '--postgres', down], { cwd: tempDir(t), env: cleanEnv({ DATABASE_URL: sqlite }) }),
      runScriptAsync(SCRIPT, ['--only', 'sqlite,postgres', '--no-report'], { cwd: tempDir(t), env: cleanEnv({ DATABASE_URL: sqlite, POSTGRES_URL: down }) }),
      runScriptAsync(SCRIPT, ['--only', 'sqlite,postgres', '--no-report'], { cwd: tempDir(t), env: cleanEnv({ DATABASE_URL: sqlite }) }),
    ])
    for (const [result, source] of [[byFlag, '--postgres'], [byEnv, 'POSTGRES_URL']] as const) {
      assert.equal(result.status, 1, result.stdout + result.stderr)
      const lines = normalise(result.stdout).split('\n')
      assert.equal(lines[2], 'contrôle SQLite PostgreSQL')
      assert.equal(lines[3], 'connexion ✓ <t> ✗ <t>')
      assert.ok(lines.includes('✓ SQLite 6/6 OK'), result.stdout)
      assert.ok(result.stdout.includes('\n    connexion : injoignable : PostgreSQL postgresql://app:****@127.0.0.1:1/app : connexion impossible : connect ECONNREFUSED 127.0.0.1:1\n'), result.stdout)
      assert.ok(result.stdout.includes(`\n    Essayez : Démarrez le serveur, ou retirez ${source} pour ne pas tester PostgreSQL.\n`), result.stdout)
      assert.doesNotMatch(result.stdout + result.stderr, /topsecret/)
    }
    assert.equal(unset.status, 0, unset.stdout + unset.stderr)
    assert.ok(unset.stdout.includes('\n– PostgreSQL non lancé : non configuré : POSTGRES_URL n’est pas défini\n'), unset.stdout)
  })

  test('--json prints the report object, and --only with D1 checks just that engine', { skip: !ENGINES.includes('d1') }, async (t) => {
    const dir = tempDir(t)
    const d1 = await databaseUrl(t, 'd1')
    const result = await runScriptAsync(SCRIPT, ['--only', 'd1', '--json', '--no-report', '--d1', d1], { cwd: dir, env: cleanEnv() })
    assert.equal(result.status, 0, result.stdout + result.stderr)
    const report = parseHealthReport(JSON.parse(result.stdout))
    assert.deepEqual(report.selected, ['d1'])
    assert.deepEqual(report.engines.map((engine) => [engine.engine, engine.source, engine.status, engine.notes]), [['d1', '--d1', 'passed', []]])
    assert.deepEqual(readdirSync(dir), [])
  })

  test('--show-report prints the last report; colours follow FORCE_COLOR and NO_COLOR wins; no report yet is exit 1', async (t) => {
    const dir = tempDir(t)
    const sqlite = await databaseUrl(t, 'sqlite')
    const env = cleanEnv({ DATABASE_URL: sqlite })
    const here = ['--report', 'RESULTATS_TESTS_DATABASES.md']
    const first = await runScriptAsync(SCRIPT, ['--only', 'sqlite', ...here], { cwd: dir, env })
    assert.equal(first.status, 0, first.stdout + first.stderr)
    assert.ok(existsSync(join(dir, 'RESULTATS_TESTS_DATABASES.json')))

    const [shown, json, coloured, noColor, missing] = await Promise.all([
      runScriptAsync(SCRIPT, ['--show-report', ...here], { cwd: dir, env }),
      runScriptAsync(SCRIPT, ['--show-report', '--json', ...here], { cwd: dir, env }),
      runScriptAsync(SCRIPT, ['--show-report', ...here], { cwd: dir, env: { ...env, NO_COLOR: '', FORCE_COLOR: '1' } }),
      runScriptAsync(SCRIPT, ['--show-report', ...here], { cwd: dir, env: { ...env, NO_COLOR: '1', FORCE_COLOR: '1' } }),
      runScriptAsync(SCRIPT, ['--show-report', '--report', 'elsewhere/report.md'], { cwd: dir, env }),
    ])
    assert.equal(shown.status, 0, shown.stderr)
    assert.equal(shown.stdout, first.stdout, 'the same table as the run, and where the report is')
    assert.match(shown.stdout, /\n✓ SQLite 6\/6 OK\n\nRapport : RESULTATS_TESTS_DATABASES\.md \(RESULTATS_TESTS_DATABASES\.json\)\n$/)
    assert.deepEqual(JSON.parse(json.stdout), JSON.parse(readFileSync(join(dir, 'RESULTATS_TESTS_DATABASES.json'), 'utf8')))
    assert.match(coloured.stdout, /\u001b\[32m✓ SQLite 6\/6 OK\u001b\[39m/)
    assert.doesNotMatch(noColor.stdout, /\u001b\[/)
    assert.equal(missing.status, 1)
    assert.equal(missing.stdout, '')
    assert.equal(
      missing.stderr,
      `Erreur : pas encore de rapport de tests : ${join(dir, 'elsewhere', 'report.json')} n’existe pas\nEssayez : Lancez d’abord les tests : npm run test:db (ou npx tsx scripts/test-all-databases.ts).\n`,
    )
  })

  test('a report that cannot be written is an error (exit 1) after the results are shown', async (t) => {
    const dir = tempDir(t)
    const sqlite = await databaseUrl(t, 'sqlite')
    const result = await runScriptAsync(SCRIPT, ['--only', 'sqlite', '--report', 'missing/health.md'], { cwd: dir, env: cleanEnv({ DATABASE_URL: sqlite }) })
    assert.equal(result.status, 1)
    assert.match(result.stdout, /\n✓ SQLite 6\/6 OK\n$/)
    assert.match(result.stderr, /^Erreur : écriture du rapport de tests .*\/missing\/health\.md impossible : .*ENOENT.*\nEssayez : Choisissez un emplacement inscriptible avec --report <chemin>, ou renoncez aux fichiers avec --no-report\.\n$/)
    assert.deepEqual(readdirSync(dir), [])
  })

  test('a command line it cannot understand exits 2 with Error: and Try:', async () => {
    const cases: [string[], string][] = [
      [['--only', 'mysql'], `Erreur : l’option --only <engines> refuse la valeur 'mysql' : sqlite, postgres ou d1 est attendu, reçu "mysql"`],
      [['--frobnicate'], `Erreur : option inconnue : --frobnicate`],
      [['--show-report', '--only', 'sqlite'], `Erreur : les options --show-report et --only <engines> s’excluent`],
      [['--postgres', 'file:./x.db'], `Erreur : l’option --postgres <url> refuse la valeur 'file:./x.db' : pas une URL PostgreSQL`],
    ]
    const results = await Promise.all(cases.map(([args]) => runScriptAsync(SCRIPT, args, { env: cleanEnv() })))
    results.forEach((result, i) => {
      assert.equal(result.status, 2, `${cases[i]![0].join(' ')}: ${result.stderr}`)
      assert.equal(result.stdout, '')
      assert.equal(result.stderr, `${cases[i]![1]}\nEssayez : npx tsx scripts/test-all-databases.ts --help\n`)
    })
  })
})
