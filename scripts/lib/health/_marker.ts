/**
 * The temporary rows of the write and rollback checks. Invariant: every row the health check writes
 * has an id starting with MARKER_PREFIX followed by the time its run started, and is deleted by the
 * run that wrote it; a run killed mid-check on D1 (no interactive transactions there) leaves rows
 * that a later run removes once they are LEFTOVER_AGE_MS old.
 */
import { randomBytes } from 'node:crypto'
import type { AppPrismaClient } from '../db/connection.ts'

export const MARKER_PREFIX = '__healthcheck__'

/** A run younger than this may still be working: its rows are left alone. */
export const LEFTOVER_AGE_MS = 10 * 60_000

/** The models the checks write, as a plain client or a transaction's client. */
export type WriteClient = Pick<AppPrismaClient, 'plan' | 'tenant' | 'user' | 'client' | 'dossier'>

/** `__healthcheck__<start time, base 36>_<random>`: unique, sortable, and its age can be read back. */
export function newMarker(now: Date): string {
  return `${MARKER_PREFIX}${now.getTime().toString(36)}_${randomBytes(4).toString('hex')}`
}

export function isTemporaryId(id: string): boolean {
  return id.startsWith(MARKER_PREFIX)
}

function markerTime(id: string): number | undefined {
  const match = /^__healthcheck__([0-9a-z]+)_/.exec(id)
  const time = match === null ? NaN : parseInt(match[1]!, 36)
  return Number.isFinite(time) ? time : undefined
}

/** What the write check stores: every kind of column of the model, non-ASCII text included. */
export const TEMPORARY_VALUES = {
  planDisplayName: 'Health check (temporary row, safe to delete)',
  priceMonthly: '12.34',
  maxStorageBytes: 5n * 2n ** 40n,
  features: { healthCheck: true, note: 'ligne temporaire — à supprimer' },
  tenantName: 'Health check (temporary row, safe to delete)',
  clientLastName: "O'Brien-Zoë",
  dossierTitre: 'Vérification de santé « test » ✓',
  dateEcheance: new Date('2026-06-30T08:00:00.123Z'),
} as const

/** Writes one plan, tenant, user, client and dossier, all with the marker as id, one statement each. */
export async function createTemporaryRows(client: WriteClient, marker: string): Promise<void> {
  const v = TEMPORARY_VALUES
  await client.plan.create({
    data: {
      id: marker, name: marker, displayName: v.planDisplayName, priceMonthly: v.priceMonthly, maxUsers: 1, maxDossiers: 1,
      maxStorageBytes: v.maxStorageBytes, features: v.features, active: false,
    },
  })
  await client.tenant.create({ data: { id: marker, name: v.tenantName, slug: marker, planId: marker } })
  await client.user.create({ data: { id: marker, email: `${marker}@healthcheck.invalid`, name: 'Health check', role: 'ASSISTANT', tenantId: marker } })
  await client.client.create({ data: { id: marker, tenantId: marker, firstName: 'Health', lastName: v.clientLastName } })
  await client.dossier.create({
    data: { id: marker, tenantId: marker, clientId: marker, numero: 'HC-0001', titre: v.dossierTitre, statut: 'EN_ATTENTE', priorite: 'URGENTE', dateEcheance: v.dateEcheance },
  })
}

/** How many rows carry one of these markers, over the five tables. */
export async function countTemporaryRows(client: WriteClient, markers: readonly string[]): Promise<number> {
  const where = { where: { id: { in: [...markers] } } }
  const counts = await Promise.all([
    client.dossier.count(where), client.client.count(where), client.user.count(where), client.tenant.count(where), client.plan.count(where),
  ])
  return counts.reduce((sum, n) => sum + n, 0)
}

/** Deletes the rows of these markers, children first; returns how many there were. */
export async function removeTemporaryRows(client: WriteClient, markers: readonly string[]): Promise<number> {
  if (markers.length === 0) return 0
  const where = { where: { id: { in: [...markers] } } }
  let removed = 0
  removed += (await client.dossier.deleteMany(where)).count
  removed += (await client.client.deleteMany(where)).count
  removed += (await client.user.deleteMany(where)).count
  removed += (await client.tenant.deleteMany(where)).count
  removed += (await client.plan.deleteMany(where)).count
  return removed
}

/**
 * Removes the rows of runs older than LEFTOVER_AGE_MS. Only Plan and Tenant are searched (small
 * tables): a marked user, client or dossier cannot exist without its marked tenant.
 */
export async function removeLeftovers(client: WriteClient, now: Date): Promise<number> {
  const search = { where: { id: { startsWith: MARKER_PREFIX } }, select: { id: true } }
  const found = [...(await client.plan.findMany(search)), ...(await client.tenant.findMany(search))].map((row) => row.id)
  const old = [...new Set(found)].filter((id) => {
    const time = isTemporaryId(id) ? markerTime(id) : undefined
    return time !== undefined && now.getTime() - time > LEFTOVER_AGE_MS
  })
  return removeTemporaryRows(client, old)
}
