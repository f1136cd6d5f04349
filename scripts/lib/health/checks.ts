/**
 * The health checks that need an open database. Each resolves to a one-line detail when it passes
 * and throws a ToolkitError (message + hint) when it does not; the suite times them and turns both
 * into CheckResults.
 *
 * Safety: the only writes are the marked temporary rows of `_marker.ts`. On SQLite and PostgreSQL
 * they live inside one transaction, so no other session ever sees them; on D1 (no interactive
 * transactions) they are separate statements, removed in any case, and a killed run's leftovers are
 * removed by a later run.
 */
import { engineLabel, engineNamed } from '../engines/index.ts'
import { ToolkitError, describeError } from '../errors.ts'
import { applyMigrations, migrationStatus, type MigrationStatus } from '../db/migrations.ts'
import type { DatabaseHandle, SqlConnection } from '../db/connection.ts'
import type { EngineName } from '../db/url.ts'
import { seedDemo } from '../seed/demo.ts'
import {
  MARKER_PREFIX, TEMPORARY_VALUES, countTemporaryRows, createTemporaryRows, isTemporaryId, removeLeftovers, removeTemporaryRows, type WriteClient,
} from './_marker.ts'

/** How an engine makes a group of writes atomic. */
export const TRANSACTIONS: Record<EngineName, 'interactive' | 'batch'> = {
  sqlite: 'interactive',
  postgres: 'interactive',
  // Prisma's D1 adapter runs $transaction as separate statements; only D1's batch() is atomic.
  d1: 'batch',
}

const INTERACTIVE_TRANSACTION = { maxWait: 10_000, timeout: 30_000 }

/**
 * The schema is up to date with prisma/<dialect>/migrations. Never migrates anything.
 * @example await checkMigrations(db) // '1 migration applied, none pending (newest: 20260121153000_init)'
 */
export async function checkMigrations(db: DatabaseHandle): Promise<string> {
  const status = await migrationStatus(db.sql)
  if (status.upToDate) {
    const newest = status.applied.at(-1)
    return `${plural(status.applied.length, 'migration appliquée', 'migrations appliquées')}, aucune en attente${newest === undefined ? '' : ` (dernière : ${newest})`}`
  }
  throw new ToolkitError(describeMigrationProblems(status), { hint: migrationHint(db) })
}

function describeMigrationProblems(status: MigrationStatus): string {
  const parts: string[] = []
  if (status.applied.length === 0) parts.push('aucune migration appliquée')
  const list = (names: string[], what: string) => {
    if (names.length > 0) parts.push(`${names.length} ${what} (${names.join(', ')})`)
  }
  list(status.pending, 'en attente')
  list(status.failed, 'en échec')
  list(status.modified, 'modifiée(s) depuis leur application')
  list(status.unknown, 'appliquée(s) mais absente(s) du dossier des migrations')
  return parts.join(' ; ')
}

function migrationHint(db: DatabaseHandle): string {
  const apply = `npm run db:migrate -- --database "${db.redactedUrl}"`
  const localState = engineNamed(db.engine).localState(db.location)
  return localState !== undefined
    ? `Appliquez les migrations du dépôt (${apply}), ou supprimez ${localState} pour que le prochain contrôle recrée ce ${engineLabel(db.engine)} local.`
    : `Appliquez les migrations du dépôt : ${apply} (le contrôle de santé ne migre jamais cette base).`
}

/** True when the database has no table at all (D1 keeps its own `_cf_*` tables). @example await hasNoSchema(db.sql) // true for a new local D1 */
export async function hasNoSchema(sql: SqlConnection): Promise<boolean> {
  return (await sql.listTables()).length === 0
}

/**
 * Gives an empty local D1 (Miniflare) the app's schema and demo data. Only for a local emulator:
 * the suite never calls it on SQLite, PostgreSQL or a remote D1.
 * @example await prepareLocalD1(db, () => new Date()) // 'the local D1 in … had no schema: applied 1 migration and the demo data (…)'
 */
export async function prepareLocalD1(db: DatabaseHandle, now: () => Date): Promise<string> {
  if (db.location.engine !== 'd1' || db.location.mode !== 'local') throw new Error('prepareLocalD1 is only for a local D1')
  const { applied } = await applyMigrations(db.sql, { now })
  const seeded = await seedDemo(db.prisma)
  return `le D1 local de ${db.location.persistDir} n’avait pas de schéma : ${plural(applied.length, 'migration appliquée', 'migrations appliquées')} et données de démo chargées (${seeded.plans} plans, ${seeded.tenants} cabinets, ${seeded.dossiers} dossiers)`
}

