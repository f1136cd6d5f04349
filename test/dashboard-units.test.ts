import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { displaySql, fingerprintId, fingerprintSql, isReadStatement } from '../scripts/lib/db/fingerprint.ts'
import { percentile, summarizeDurations } from '../scripts/lib/statistics.ts'
import { tenantFromArgs } from '../scripts/lib/metrics/tenant.ts'
import { filteredColumns } from '../scripts/lib/engines/_index-sql.ts'
import { aggregateFingerprints, summarizeOperations } from '../scripts/lib/metrics/analysis.ts'
import type { OperationRecord } from '../scripts/lib/metrics/instrumentation.ts'
import { readPerformanceMetrics } from '../scripts/lib/metrics/performance-metrics.ts'
import { tempDir } from './helpers/databases.ts'
import { operationKind } from '../scripts/lib/metrics/operation-kind.ts'

describe('SQL fingerprints', () => {
  test('literals, placeholders and IN lists of any length share one fingerprint', () => {
    const a = fingerprintSql(`SELECT * FROM "Dossier" WHERE "tenantId" = 'tenant-a' AND "id" IN ($1, $2, $3) LIMIT 20 OFFSET 0`)
    const b = fingerprintSql(`SELECT * FROM "Dossier"   WHERE "tenantId" = 'l''autre'\n AND "id" IN ($1) LIMIT 5 OFFSET 10`)
    assert.equal(a, `SELECT * FROM "Dossier" WHERE "tenantId" = ? AND "id" IN (?) LIMIT ? OFFSET ?`)
    assert.equal(b, a)
    assert.equal(fingerprintId(a), fingerprintId(b))
    assert.match(fingerprintId(a), /^[0-9a-f]{12}$/)
  })

  test("Prisma's SQLite SQL keeps identifiers with digits and collapses multi-row VALUES", () => {
    assert.equal(
      fingerprintSql('SELECT `main`.`T2`.`col1`, -1.5e3 FROM `main`.`T2` WHERE `main`.`T2`.`x` >= ? -- note\nLIMIT ?'),
      'SELECT `main`.`T2`.`col1`, ? FROM `main`.`T2` WHERE `main`.`T2`.`x` >= ? LIMIT ?',
    )
    assert.equal(fingerprintSql(`INSERT INTO "Plan" ("a", "b") VALUES (?, ?), (?, ?), (?, ?)`), `INSERT INTO "Plan" ("a", "b") VALUES (?)`)
    assert.notEqual(fingerprintSql('SELECT * FROM "Plan" WHERE id = ?'), fingerprintSql('SELECT * FROM "Tenant" WHERE id = ?'))
  })

  test('the display form drops qualifiers, quotes, long column lists and always-true fillers', () => {
    const fingerprint = fingerprintSql(
      'SELECT `main`.`Dossier`.`id`, `main`.`Dossier`.`titre`, `main`.`Dossier`.`statut`, `main`.`Dossier`.`priorite` FROM `main`.`Dossier` WHERE (`main`.`Dossier`.`tenantId` = ? AND 1=1) LIMIT ? OFFSET ?',
    )
    assert.equal(displaySql(fingerprint), 'SELECT … FROM Dossier WHERE (tenantId = ?) LIMIT ? OFFSET ?')
    assert.equal(displaySql(fingerprintSql('SELECT COUNT(*) AS `_count$_all` FROM `main`.`Plan` WHERE 1=1')), 'SELECT COUNT(*) AS _count$_all FROM Plan')
    const long = displaySql(`SELECT a FROM t WHERE ${'x = ? AND '.repeat(20)}y = ?`, 40)
    assert.equal(long.length, 40)
    assert.ok(long.endsWith('…'))
    assert.equal(isReadStatement('SELECT 1'), true)
    assert.equal(isReadStatement('WITH a AS (SELECT 1) DELETE FROM t'), false)
    assert.equal(isReadStatement('UPDATE t SET a = 1'), false)
  })
})

