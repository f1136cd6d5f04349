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
          passed('migrations', 1.2, '1 migration applied, none pending (newest: 20260121153000_init)'),
          passed('read-plans', 8, '6 plans: business, cabinet, decouverte, entreprise, pro, solo'),
          passed('relation-query', 45.6, '6 tenants with plan and counts (8 users), 9 dossiers with client and tenant'),
          passed('write-read-delete', 20, 'wrote 5 related rows, read them back, deleted them, in one transaction'),
          passed('rollback', 3.4, 'an aborted transaction left nothing behind'),
        ],
      },
      {
        engine: 'postgres', label: 'PostgreSQL', target: 'postgresql://app:****@db:5432/app', source: 'POSTGRES_URL', serverVersion: 'PostgreSQL 15.14', status: 'failed', notes: [],
        checks: [
          { engine: 'postgres', check: 'connect', status: 'passed', ms: 25, detail: 'PostgreSQL 15.14' },
          {
            engine: 'postgres', check: 'migrations', status: 'failed', ms: 2, error: 'no migration applied; 1 pending (20260121153000_init)',
            hint: 'Apply the committed migrations: npm run db:migrate -- --database "postgresql://app:****@db:5432/app" (the health check never migrates this database).',
          },
          { engine: 'postgres', check: 'read-plans', status: 'failed', ms: 3, error: 'The table `public.Plan` does not exist in the current database. (P2021)' },
          { engine: 'postgres', check: 'relation-query', status: 'failed', ms: 2.5, error: 'The table `public.Tenant` | does not exist' },
          ...skippedChecks('postgres', 'not run: the schema is not up to date (see migrations), so no test rows are written', ['write-read-delete', 'rollback']),
        ],
      },
      {
        engine: 'd1', label: 'D1', status: 'skipped', notes: [],
        reason: 'remote D1 d1://acc/db (D1_URL) needs an API token: CLOUDFLARE_D1_TOKEN is not set',
        hint: 'Set CLOUDFLARE_D1_TOKEN, or check the local D1 with --d1 d1://local.',
        checks: skippedChecks('d1', 'remote D1 d1://acc/db (D1_URL) needs an API token: CLOUDFLARE_D1_TOKEN is not set'),
      },
    ],
    summary: { passed: 7, failed: 3, skipped: 8, ok: false },
  }
}

test('the Markdown report: date, versions, summary lines, an engine table and a check × engine table', () => {
  assert.equal(renderHealthMarkdown(sampleReport()), `# Database test results — IA Poste Manager

Written by \`npx tsx scripts/test-all-databases.ts\`; the same results as JSON are in the \`.json\` file beside this one.

| | |
| --- | --- |
| Date | 2026-01-21T15:30:00.000Z |
| Duration | 1.2s |
| Result | ✗ 3 failed (7 passed, 8 skipped) |
| Toolkit | ia-poste-manager-db-toolkit 2.0.0 |
| Node.js | v20.20.2 |
| Prisma | 6.19.3 |

## Summary

- SQLite 6/6 OK
- PostgreSQL 1/6 FAILED (migrations, read plans, relation query), 2 skipped
- D1 skipped: remote D1 d1://acc/db (D1_URL) needs an API token: CLOUDFLARE_D1_TOKEN is not set

## Engines

| Engine | Database | From | Server | Result |
| --- | --- | --- | --- | --- |
| SQLite | \`file:./prisma/dev.db\` | default | SQLite 3.50.2 | ✓ 6/6 |
| PostgreSQL | \`postgresql://app:****@db:5432/app\` | POSTGRES_URL | PostgreSQL 15.14 | ✗ 1/6 |
| D1 | — | — | — | skipped |

## Results

| Check | SQLite | PostgreSQL | D1 |
| --- | --- | --- | --- |
| connect | ✓ 12ms | ✓ 25ms | skipped |
| migrations | ✓ 1ms | ✗ 2ms | skipped |
| read plans | ✓ 8ms | ✗ 3ms | skipped |
| relation query | ✓ 46ms | ✗ 3ms | skipped |
| write/read/delete | ✓ 20ms | skipped | skipped |
| rollback | ✓ 3ms | skipped | skipped |

## Details

### SQLite

- ✓ **connect** (12ms): SQLite 3.50.2
- ✓ **migrations** (1ms): 1 migration applied, none pending (newest: 20260121153000_init)
- ✓ **read plans** (8ms): 6 plans: business, cabinet, decouverte, entreprise, pro, solo
- ✓ **relation query** (46ms): 6 tenants with plan and counts (8 users), 9 dossiers with client and tenant
- ✓ **write/read/delete** (20ms): wrote 5 related rows, read them back, deleted them, in one transaction
- ✓ **rollback** (3ms): an aborted transaction left nothing behind

### PostgreSQL

- ✓ **connect** (25ms): PostgreSQL 15.14
- ✗ **migrations** (2ms): no migration applied; 1 pending (20260121153000_init)  
  Try: Apply the committed migrations: npm run db:migrate -- --database "postgresql://app:****@db:5432/app" (the health check never migrates this database).
- ✗ **read plans** (3ms): The table \`public.Plan\` does not exist in the current database. (P2021)
- ✗ **relation query** (3ms): The table \`public.Tenant\` | does not exist
- – **write/read/delete**: not run: the schema is not up to date (see migrations), so no test rows are written
- – **rollback**: not run: the schema is not up to date (see migrations), so no test rows are written

### D1

Skipped: remote D1 d1://acc/db (D1_URL) needs an API token: CLOUDFLARE_D1_TOKEN is not set.

Try: Set CLOUDFLARE_D1_TOKEN, or check the local D1 with --d1 d1://local.
`)
})