/** @example await readPlans(db) // '6 plans: business, cabinet, decouverte, entreprise, pro, solo' */
export async function readPlans(db: DatabaseHandle): Promise<string> {
  const plans = (await db.prisma.plan.findMany({ orderBy: { name: 'asc' } })).filter((plan) => !isTemporaryId(plan.id))
  if (plans.length === 0) {
    throw new ToolkitError('aucun plan : la table Plan est vide', {
      hint: `L’application a besoin de ses plans ; \`npm run db:seed -- --database "${db.redactedUrl}"\` charge ceux de démo (avec des cabinets de démo).`,
    })
  }
  const names = plans.map((plan) => plan.name)
  return `${plural(plans.length, 'plan')}: ${names.slice(0, 8).join(', ')}${names.length > 8 ? ', …' : ''}`
}

/**
 * Tenants with their plan and counts, dossiers with their client and tenant: the joins the app
 * makes, and a consistency check on what they return (a dossier's client belongs to its tenant).
 * @example await queryRelations(db) // '6 tenants with plan and counts (8 users), 9 dossiers with client and tenant'
 */
export async function queryRelations(db: DatabaseHandle): Promise<string> {
  const tenants = (
    await db.prisma.tenant.findMany({
      take: 50,
      orderBy: { id: 'asc' },
      include: { plan: true, _count: { select: { users: true, clients: true, dossiers: true } } },
    })
  ).filter((tenant) => !isTemporaryId(tenant.id))
  for (const tenant of tenants) {
    if (tenant.plan.id !== tenant.planId) throw new ToolkitError(`le cabinet ${tenant.id} revient avec le plan ${tenant.plan.id} au lieu de ${tenant.planId}`)
  }
  const dossiers = (
    await db.prisma.dossier.findMany({ take: 50, orderBy: { id: 'asc' }, include: { client: true, tenant: { include: { plan: true } } } })
  ).filter((dossier) => !isTemporaryId(dossier.id))
  for (const dossier of dossiers) {
    if (dossier.client.tenantId !== dossier.tenantId) {
      throw new ToolkitError(`le dossier ${dossier.id} appartient au cabinet ${dossier.tenantId} mais son client ${dossier.client.id} au cabinet ${dossier.client.tenantId}`, {
        hint: 'Un dossier et son client doivent appartenir au même cabinet : corrigez la ligne, elle fait fuir des données entre cabinets.',
      })
    }
  }
  const users = tenants.reduce((sum, tenant) => sum + tenant._count.users, 0)
  return `${plural(tenants.length, 'cabinet')} avec plan et compteurs (${plural(users, 'utilisateur')}), ${plural(dossiers.length, 'dossier')} avec client et cabinet`
}

/**
 * Writes a marked plan, tenant, user, client and dossier, reads them back through the relations,
 * deletes them (the tenant's cascade removes its children) and checks that nothing remains.
 * @example await writeReadDelete(db, { marker: newMarker(new Date()), now: () => new Date() })
 */
export async function writeReadDelete(db: DatabaseHandle, options: { marker: string; now: () => Date }): Promise<string> {
  const { marker } = options
  const notes: string[] = []
  const leftovers = await removeLeftovers(db.prisma, options.now())
  if (leftovers > 0) notes.push(`${plural(leftovers, 'ligne restée', 'lignes restées')} d’une exécution interrompue supprimée(s)`)
  const work = async (client: WriteClient) => {
    await createTemporaryRows(client, marker)
    await verifyReadBack(client, marker)
    await client.tenant.delete({ where: { id: marker } })
    await client.plan.delete({ where: { id: marker } })
    const remaining = await countTemporaryRows(client, [marker])
    if (remaining > 0) throw new ToolkitError(`${plural(remaining, 'ligne')} encore là après la suppression de leur cabinet : ON DELETE CASCADE ne les a pas supprimées`)
  }
  const interactive = TRANSACTIONS[db.engine] === 'interactive'
  await withCleanup(db, marker, async () => {
    if (interactive) await db.prisma.$transaction((tx) => work(tx), INTERACTIVE_TRANSACTION)
    else await work(db.prisma)
  })
  notes.unshift(
    interactive
      ? '5 lignes liées écrites, relues, supprimées, en une transaction'
      : '5 lignes liées écrites, relues, supprimées, en instructions séparées (D1 n’a pas de transactions interactives)',
  )
  return notes.join('; ')
}