describe('duration statistics', () => {
  test('nearest-rank percentiles, exact on known samples', () => {
    const samples = Array.from({ length: 100 }, (_, i) => i + 1)
    assert.equal(percentile(samples, 50), 50)
    assert.equal(percentile(samples, 95), 95)
    assert.equal(percentile(samples, 99), 99)
    assert.equal(percentile([7], 99), 7)
    assert.equal(percentile([], 50), 0)
    assert.deepEqual(summarizeDurations([4, 1, 3, 2, 100]), { count: 5, meanMs: 22, p50Ms: 3, p95Ms: 100, p99Ms: 100, maxMs: 100, totalMs: 110 })
  })

  test('per-fingerprint aggregation: count, mean, p50, p95, p99, max, total and identical repeats', () => {
    const operation = (id: number, sql: { sql: string; params: string; durationMs: number }[]): OperationRecord => ({
      id, model: 'Plan', action: 'findMany', tenantId: null, tenantSource: null, startedAt: id, durationMs: 10, dbDurationMs: 1, rows: 1,
      sql: sql.map((s) => ({ ...s, startedAt: id })),
    })
    const operations = [
      operation(1, [{ sql: 'SELECT * FROM "Plan" WHERE id = $1', params: '["a"]', durationMs: 2 }]),
      operation(2, [{ sql: 'SELECT * FROM "Plan" WHERE id = $1', params: '["a"]', durationMs: 4 }]),
      operation(3, [{ sql: 'SELECT * FROM "Plan" WHERE id = $1', params: '["b"]', durationMs: 6 }, { sql: 'SELECT 1', params: '[]', durationMs: 1 }]),
    ]
    const { stats, samples } = aggregateFingerprints(operations)
    assert.equal(stats.length, 2)
    const plan = stats[0]!
    assert.equal(plan.fingerprint, 'SELECT * FROM "Plan" WHERE id = ?')
    assert.deepEqual(
      { count: plan.count, meanMs: plan.meanMs, p50Ms: plan.p50Ms, p95Ms: plan.p95Ms, p99Ms: plan.p99Ms, maxMs: plan.maxMs, totalMs: plan.totalMs },
      { count: 3, meanMs: 4, p50Ms: 4, p95Ms: 6, p99Ms: 6, maxMs: 6, totalMs: 12 },
    )
    assert.deepEqual({ distinct: plan.distinctParams, repeated: plan.repeatedIdentical, read: plan.read, operations: plan.operations }, { distinct: 2, repeated: 1, read: true, operations: ['Plan.findMany'] })
    assert.deepEqual(samples.get(plan.id), { sql: 'SELECT * FROM "Plan" WHERE id = $1', params: '["b"]' }, 'the slowest execution is kept for EXPLAIN')
  })

  test('operations are classed fast / medium / slow by the configured thresholds', () => {
    const operations = [5, 49.9, 50, 100, 100.1, 250].map((durationMs, id): OperationRecord => ({
      id, model: 'Dossier', action: 'count', tenantId: null, tenantSource: null, startedAt: id, durationMs, dbDurationMs: durationMs / 2, rows: 1, sql: [],
    }))
    const summary = summarizeOperations(operations, { fastMs: 50, slowMs: 100 })
    assert.deepEqual([summary.fastQueries, summary.mediumQueries, summary.slowQueriesCount], [2, 2, 2])
    assert.deepEqual(summary.slowQueries.map((o) => o.durationMs), [250, 100.1])
    assert.equal(summary.topOperations.length, 5)
    assert.equal(summarizeOperations(operations, { fastMs: 10, slowMs: 20 }).slowQueriesCount, 5)
  })
})

