import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from './helpers/databases.ts'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { parseHealthReport, readHealthReport, reportJsonPath, writeHealthReport } from '../scripts/lib/health/report.ts'
import { renderHealthMarkdown } from '../scripts/lib/health/markdown.ts'
import { renderHealthText } from '../scripts/lib/health/text.ts'
import { HEALTH_REPORT_FORMAT, skippedChecks, type CheckResult, type HealthReport } from '../scripts/lib/health/results.ts'

const passed = (check: CheckResult['check'], ms: number, detail: string): CheckResult => ({ engine: 'sqlite', check, status: 'passed', ms, detail })

/** A report with one engine of each outcome: passed, failed, skipped. */
function sampleReport(): HealthReport {
  return {
    format: HEALTH_REPORT_FORMAT,
    version: 1,
    startedAt: '2026-01-21T15:30:00.000Z',
    durationMs: 1234.5,
    versions: { tool: 'ia-poste-manager-db-toolkit 2.0.0', node: 'v20.20.2', prisma: '6.19.3' },
    selected: ['sqlite', 'postgres', 'd1'],
    readOnly: false,
    engines: [
      {
        engine: 'sqlite', label: 'SQLite', target: 'file:./prisma/dev.db', source: 'default', serverVersion: 'SQLite 3.50.2', status: 'passed', notes: [],
        checks: [
          passed('connect', 12.3, 'SQLite 3.50.2'),
          passed('migrations', 1.2, '1 migration appliquée, aucune en attente (dernière : 20260121153000_init)'),
          passed('read-plans', 8, '6 plans: business, cabinet, decouverte, entreprise, pro, solo'),
          passed('relation-query', 45.6, '6 cabinets avec plan et compteurs (8 utilisateurs), 9 dossiers avec client et cabinet'),
          passed('write-read-delete', 20, '5 lignes liées écrites, relues, supprimées, en une transaction'),
          passed('rollback', 3.4, 'une transaction annulée ne laisse rien derrière elle'),
        ],
      },
      {
        engine: 'postgres', label: 'PostgreSQL', target: 'postgresql://app:****@db:5432/app', source: 'POSTGRES_URL', serverVersion: 'PostgreSQL 15.14', status: 'failed', notes: [],
        checks: [
          { engine: 'postgres', check: 'connect', status: 'passed', ms: 25, detail: 'PostgreSQL 15.14' },
          {
            engine: 'postgres', check: 'migrations', status: 'failed', ms: 2, error: 'aucune migration appliquée ; 1 en attente (20260121153000_init)',
            hint: 'Appliquez les migrations du dépôt : npm run db:migrate -- --database "postgresql://app:****@db:5432/app" (le contrôle de santé ne migre jamais cette base).',
          },
          { engine: 'postgres', check: 'read-plans', status: 'failed', ms: 3, error: 'The table `public.Plan` does not exist in the current database. (P2021)' },
          { engine: 'postgres', check: 'relation-query', status: 'failed', ms: 2.5, error: 'The table `public.Tenant` | does not exist' },
          ...skippedChecks('postgres', 'non lancé : le schéma n’est pas à jour (voir migrations), aucune ligne de test n’est écrite', ['write-read-delete', 'rollback']),
        ],
      },
      {
        engine: 'd1', label: 'D1', status: 'skipped', notes: [],
        reason: 'D1 distant d1://acc/db (D1_URL) : jeton d’API requis : CLOUDFLARE_D1_TOKEN n’est pas défini',
        hint: 'Définissez CLOUDFLARE_D1_TOKEN, ou vérifiez le D1 local avec --d1 d1://local.',
        checks: skippedChecks('d1', 'D1 distant d1://acc/db (D1_URL) : jeton d’API requis : CLOUDFLARE_D1_TOKEN n’est pas défini'),
      },
    ],
    summary: { passed: 7, failed: 3, skipped: 8, ok: false },
  }
}