async function verifyReadBack(client: WriteClient, marker: string): Promise<void> {
  const v = TEMPORARY_VALUES
  const dossier = await client.dossier.findUnique({ where: { id: marker }, include: { client: true, tenant: { include: { plan: true, users: true } } } })
  if (dossier === null) throw new ToolkitError('le dossier qui vient d’être écrit ne se relit pas')
  const plan = dossier.tenant.plan
  const features = plan.features as { healthCheck?: unknown; note?: unknown } | null
  const comparisons: [string, unknown, unknown][] = [
    ['Dossier.titre', dossier.titre, v.dossierTitre],
    ['Dossier.dateEcheance', dossier.dateEcheance?.toISOString(), v.dateEcheance.toISOString()],
    ['Dossier.statut', dossier.statut, 'EN_ATTENTE'],
    ['Client.lastName', dossier.client.lastName, v.clientLastName],
    ['Tenant.name', dossier.tenant.name, v.tenantName],
    ['Tenant.users', dossier.tenant.users.length, 1],
    ['Plan.priceMonthly', plan.priceMonthly.toString(), v.priceMonthly],
    ['Plan.maxStorageBytes', plan.maxStorageBytes, v.maxStorageBytes],
    ['Plan.features', JSON.stringify([features?.healthCheck, features?.note]), JSON.stringify([v.features.healthCheck, v.features.note])],
    ['Plan.active', plan.active, false],
  ]
  for (const [field, actual, expected] of comparisons) {
    if (actual !== expected) throw new ToolkitError(`relecture de ${field} : attendu ${String(expected)}, lu ${String(actual)}`)
  }
}

/**
 * A failed transaction leaves nothing behind. SQLite and PostgreSQL: a Prisma interactive transaction
 * writes a row, sees it, and aborts. D1: one atomic batch inserts a row and then the same key again.
 * @example await checkRollback(db, { marker: newMarker(new Date()) }) // 'an aborted transaction left nothing behind'
 */
export async function checkRollback(db: DatabaseHandle, options: { marker: string }): Promise<string> {
  const { marker } = options
  const interactive = TRANSACTIONS[db.engine] === 'interactive'
  await withCleanup(db, marker, async () => {
    if (interactive) {
      let seenInside = 0
      const abort = new Error('contrôle de santé : annulation voulue')
      try {
        await db.prisma.$transaction(async (tx) => {
          await tx.plan.create({
            data: { id: marker, name: marker, displayName: TEMPORARY_VALUES.planDisplayName, priceMonthly: '0', maxUsers: 0, maxDossiers: 0, maxStorageBytes: 0n, active: false },
          })
          seenInside = await tx.plan.count({ where: { id: marker } })
          throw abort
        }, INTERACTIVE_TRANSACTION)
      } catch (error) {
        if (error !== abort) throw error
      }
      if (seenInside !== 1) throw new ToolkitError('la ligne écrite dans la transaction n’y était pas visible')
    } else {
      const insert = `INSERT INTO "Plan" ("id", "name", "displayName", "priceMonthly", "maxUsers", "maxDossiers", "maxStorageBytes", "active") VALUES ('${marker}', '${marker}', 'Health check (temporary row, safe to delete)', 0, 0, 0, 0, 0);`
      let failure: unknown
      try {
        await db.sql.executeScript(`${insert}\n${insert}`)
      } catch (error) {
        failure = error
      }
      if (failure === undefined) throw new ToolkitError('un lot insérant deux fois la même clé n’a pas échoué')
      if (!/UNIQUE|constraint/i.test(describeError(failure))) throw new ToolkitError(`le lot d’annulation a échoué pour une autre raison : ${describeError(failure)}`)
    }
    const after = await db.prisma.plan.count({ where: { id: marker } })
    if (after !== 0) throw new ToolkitError('la ligne de la transaction annulée est toujours là')
  })
  return interactive
    ? 'une transaction annulée ne laisse rien derrière elle'
    : 'un lot atomique en échec sur sa deuxième instruction ne laisse rien (D1 n’a pas de transactions interactives : vérifié avec batch())'
}

/**
 * Runs `work`, then makes sure that no row of `marker` is left, whatever happened. Rows still there
 * after a successful `work` are a failure of the check (and are removed).
 */
async function withCleanup(db: DatabaseHandle, marker: string, work: () => Promise<void>): Promise<void> {
  let failure: unknown
  try {
    await work()
  } catch (error) {
    failure = error
  }
  let removed: number
  try {
    removed = await removeTemporaryRows(db.prisma, [marker])
  } catch (error) {
    throw new ToolkitError(
      `suppression impossible des lignes temporaires d’id ${marker} : ${describeError(error)}${failure === undefined ? '' : ` (après : ${describeError(failure)})`}`,
      { hint: `Supprimez les lignes dont l’id commence par ${MARKER_PREFIX} (Dossier, Client, User, Tenant, puis Plan) ; la prochaine exécution les supprime aussi après 10 minutes.`, cause: error },
    )
  }
  if (failure !== undefined) throw failure
  if (removed > 0) throw new ToolkitError(`${plural(removed, 'ligne temporaire', 'lignes temporaires')} encore là à la fin du contrôle (supprimée(s))`)
}

function plural(n: number, word: string, words = `${word}s`): string {
  return `${n} ${n === 1 ? word : words}`
}