test('the terminal table: checks × engines, one summary line per engine, failures with their hint, skips with their reason', () => {
  assert.equal(renderHealthText(sampleReport()), `Database health — 2026-01-21T15:30:00.000Z

check              SQLite   PostgreSQL   D1
connect            ✓ 12ms   ✓ 25ms       – skipped
migrations         ✓ 1ms    ✗ 2ms        – skipped
read plans         ✓ 8ms    ✗ 3ms        – skipped
relation query     ✓ 46ms   ✗ 3ms        – skipped
write/read/delete  ✓ 20ms   – skipped    – skipped
rollback           ✓ 3ms    – skipped    – skipped

✓ SQLite 6/6 OK
✗ PostgreSQL 1/6 FAILED (migrations, read plans, relation query), 2 skipped
    migrations: no migration applied; 1 pending (20260121153000_init)
    Try: Apply the committed migrations: npm run db:migrate -- --database "postgresql://app:****@db:5432/app" (the health check never migrates this database).
    read plans: The table \`public.Plan\` does not exist in the current database. (P2021)
    relation query: The table \`public.Tenant\` | does not exist
    skipped write/read/delete, rollback: not run: the schema is not up to date (see migrations), so no test rows are written
– D1 skipped: remote D1 d1://acc/db (D1_URL) needs an API token: CLOUDFLARE_D1_TOKEN is not set
    Try: Set CLOUDFLARE_D1_TOKEN, or check the local D1 with --d1 d1://local.
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
    assert.match(error.message, /^cannot write the test report .*missing\/report\.md: .*ENOENT/)
    assert.match(error.hint!, /--report <path>/)
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
  assert.equal(error.message, `no test report yet: ${join(dir, 'r.json')} does not exist`)
  assert.equal(error.hint, 'Run the tests first: npm run test:db (or npx tsx scripts/test-all-databases.ts).')

  writeFileSync(join(dir, 'r.json'), '{"format": ')
  assert.match(refusal().message, /r\.json is not a valid test report: .*JSON/)

  const cases: [(report: Record<string, any>) => void, string][] = [
    [(r) => (r.version = 2), 'version 2 was written by a newer toolkit (this one reads version 1)'],
    [(r) => (r.format = 'something-else'), 'format is "something-else", expected "ia-poste-manager/database-health-report"'],
    [(r) => (r.engines[1].checks[1].status = 'ok'), 'engines[1].checks[1].status must be one of passed, failed, skipped, got "ok"'],
    [(r) => delete r.summary.ok, 'summary.ok must be true or false'],
    [(r) => (r.engines[0].checks[0].ms = '12'), 'engines[0].checks[0].ms must be a number'],
    [(r) => (r.startedAt = 'yesterday'), 'startedAt is not a date'],
  ]
  for (const [spoil, expected] of cases) {
    const report = structuredClone(sampleReport()) as unknown as Record<string, any>
    spoil(report)
    writeFileSync(join(dir, 'r.json'), JSON.stringify(report))
    error = refusal()
    assert.equal(error.message, `${join(dir, 'r.json')} is not a valid test report: ${expected}`)
    assert.throws(() => parseHealthReport(report), { message: expected })
  }
})