test('the Markdown report: date, versions, summary lines, an engine table and a check × engine table', () => {
  assert.equal(renderHealthMarkdown(sampleReport()), `# Résultats des tests des bases — IA Poste Manager

Écrit par \`npx tsx scripts/test-all-databases.ts\` ; les mêmes résultats en JSON sont dans le fichier \`.json\` à côté de celui-ci.

| | |
| --- | --- |
| Date | 2026-01-21T15:30:00.000Z |
| Durée | 1.2s |
| Résultat | ✗ 3 échec(s) (7 réussi(s), 8 non lancé(s)) |
| Outil | ia-poste-manager-db-toolkit 2.0.0 |
| Node.js | v20.20.2 |
| Prisma | 6.19.3 |

## Résumé

- SQLite 6/6 OK
- PostgreSQL 1/6 ÉCHEC (migrations, lecture des plans, requête avec relations), 2 non lancé(s)
- D1 non lancé : D1 distant d1://acc/db (D1_URL) : jeton d’API requis : CLOUDFLARE_D1_TOKEN n’est pas défini

## Moteurs

| Moteur | Base | Origine | Serveur | Résultat |
| --- | --- | --- | --- | --- |
| SQLite | \`file:./prisma/dev.db\` | default | SQLite 3.50.2 | ✓ 6/6 |
| PostgreSQL | \`postgresql://app:****@db:5432/app\` | POSTGRES_URL | PostgreSQL 15.14 | ✗ 1/6 |
| D1 | — | — | — | non lancé |

## Résultats

| Contrôle | SQLite | PostgreSQL | D1 |
| --- | --- | --- | --- |
| connexion | ✓ 12ms | ✓ 25ms | non lancé |
| migrations | ✓ 1ms | ✗ 2ms | non lancé |
| lecture des plans | ✓ 8ms | ✗ 3ms | non lancé |
| requête avec relations | ✓ 46ms | ✗ 3ms | non lancé |
| écriture/lecture/suppression | ✓ 20ms | non lancé | non lancé |
| rollback | ✓ 3ms | non lancé | non lancé |

## Détails

### SQLite

- ✓ **connexion** (12ms) : SQLite 3.50.2
- ✓ **migrations** (1ms) : 1 migration appliquée, aucune en attente (dernière : 20260121153000_init)
- ✓ **lecture des plans** (8ms) : 6 plans: business, cabinet, decouverte, entreprise, pro, solo
- ✓ **requête avec relations** (46ms) : 6 cabinets avec plan et compteurs (8 utilisateurs), 9 dossiers avec client et cabinet
- ✓ **écriture/lecture/suppression** (20ms) : 5 lignes liées écrites, relues, supprimées, en une transaction
- ✓ **rollback** (3ms) : une transaction annulée ne laisse rien derrière elle

### PostgreSQL

- ✓ **connexion** (25ms) : PostgreSQL 15.14
- ✗ **migrations** (2ms) : aucune migration appliquée ; 1 en attente (20260121153000_init)  
  Essayez : Appliquez les migrations du dépôt : npm run db:migrate -- --database "postgresql://app:****@db:5432/app" (le contrôle de santé ne migre jamais cette base).
- ✗ **lecture des plans** (3ms) : The table \`public.Plan\` does not exist in the current database. (P2021)
- ✗ **requête avec relations** (3ms) : The table \`public.Tenant\` | does not exist
- – **écriture/lecture/suppression** : non lancé : le schéma n’est pas à jour (voir migrations), aucune ligne de test n’est écrite
- – **rollback** : non lancé : le schéma n’est pas à jour (voir migrations), aucune ligne de test n’est écrite

### D1

Non lancé : D1 distant d1://acc/db (D1_URL) : jeton d’API requis : CLOUDFLARE_D1_TOKEN n’est pas défini.

Essayez : Définissez CLOUDFLARE_D1_TOKEN, ou vérifiez le D1 local avec --d1 d1://local.
`)
})

test('the terminal table: checks × engines, one summary line per engine, failures with their hint, skips with their reason', () => {
  assert.equal(renderHealthText(sampleReport()), `Santé des bases — 2026-01-21T15:30:00.000Z

contrôle                      SQLite   PostgreSQL    D1
connexion                     ✓ 12ms   ✓ 25ms        – non lancé
migrations                    ✓ 1ms    ✗ 2ms         – non lancé
lecture des plans             ✓ 8ms    ✗ 3ms         – non lancé
requête avec relations        ✓ 46ms   ✗ 3ms         – non lancé
écriture/lecture/suppression  ✓ 20ms   – non lancé   – non lancé
rollback                      ✓ 3ms    – non lancé   – non lancé

✓ SQLite 6/6 OK
✗ PostgreSQL 1/6 ÉCHEC (migrations, lecture des plans, requête avec relations), 2 non lancé(s)
    migrations : aucune migration appliquée ; 1 en attente (20260121153000_init)
    Essayez : Appliquez les migrations du dépôt : npm run db:migrate -- --database "postgresql://app:****@db:5432/app" (le contrôle de santé ne migre jamais cette base).
    lecture des plans : The table \`public.Plan\` does not exist in the current database. (P2021)
    requête avec relations : The table \`public.Tenant\` | does not exist
    écriture/lecture/suppression, rollback : non lancé : le schéma n’est pas à jour (voir migrations), aucune ligne de test n’est écrite
– D1 non lancé : D1 distant d1://acc/db (D1_URL) : jeton d’API requis : CLOUDFLARE_D1_TOKEN n’est pas défini
    Essayez : Définissez CLOUDFLARE_D1_TOKEN, ou vérifiez le D1 local avec --d1 d1://local.
`)
})

