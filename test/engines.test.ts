import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ENGINES, openTestDatabase } from './helpers/databases.ts'
import { DEMO_COUNTS } from '../scripts/lib/seed/demo.ts'
import { seedDemo } from '../scripts/lib/seed/demo.ts'
import { seedScale } from '../scripts/lib/seed/scale.ts'
import { migrationStatus } from '../scripts/lib/db/migrations.ts'

async function countAll(db: Awaited<ReturnType<typeof openTestDatabase>>) {
  const [plans, tenants, users, clients, dossiers] = await Promise.all([
    db.prisma.plan.count(), db.prisma.tenant.count(), db.prisma.user.count(), db.prisma.client.count(), db.prisma.dossier.count(),
  ])
  return { plans, tenants, users, clients, dossiers }
}

for (const engine of ENGINES) {
  describe(`engine ${engine}`, () => {
    test('migrations are recorded and up to date', async (t) => {
      const db = await openTestDatabase(t, engine, { seed: false })
      const status = await migrationStatus(db.sql)
      assert.deepEqual(status, { applied: ['20260121153000_init'], pending: [], modified: [], unknown: [], failed: [], upToDate: true })
    })

    test('the demo seed makes the spec data set, and seeding twice changes nothing', async (t) => {
      const db = await openTestDatabase(t, engine)
      assert.deepEqual(await countAll(db), DEMO_COUNTS)
      await seedDemo(db.prisma)
      assert.deepEqual(await countAll(db), DEMO_COUNTS)
      const demo = await db.prisma.tenant.findUniqueOrThrow({ where: { slug: 'cabinet-demo' }, include: { _count: { select: { clients: true, dossiers: true } } } })
      assert.equal(demo.name, 'Cabinet Demo')
      assert.deepEqual(demo._count, { clients: 3, dossiers: 9 })
      const byStatut = await db.prisma.dossier.groupBy({ by: ['statut'], _count: { _all: true } })
      assert.deepEqual(Object.fromEntries(byStatut.map((g) => [g.statut, g._count._all])), { OUVERT: 2, EN_COURS: 3, EN_ATTENTE: 2, CLOS: 2 })
    })

    test('create, read with relations, update and delete go through the Prisma client', async (t) => {
      const db = await openTestDatabase(t, engine)
      const tenant = await db.prisma.tenant.create({
        data: {
          name: 'Cabinet Test — Ünïcode', slug: `test-${engine}`, planId: 'plan-solo',
          clients: { create: { firstName: 'Zoé', lastName: "O'Brien" } },
        },
        include: { clients: true, plan: true },
      })
      assert.equal(tenant.plan.name, 'solo')
      assert.equal(tenant.plan.maxStorageBytes, 5n * 2n ** 30n)
      const dossier = await db.prisma.dossier.create({
        data: { tenantId: tenant.id, clientId: tenant.clients[0]!.id, numero: 'T-1', titre: 'Essai', dateEcheance: new Date('2026-06-30T08:00:00.123Z') },
      })
      const read = await db.prisma.dossier.findUniqueOrThrow({ where: { id: dossier.id }, include: { client: true, tenant: { include: { plan: true } } } })
      assert.equal(read.client.lastName, "O'Brien")
      assert.equal(read.tenant.plan.displayName, 'Solo')
      assert.equal(read.dateEcheance?.toISOString(), '2026-06-30T08:00:00.123Z')
      assert.equal(read.statut, 'OUVERT')
      const updated = await db.prisma.dossier.update({ where: { id: dossier.id }, data: { statut: 'CLOS' } })
      assert.equal(updated.statut, 'CLOS')
      assert.ok(updated.updatedAt >= dossier.updatedAt)
      await db.prisma.tenant.delete({ where: { id: tenant.id } })
      assert.equal(await db.prisma.dossier.count({ where: { tenantId: tenant.id } }), 0, 'cascade deletes the dossiers')
      assert.equal(await db.prisma.client.count({ where: { tenantId: tenant.id } }), 0, 'cascade deletes the clients')
    })

    test('a failing write leaves nothing behind (transaction rollback)', async (t) => {
      const db = await openTestDatabase(t, engine)
      const before = await db.prisma.client.count()
      if (engine === 'd1') {
        // D1 has no interactive transactions; a batch is its transaction.
        await assert.rejects(db.sql.executeScript(`INSERT INTO "Client" (id, "tenantId", "firstName", "lastName") VALUES ('rb-1', 'tenant-demo', 'A', 'B');
          INSERT INTO "Client" (id, "tenantId", "firstName", "lastName") VALUES ('rb-2', 'no-such-tenant', 'C', 'D');`))
      } else {
        await assert.rejects(
          db.prisma.$transaction(async (tx) => {
            await tx.client.create({ data: { id: 'rb-1', tenantId: 'tenant-demo', firstName: 'A', lastName: 'B' } })
            assert.equal(await tx.client.count(), before + 1)
            throw new Error('abort')
          }),
          /abort/,
        )
      }
      assert.equal(await db.prisma.client.count(), before)
      assert.equal(await db.prisma.client.findUnique({ where: { id: 'rb-1' } }), null)
    })

    test('the scale seed adds about N dossiers over skewed tenants, readable through Prisma', async (t) => {
      const db = await openTestDatabase(t, engine)
      const result = await seedScale(db.sql, { dossiers: 300, seed: 7, now: () => new Date('2026-01-21T15:30:00Z') })
      assert.equal(result.dossiers, 300)
      assert.equal(result.tenants, 10)
      assert.equal(await db.prisma.dossier.count(), 300 + DEMO_COUNTS.dossiers)
      const sizes = await db.prisma.dossier.groupBy({ by: ['tenantId'], _count: { _all: true }, where: { tenant: { slug: { startsWith: 'scale-' } } } })
      const counts = sizes.map((s) => s._count._all).sort((a, b) => b - a)
      assert.ok(counts[0]! > 3 * counts[counts.length - 1]!, `tenant sizes are skewed: ${counts}`)
      const sample = await db.prisma.dossier.findFirstOrThrow({ where: { tenant: { slug: 'scale-00001' } }, include: { client: true } })
      assert.equal(sample.client.tenantId, sample.tenantId, 'a dossier belongs to a client of its own tenant')
      assert.ok(sample.createdAt <= new Date('2026-01-21T15:30:00Z'))
      await assert.rejects(seedScale(db.sql, { dossiers: 10 }), /contient déjà un jeu de données de volume/)
    })
  })
}
