import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ENGINES, openTestDatabase } from './helpers/databases.ts'
import { instrumentDatabase } from '../scripts/lib/metrics/instrumentation.ts'
import { toSqliteTimestamp } from '../scripts/lib/db/connection.ts'

const TENANTS = Array.from({ length: 10 }, (_, i) => `tenant-c${String(i + 1).padStart(2, '0')}`)

/** Ten cabinets, each with one client whose last name carries the tenant's id (so a statement's values show whose it is). */
async function addTenants(db: Awaited<ReturnType<typeof openTestDatabase>>) {
  const now = db.sql.dialect === 'sqlite' ? toSqliteTimestamp(new Date()) : new Date()
  await db.sql.insertRows('Tenant', ['id', 'name', 'slug', 'planId', 'updatedAt'], TENANTS.map((id) => [id, `Cabinet ${id}`, id, 'plan-solo', now]))
  await db.sql.insertRows('Client', ['id', 'tenantId', 'firstName', 'lastName'], TENANTS.map((id) => [`client-of-${id}`, id, 'Client', `Marker ${id}`]))
  await db.sql.insertRows(
    'Dossier',
    ['id', 'tenantId', 'clientId', 'numero', 'titre', 'updatedAt'],
    TENANTS.flatMap((id) => [1, 2].map((n) => [`dossier-${id}-${n}`, id, `client-of-${id}`, `N-${n}`, 'Dossier', now])),
  )
}

for (const engine of ENGINES) {
  describe(`dashboard instrumentation on ${engine}`, () => {
    test('50 concurrent operations over 10 tenants: every operation and every statement attributed to its tenant', async (t) => {
      const db = await openTestDatabase(t, engine)
      await addTenants(db)
      const metrics = instrumentDatabase(db)
      // Created first, awaited together later in shuffled order: a lazy Prisma query starts where it
      // is awaited, so anything captured at creation (an async context) would be lost here.
      const pending = Array.from({ length: 50 }, (_, i) => {
        const tenantId = TENANTS[i % TENANTS.length]!
        const query =
          i % 5 === 0 ? metrics.prisma.dossier.count({ where: { tenantId } })
          : i % 5 === 1 ? metrics.prisma.client.findMany({ where: { tenantId }, include: { dossiers: true } })
          : i % 5 === 2 ? metrics.prisma.dossier.findMany({ where: { AND: [{ tenantId }, { statut: 'OUVERT' }] }, orderBy: { id: 'asc' } })
          // Bound to the tenant: nothing in the arguments names it.
          : i % 5 === 3 ? metrics.forTenant(tenantId).client.findMany({ where: { lastName: `Marker ${tenantId}` } })
          : metrics.forTenant(tenantId).client.count({ where: { lastName: `Marker ${tenantId}` } })
        return { tenantId, query, bound: i % 5 >= 3 }
      })
      const order = pending.map((_, i) => i).sort((a, b) => ((a * 7919) % 50) - ((b * 7919) % 50))
      await Promise.all(order.map((i) => pending[i]!.query))
      const { operations, unattributedSql } = metrics.drain()

      assert.equal(operations.length, 50)
      const expected = new Map(pending.map((p) => [p.query, p]))
      let correct = 0
      for (const operation of operations) {
        const sql = operation.sql.map((s) => s.params).join(' ')
        const owner = TENANTS.filter((id) => sql.includes(`"${id}"`) || sql.includes(`Marker ${id}"`) || sql.includes(`client-of-${id}"`))
        assert.equal(owner.length, 1, `operation ${operation.id} (${operation.model}.${operation.action}) sent statements naming exactly one tenant: ${sql}`)
        if (operation.tenantId === owner[0]) correct++
        assert.ok(operation.sql.length >= 1, 'each operation has its own statements')
      }
      assert.equal(correct, 50, 'all 50 operations attributed to the right tenant')
      assert.equal(operations.filter((o) => o.tenantSource === 'bound').length, [...expected.values()].filter((p) => p.bound).length)
      assert.deepEqual(unattributedSql, [])
    })

    test('operation wall time and database time are recorded separately, with model, action and rows', async (t) => {
      const db = await openTestDatabase(t, engine)
      const metrics = instrumentDatabase(db)
      const [plans, , groups] = await Promise.all([
        metrics.prisma.plan.findMany(),
        metrics.prisma.dossier.count(),
        metrics.prisma.dossier.groupBy({ by: ['statut'], _count: { _all: true } }),
        metrics.prisma.client.count(),
      ])
      const { operations } = metrics.drain()
      assert.deepEqual(operations.map((o) => `${o.model}.${o.action}`).sort(), ['Client.count', 'Dossier.count', 'Dossier.groupBy', 'Plan.findMany'])
      for (const operation of operations) {
        assert.equal(operation.sql.length, 1)
        assert.ok(operation.dbDurationMs > 0, 'database time measured')
        assert.equal(operation.dbDurationMs, operation.sql[0]!.durationMs)
        assert.ok(operation.durationMs >= operation.dbDurationMs, `wall ${operation.durationMs} ≥ database ${operation.dbDurationMs}`)
      }
      assert.equal(operations.find((o) => o.action === 'findMany')!.rows, plans.length)
      assert.equal(operations.find((o) => o.action === 'groupBy')!.rows, groups.length)
      assert.equal(operations.find((o) => o.model === 'Dossier' && o.action === 'count')!.rows, 1)
    })

    test('a failed operation is recorded with its error, and drain() starts a new window', async (t) => {
      const db = await openTestDatabase(t, engine)
      const metrics = instrumentDatabase(db)
      await assert.rejects(metrics.prisma.client.findUniqueOrThrow({ where: { id: 'no-such-client' } }))
      const first = metrics.drain()
      assert.equal(first.operations.length, 1)
      assert.match(first.operations[0]!.error ?? '', /^P2025: .*No record was found for a query\.$/)
      assert.ok(first.endedAt >= first.startedAt)
      await metrics.prisma.plan.count()
      const second = metrics.drain()
      assert.deepEqual(second.operations.map((o) => o.action), ['count'])
      assert.equal(second.startedAt, first.endedAt)
    })
  })
}

test('on SQLite the measured client and the handle’s own client are one connection', async (t) => {
  const db = await openTestDatabase(t, 'sqlite', { seed: false })
  const metrics = instrumentDatabase(db)
  // A TEMP table exists only on the connection that created it.
  await metrics.prisma.$executeRawUnsafe('CREATE TEMP TABLE probe (x INTEGER)')
  await db.prisma.$executeRawUnsafe('INSERT INTO temp.probe (x) VALUES (42)')
  assert.deepEqual(await metrics.prisma.$queryRawUnsafe('SELECT x FROM temp.probe'), [{ x: 42 }])
  assert.equal(db.poolSize, 1)
})
