import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ENGINES, defer, openTestDatabase } from './helpers/databases.ts'
import { tablesInDependencyOrder, type RowValue, type TableInfo } from '../scripts/lib/db/table-reader.ts'

async function collect(rows: AsyncIterable<RowValue[]>): Promise<RowValue[][]> {
  const all: RowValue[][] = []
  for await (const row of rows) all.push(row)
  return all
}

for (const engine of ENGINES) {
  describe(`table reader on ${engine}`, () => {
    test('discovers every table with columns, primary keys and foreign keys from the catalog', async (t) => {
      const db = await openTestDatabase(t, engine)
      const reader = await db.openTableReader()
      defer(t, () => reader.close())
      const tables = await reader.tables()
      assert.deepEqual(tables.map((table) => table.name), ['Client', 'Dossier', 'Plan', 'Tenant', 'User', '_prisma_migrations'])
      const dossier = tables.find((table) => table.name === 'Dossier')!
      assert.deepEqual(dossier.columns.map((c) => c.name), ['id', 'tenantId', 'clientId', 'numero', 'titre', 'description', 'statut', 'priorite', 'dateEcheance', 'createdAt', 'updatedAt'])
      assert.deepEqual(dossier.columns.filter((c) => c.primaryKeyPosition > 0).map((c) => c.name), ['id'])
      assert.deepEqual(dossier.columns.filter((c) => c.nullable).map((c) => c.name), ['description', 'dateEcheance'])
      assert.deepEqual(
        dossier.foreignKeys.map((fk) => [fk.columns, fk.referencedTable, fk.referencedColumns]).sort(),
        [[['clientId'], 'Client', ['id']], [['tenantId'], 'Tenant', ['id']]],
      )
      assert.deepEqual(tablesInDependencyOrder(tables).map((table) => table.name), ['Plan', 'Tenant', 'Client', 'Dossier', 'User', '_prisma_migrations'])
    })

    test('streams every row with exact values, in batches', async (t) => {
      const db = await openTestDatabase(t, engine)
      const big = 9_007_199_254_740_993n // 2^53 + 1: not representable as a JS number
      // Raw SQL: D1 itself (and so Prisma's D1 adapter) returns integers as JS numbers.
      await db.sql.query('UPDATE "Plan" SET "maxStorageBytes" = ? WHERE id = ?', [big, 'plan-solo'])
      const reader = await db.openTableReader()
      defer(t, () => reader.close())
      const plan = (await reader.tables()).find((table: TableInfo) => table.name === 'Plan')!
      const rows = await collect(reader.rows(plan, { batchSize: 4 }))
      assert.equal(rows.length, 6)
      assert.equal(await reader.count(plan), 6)
      const storage = plan.columns.findIndex((c) => c.name === 'maxStorageBytes')
      const solo = rows.find((row) => row[0] === 'plan-solo')!
      assert.equal(String(solo[storage]), big.toString())
    })
  })
}

test('a SQLite reader sees one snapshot while another connection writes', async (t) => {
  const db = await openTestDatabase(t, 'sqlite')
  await db.sql.query('PRAGMA journal_mode = WAL')
  const reader = await db.openTableReader()
  defer(t, () => reader.close())
  const client = (await reader.tables()).find((table) => table.name === 'Client')!
  await db.prisma.client.create({ data: { tenantId: 'tenant-demo', firstName: 'Late', lastName: 'Writer' } })
  assert.equal(await db.prisma.client.count(), 4)
  assert.equal(await reader.count(client), 3)
  assert.equal((await collect(reader.rows(client))).length, 3)
})

test('a PostgreSQL reader sees one snapshot while another connection writes', async (t) => {
  const db = await openTestDatabase(t, 'postgres')
  const reader = await db.openTableReader()
  defer(t, () => reader.close())
  const client = (await reader.tables()).find((table) => table.name === 'Client')!
  assert.equal(await reader.count(client), 3)
  await db.prisma.client.create({ data: { tenantId: 'tenant-demo', firstName: 'Late', lastName: 'Writer' } })
  assert.equal(await db.prisma.client.count(), 4)
  assert.equal((await collect(reader.rows(client))).length, 3)
})
