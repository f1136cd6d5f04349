/**
 * Sources for the PostgreSQL → SQLite migration tests: the app's schema with the demo data and the
 * edge values a conversion gets wrong first, and arbitrary schemas written in SQL.
 */
import { readdirSync } from 'node:fs'
import pg from 'pg'
import type { TestContext } from 'node:test'
import { Prisma } from '../../generated/postgres/client.ts'
import type { DatabaseHandle } from '../../scripts/lib/db/connection.ts'
import type { VerifiedTableSpec } from '../../scripts/lib/migration/verify.ts'
import { createPostgresDatabase, openTestDatabase } from './databases.ts'

type Cleanup = Pick<TestContext, 'after'>

/**
 * A table with a column of each kind whose canonical form is PostgreSQL's own text (the kinds the
 * SQLite extension also converts): text, int8, bool, bytea and the three date types; `create` is its
 * SQLite table.
 */
export function everyTextKindTable(name: string): { spec: VerifiedTableSpec; create: string } {
  const spec: VerifiedTableSpec = {
    name,
    columns: [
      { name: 's', kind: 'text', type: { kind: 'base', name: 'text' } },
      { name: 'i', kind: 'integer', type: { kind: 'base', name: 'int8' } },
      { name: 'b', kind: 'boolean', type: { kind: 'base', name: 'bool' } },
      { name: 'x', kind: 'bytes', type: { kind: 'base', name: 'bytea' } },
      { name: 'ts', kind: 'datetime', type: { kind: 'base', name: 'timestamp' } },
      { name: 'tz', kind: 'datetime', type: { kind: 'base', name: 'timestamptz' } },
      { name: 'd', kind: 'datetime', type: { kind: 'base', name: 'date' } },
    ],
  }
  return { spec, create: `CREATE TABLE "${name}" ("s" TEXT, "i" BIGINT, "b" BOOLEAN, "x" BLOB, "ts" DATETIME, "tz" DATETIME, "d" DATETIME)` }
}

/** The largest BIGINT, far beyond 2^53. */
export const MAX_BIGINT = 9_223_372_036_854_775_807n

/**
 * A migrated PostgreSQL app database with the demo data plus rows holding edge values: Decimals with
 * many digits, BigInts beyond 2^53, unicode and emoji, empty strings next to NULLs, nested JSON and
 * JSON null, dates with milliseconds at both ends of the calendar, text with tabs, newlines and backslashes.
 */
export async function appSourceWithEdgeValues(t: Cleanup): Promise<DatabaseHandle & { url: string }> {
  const db = await openTestDatabase(t, 'postgres')
  const prisma = db.prisma
  const plans = [
    { id: 'plan-edge-1', priceMonthly: '123456789012.345', maxStorageBytes: MAX_BIGINT, features: { a: [1, { b: null, c: 'é😀' }], ratio: 1.5, nested: { deep: { deeper: [true, false] } } }, active: false, createdAt: new Date('2026-01-21T15:30:00.123Z') },
    { id: 'plan-edge-2', priceMonthly: '0.000000000000000000000000000001', maxStorageBytes: 9_007_199_254_740_993n, features: Prisma.JsonNull, active: true, createdAt: new Date('1900-01-01T00:00:00.001Z') },
    { id: 'plan-edge-3', priceMonthly: '-99999999999999.9', maxStorageBytes: -MAX_BIGINT - 1n, features: Prisma.DbNull, active: true, createdAt: new Date('9999-12-31T23:59:59.999Z') },
    { id: 'plan-edge-4', priceMonthly: '9223372036854775807', maxStorageBytes: 0n, features: [], active: true, createdAt: new Date('2026-06-30T23:59:59.999Z') },
  ]
  for (const [i, plan] of plans.entries()) {
    await prisma.plan.create({ data: { ...plan, name: `edge-${i + 1}`, displayName: `Édition ${i + 1} — 😀 中文`, maxUsers: 2_147_483_647, maxDossiers: -2_147_483_648 } })
  }
  await prisma.tenant.create({ data: { id: 'tenant-edge', name: 'Cabinet Ünïcödé 😀 — 中文 « guillemets »', slug: 'edge', planId: 'plan-edge-1', createdAt: new Date('2026-01-21T15:30:00.999Z'), updatedAt: new Date('2026-01-21T15:30:01.001Z') } })
  await prisma.user.create({ data: { id: 'user-edge', email: 'ÉDGE@exemple.fr', name: '', role: 'ASSISTANT', tenantId: 'tenant-edge' } })
  await prisma.client.create({ data: { id: 'client-edge-empty', tenantId: 'tenant-edge', firstName: '', lastName: ' ', email: '', phone: null } })
  await prisma.client.create({ data: { id: 'client-edge-null', tenantId: 'tenant-edge', firstName: 'N', lastName: 'Null', email: null, phone: '' } })
  await prisma.dossier.create({
    data: {
      id: 'dossier-edge',
      tenantId: 'tenant-edge',
      clientId: 'client-edge-empty',
      numero: 'EDGE-1',
      titre: 'tab\there, newline\nthere, backslash \\ and \\N, "quotes", \'apostrophe\', NUL-free',
      description: 'ligne 1\r\nligne 2\n\n\tindentée — ✓ 😀 \b\f\v\u0001\u001f\u007f',
      statut: 'EN_ATTENTE',
      priorite: 'URGENTE',
      dateEcheance: new Date('2026-02-28T23:59:59.999Z'),
      createdAt: new Date('2000-02-29T12:00:00.000Z'),
      updatedAt: new Date('2000-02-29T12:00:00.001Z'),
    },
  })
  return db
}

/** A new PostgreSQL database holding what `sql` creates; dropped after the test. */
export async function schemaSource(t: Cleanup, sql: string): Promise<string> {
  const url = await createPostgresDatabase(t)
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
  return url
}

/** The names in a directory, sorted: what a failed run must not have left. */
export function filesIn(dir: string): string[] {
  return readdirSync(dir).sort()
}