describe('tenant attribution from arguments', () => {
  test('reads where.tenantId (plain, equals, single in, under AND), data.tenantId and the Tenant id', () => {
    assert.equal(tenantFromArgs('Dossier', { where: { tenantId: 't1', statut: 'CLOS' } }), 't1')
    assert.equal(tenantFromArgs('Dossier', { where: { tenantId: { equals: 't2' } } }), 't2')
    assert.equal(tenantFromArgs('Dossier', { where: { tenantId: { in: ['t3'] } } }), 't3')
    assert.equal(tenantFromArgs('Dossier', { where: { AND: [{ statut: 'CLOS' }, { tenantId: 't4' }] } }), 't4')
    assert.equal(tenantFromArgs('Client', { data: { tenantId: 't5', firstName: 'A' } }), 't5')
    assert.equal(tenantFromArgs('Client', { data: [{ tenantId: 't6' }, { tenantId: 't6' }] }), 't6')
    assert.equal(tenantFromArgs('Dossier', { where: { id: 'x' }, create: { tenantId: 't7' }, update: {} }), 't7')
    assert.equal(tenantFromArgs('Tenant', { where: { id: 't8' } }), 't8')
  })

  test('an ambiguous or absent tenant is not guessed', () => {
    assert.equal(tenantFromArgs('Dossier', { where: { tenantId: { in: ['a', 'b'] } } }), undefined)
    assert.equal(tenantFromArgs('Client', { data: [{ tenantId: 'a' }, { tenantId: 'b' }] }), undefined)
    assert.equal(tenantFromArgs('Plan', {}), undefined)
    assert.equal(tenantFromArgs(undefined, { strings: ['SELECT 1'] }), undefined)
  })
})

describe('filtered columns of a statement', () => {
  const columns = ['id', 'tenantId', 'clientId', 'statut', 'dateEcheance', 'titre']
  test("Prisma's qualified predicates, equality before range", () => {
    const sqlite = 'SELECT `main`.`Dossier`.`id` FROM `main`.`Dossier` WHERE (`main`.`Dossier`.`dateEcheance` >= ? AND `main`.`Dossier`.`clientId` IN (?,?)) ORDER BY `main`.`Dossier`.`titre` ASC'
    assert.deepEqual(filteredColumns(sqlite, 'Dossier', columns), [{ column: 'clientId', kind: 'equality' }, { column: 'dateEcheance', kind: 'range' }])
    const postgres = `SELECT "public"."Dossier"."id" FROM "public"."Dossier" WHERE "public"."Dossier"."statut" IN (CAST($1::text AS "public"."DossierStatut"))`
    assert.deepEqual(filteredColumns(postgres, 'Dossier', columns), [{ column: 'statut', kind: 'equality' }])
  })

  test('unqualified columns count only after WHERE of a single-table statement; SET and ORDER BY are not filters', () => {
    assert.deepEqual(filteredColumns('SELECT * FROM Dossier WHERE statut = ? ORDER BY titre', 'Dossier', columns), [{ column: 'statut', kind: 'equality' }])
    assert.deepEqual(filteredColumns('UPDATE Dossier SET titre = ? WHERE id = ?', 'Dossier', columns), [{ column: 'id', kind: 'equality' }])
    assert.deepEqual(filteredColumns('SELECT * FROM Dossier JOIN Client ON x = y WHERE statut = ?', 'Dossier', columns), [])
    assert.deepEqual(filteredColumns(`SELECT * FROM Dossier WHERE titre <> 'statut = 1'`, 'Dossier', columns), [])
  })
})

describe('performance-metrics.json', () => {
  test('reading a file that is not in the versioned shape fails with the path of the first mismatch', (t) => {
    const dir = tempDir(t)
    const broken = join(dir, 'broken.json')
    writeFileSync(broken, JSON.stringify({ version: 1, timestamp: 'yesterday' }))
    assert.throws(() => readPerformanceMetrics(broken), /broken\.json n’est pas un fichier performance-metrics valide : \$\.timestamp : date ISO attendue/)
    writeFileSync(broken, JSON.stringify({ version: 2 }))
    assert.throws(() => readPerformanceMetrics(broken), /\$\.version : attendu 1, reçu 2/)
    writeFileSync(broken, '{')
    assert.throws(() => readPerformanceMetrics(broken), /lecture de .*broken\.json impossible/)
  })
})

describe('operation kinds', () => {
  test("the spec's labels beside the Prisma action", () => {
    assert.deepEqual(
      ['findMany', 'count', 'groupBy', 'create', 'upsert', 'updateMany', 'deleteMany', '$queryRaw', '$executeRawUnsafe'].map(operationKind),
      ['READ', 'READ', 'READ', 'WRITE', 'WRITE', 'WRITE', 'DELETE', 'RAW', 'RAW'],
    )
  })
})