test('the report is written as Markdown plus a JSON twin, each replaced atomically, and reads back validated', (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'RESULTATS_TESTS_DATABASES.md')
  assert.equal(reportJsonPath(path), join(dir, 'RESULTATS_TESTS_DATABASES.json'))
  assert.equal(reportJsonPath(join(dir, 'health.txt')), join(dir, 'health.txt.json'))

  writeFileSync(path, 'an older report')
  writeFileSync(reportJsonPath(path), '{}')
  const oldInodes = [statSync(path).ino, statSync(reportJsonPath(path)).ino]
  const report = sampleReport()
  assert.deepEqual(writeHealthReport(report, path), { markdownPath: path, jsonPath: reportJsonPath(path) })
  assert.deepEqual(readdirSync(dir).sort(), ['RESULTATS_TESTS_DATABASES.json', 'RESULTATS_TESTS_DATABASES.md'], 'no temporary file is left')
  // A new file renamed over the old one (a reader holding the old file never sees a half-written one).
  assert.notDeepEqual([statSync(path).ino, statSync(reportJsonPath(path)).ino], oldInodes)
  assert.equal(readFileSync(path, 'utf8'), renderHealthMarkdown(report))
  assert.deepEqual(readHealthReport(path), report)
  assert.deepEqual(JSON.parse(readFileSync(reportJsonPath(path), 'utf8')), report)
})

test('a report that cannot be written fails with the path and a hint, and leaves nothing', (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'missing', 'report.md')
  assert.throws(() => writeHealthReport(sampleReport(), path), (error: unknown) => {
    assert.ok(error instanceof ToolkitError)
    assert.match(error.message, /^écriture du rapport de tests .*missing\/report\.md impossible : .*ENOENT/)
    assert.match(error.hint!, /--report <chemin>/)
    return true
  })
  assert.deepEqual(readdirSync(dir), [])
})

test('reading a missing, corrupt, newer or malformed report fails with a message naming the problem', (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'r.md')
  const refusal = (): ToolkitError => {
    try {
      readHealthReport(path)
    } catch (error) {
      assert.ok(error instanceof ToolkitError)
      return error
    }
    assert.fail('read')
  }
  let error = refusal()
  assert.equal(error.message, `pas encore de rapport de tests : ${join(dir, 'r.json')} n’existe pas`)
  assert.equal(error.hint, 'Lancez d’abord les tests : npm run test:db (ou npx tsx scripts/test-all-databases.ts).')

  writeFileSync(join(dir, 'r.json'), '{"format": ')
  assert.match(refusal().message, /r\.json n’est pas un rapport de tests valide : .*JSON/)

  const cases: [(report: Record<string, any>) => void, string][] = [
    [(r) => (r.version = 2), 'la version 2 vient d’un outil plus récent (celui-ci lit la version 1)'],
    [(r) => (r.format = 'something-else'), 'format "something-else", attendu "ia-poste-manager/database-health-report"'],
    [(r) => (r.engines[1].checks[1].status = 'ok'), 'engines[1].checks[1].status doit valoir passed, failed, skipped, reçu "ok"'],
    [(r) => delete r.summary.ok, 'summary.ok doit valoir true ou false'],
    [(r) => (r.engines[0].checks[0].ms = '12'), 'engines[0].checks[0].ms doit être un nombre'],
    [(r) => (r.startedAt = 'yesterday'), 'startedAt n’est pas une date'],
  ]
  for (const [spoil, expected] of cases) {
    const report = structuredClone(sampleReport()) as unknown as Record<string, any>
    spoil(report)
    writeFileSync(join(dir, 'r.json'), JSON.stringify(report))
    error = refusal()
    assert.equal(error.message, `${join(dir, 'r.json')} n’est pas un rapport de tests valide : ${expected}`)
    assert.throws(() => parseHealthReport(report), { message: expected })
  }
})
