/**
 * Helpers of the tenant-restore tests: more cabinets with their own clients and dossiers beside the
 * demo data, and the content checksum of every cabinet at once.
 */
import type { DatabaseHandle } from '../../scripts/lib/db/connection.ts'
import { openDatabase } from '../../scripts/lib/db/open.ts'
import { resolveEnvironment } from '../../scripts/lib/environment.ts'
import { tenantChecksum } from '../../scripts/lib/tenant-restore/checksum.ts'

/** Gives `tenantId` `clients` clients with `dossiersPerClient` dossiers each (ids prefixed by the tenant's). */
export async function addTenantData(db: DatabaseHandle, tenantId: string, clients: number, dossiersPerClient: number): Promise<void> {
  const createdAt = new Date('2026-01-10T09:00:00.123Z')
  await db.prisma.client.createMany({
    data: Array.from({ length: clients }, (_, c) => ({ id: `${tenantId}-client-${c}`, tenantId, firstName: `Prénom ${c}`, lastName: `Nom ${c}`, email: `client${c}@${tenantId}.example.fr`, phone: c % 2 ? null : '+33 1 23 45 67 89', createdAt })),
  })
  await db.prisma.dossier.createMany({
    data: Array.from({ length: clients * dossiersPerClient }, (_, d) => ({
      id: `${tenantId}-dossier-${d}`,
      tenantId,
      clientId: `${tenantId}-client-${d % clients}`,
      numero: `${tenantId.toUpperCase()}-${String(d).padStart(4, '0')}`,
      titre: `Dossier ${d} « l'été » ; virgule, guillemet "x"`,
      description: d % 3 === 0 ? null : `Ligne 1\nLigne 2 ${d}`,
      statut: (['OUVERT', 'EN_COURS', 'EN_ATTENTE', 'CLOS'] as const)[d % 4],
      priorite: (['BASSE', 'NORMALE', 'HAUTE', 'URGENTE'] as const)[d % 4],
      dateEcheance: d % 2 ? null : new Date(Date.UTC(2026, 2, 1 + (d % 28), 12, 0, 0, 456)),
      createdAt,
      updatedAt: createdAt,
    })),
  })
}

/** The checksum of every tenant of the database, by id. */
export async function everyTenantChecksum(db: DatabaseHandle): Promise<Map<string, string>> {
  const ids = (await db.prisma.tenant.findMany({ select: { id: true }, orderBy: { id: 'asc' } })).map((t) => t.id)
  const sums = new Map<string, string>()
  for (const id of ids) sums.set(id, (await tenantChecksum({ db, tenantId: id })).checksum)
  return sums
}

/** everyTenantChecksum of the database at `url`, opened and closed for it (a database another process writes). */
export async function everyTenantChecksumAt(url: string): Promise<Map<string, string>> {
  const db = await openDatabase(url, { environment: resolveEnvironment({}) })
  try {
    return await everyTenantChecksum(db)
  } finally {
    await db.close()
  }
}
