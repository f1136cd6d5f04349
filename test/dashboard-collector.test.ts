import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { defer, ENGINES, openTestDatabase, tempDir } from './helpers/databases.ts'
import { toSqliteTimestamp } from '../scripts/lib/db/connection.ts'
import { argsShape, collectorOf, instrument, readCollectorSink } from '../scripts/lib/metrics/collector.ts'

const TENANTS = Array.from({ length: 10 }, (_, i) => `tenant-k${String(i).padStart(2, '0')}`)

async function addTenants(db: Awaited<ReturnType<typeof openTestDatabase>>) {
  const now = db.sql.dialect === 'sqlite' ? toSqliteTimestamp(new Date()) : new Date()
  await db.sql.insertRows('Tenant', ['id', 'name', 'slug', 'planId', 'updatedAt'], TENANTS.map((id) => [id, `Cabinet ${id}`, id, 'plan-solo', now]))
  await db.sql.insertRows('Client', ['id', 'tenantId', 'firstName', 'lastName'], TENANTS.map((id) => [`client-of-${id}`, id, 'Client', `Secret ${id}`]))
}

const SHAPES = ['where tenantId', 'relation filter', 'create with tenant connect', 'nested create under tenant', 'OR of two relation filters'] as const

for (const engine of ENGINES) {
  describe(`app-side collector on ${engine}`, () => {
    test('50 concurrent operations over 10 tenants, relation filters and nested writes included: 100 % attributed, 0 wrong; fingerprints only', async (t) => {
      const db = await openTestDatabase(t, engine)
      await addTenants(db)
      const sink = join(tempDir(t), 'app.metrics.ndjson')
      const prisma = instrument(db.createQueryEventClient!(), { sink, flushIntervalMs: 60_000 })
      defer(t, () => collectorOf(prisma).close())
      const pending = Array.from({ length: 50 }, (_, i) => {
        const tenantId = TENANTS[Math.floor(i / 5)]!
        const shape = SHAPES[i % 5]!
        const run = (): Promise<unknown> => {
          switch (shape) {
            case 'where tenantId':
              return prisma.dossier.count({ where: { tenantId, statut: 'OUVERT' } })
            case 'relation filter':
              return prisma.dossier.findMany({ where: { client: { tenantId }, titre: { contains: 'Secret' } } })
            case 'create with tenant connect':
              return prisma.dossier.create({ data: { id: `d-${i}`, numero: `N-${i}`, titre: `Secret title ${i}`, tenant: { connect: { id: tenantId } }, client: { connect: { id: `client-of-${tenantId}` } } } })
            case 'nested create under tenant':
              return prisma.tenant.update({ where: { id: tenantId }, data: { clients: { create: { id: `c-${i}`, firstName: 'Secret', lastName: `Person ${i}` } } } })
            case 'OR of two relation filters':
              return prisma.client.findMany({ where: { OR: [{ tenantId }, { dossiers: { some: { tenantId } }, tenantId }] } })
          }
        }
        return run()
      })
      await Promise.all(pending)
      assert.equal(existsSync(sink), false, 'nothing is written on the hot path (the flush timer has not fired)')
      await collectorOf(prisma).flush()

      const window = await readCollectorSink(sink)
      const operations = window.fingerprints.filter((f) => f.kind === 'op')
      assert.equal(operations.reduce((n, f) => n + f.count, 0), 50)
      assert.equal(operations.length, 5, operations.map((f) => f.fingerprint).join('\n'))
      for (const fingerprint of operations) {
        assert.deepEqual([...fingerprint.tenants.keys()].sort(), TENANTS, `${fingerprint.fingerprint}: every tenant once, none unattributed`)
        for (const [, perTenant] of fingerprint.tenants) assert.equal(perTenant.count, 1)
      }
      const statements = window.fingerprints.filter((f) => f.kind === 'sql')
      assert.ok(statements.length >= 5)
      const text = readFileSync(sink, 'utf8')
      assert.doesNotMatch(text, /Secret|OUVERT|N-\d|d-\d|c-\d|client-of/, 'no literal value in the sink')
      assert.match(text, /"Dossier\.count \{where:\{tenantId:\?,statut:\?\}\}"/)
    })

    test('the sink is bounded: past maxBytes it rotates to .1; the reader reads both and the window filter', async (t) => {
      const db = await openTestDatabase(t, engine)
      const sink = join(tempDir(t), 'app.metrics.ndjson')
      let clock = 1_000
      const prisma = instrument(db.prisma, { sink, maxBytes: 4_096, flushIntervalMs: 60_000, now: () => clock })
      for (let i = 0; i < 200; i++) {
        clock = 1_000 + i
        await prisma.plan.count({ where: { active: true } })
        if (i % 20 === 19) await collectorOf(prisma).flush()
      }
      await collectorOf(prisma).close()
      assert.ok(statSync(sink).size <= 4_096 && statSync(`${sink}.1`).size <= 4_096)
      const window = await readCollectorSink(sink)
      const count = window.fingerprints.find((f) => f.fingerprint === 'Plan.count {where:{active:?}}')
      assert.ok(count !== undefined && count.count > 20 && count.count <= 200, String(count?.count))
      assert.equal(window.undefinedEvents, 0)
      const recent = await readCollectorSink(sink, { since: 1_000 + 190 })
      assert.equal(recent.fingerprints.find((f) => f.id === count!.id)?.count, 10)
    })
  })
}

describe('operation fingerprints', () => {
  test('values become ?, structure stays', () => {
    assert.equal(argsShape({ where: { tenantId: 'x', statut: { in: ['A', 'B'] } }, orderBy: { dateEcheance: 'asc' }, take: 20, select: { id: true } }), '{where:{tenantId:?,statut:{in:[?]}},orderBy:{dateEcheance:asc},take:?,select:{id:true}}')
  })
})
