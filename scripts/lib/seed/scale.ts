/**
 * A large, realistic data set for benchmarks: about N dossiers over many cabinets whose sizes follow
 * a Zipf law (a few big firms, a long tail of small ones), with French legal text of realistic length.
 * Deterministic for a given `seed`, inserted in batched driver transactions (not one Prisma call per row).
 */
import type { SqlConnection, SqlValue } from '../db/connection.ts'
import { ToolkitError } from '../errors.ts'

export interface ScaleSeedOptions {
  dossiers: number
  /** PRNG seed: the same seed gives the same data. */
  seed?: number
  now?: () => Date
  onProgress?: (progress: { table: string; rows: number; total: number }) => void
}

export interface ScaleSeedResult {
  tenants: number
  users: number
  clients: number
  dossiers: number
}

export const SCALE_TENANT_SLUG_PREFIX = 'scale-'
const BATCH_ROWS = 5_000
const PLAN_IDS = ['plan-solo', 'plan-cabinet', 'plan-pro', 'plan-business', 'plan-entreprise']
const STATUTS = ['OUVERT', 'EN_COURS', 'EN_ATTENTE', 'CLOS']
const STATUT_WEIGHTS = [0.2, 0.35, 0.1, 0.35]
const PRIORITES = ['BASSE', 'NORMALE', 'HAUTE', 'URGENTE']
const PRIORITE_WEIGHTS = [0.2, 0.55, 0.2, 0.05]
const FIRST_NAMES = ['Jean', 'Marie', 'Pierre', 'Sophie', 'Luc', 'Camille', 'Nicolas', 'Julie', 'Antoine', 'Léa', 'Thomas', 'Chloé', 'Hugo', 'Emma', 'Louis', 'Inès', 'Gabriel', 'Manon', 'Arthur', 'Zoé']
const LAST_NAMES = ['Martin', 'Bernard', 'Dubois', 'Thomas', 'Robert', 'Richard', 'Petit', 'Durand', 'Leroy', 'Moreau', 'Simon', 'Laurent', 'Lefèvre', 'Michel', 'Garcia', 'David', 'Bertrand', 'Roux', 'Vincent', 'Fournier', 'Morel', 'Girard', 'André', 'Mercier']
const MATTERS = ['Litige locatif', 'Succession', 'Divorce', 'Licenciement abusif', 'Recouvrement de créances', 'Bail commercial', 'Accident de la route', 'Contrat de travail', 'Vice caché', 'Droit de garde', 'Diffamation', 'Marché public', 'Cession de fonds de commerce', 'Permis de construire', 'Harcèlement moral', 'Contentieux fiscal']
const PLACES = ['Paris 11e', 'Lyon 3e', 'Marseille', 'Bordeaux', 'Lille', 'Nantes', 'Toulouse', 'Strasbourg', 'Rennes', 'Montpellier', 'Nice', 'Grenoble']
const SENTENCES = [
  'Le client conteste la décision rendue en première instance.',
  'Audience de mise en état fixée, conclusions à déposer avant la date butoir.',
  'Pièces justificatives reçues par courrier recommandé avec accusé de réception.',
  'Relance de la partie adverse restée sans réponse à ce jour.',
  'Une médiation a été proposée et acceptée par les deux parties.',
  'Le montant du préjudice est estimé sur la base du rapport d’expertise.',
  'Rendez-vous de suivi prévu avec le client pour valider la stratégie.',
  'Assignation signifiée par huissier, délai de comparution en cours.',
  'Demande d’aide juridictionnelle déposée auprès du bureau compétent.',
  'Le dossier nécessite une consultation complémentaire en droit social.',
  'Les honoraires ont été fixés par convention signée.',
  'Attente du jugement, délibéré annoncé sous six semaines.',
]

/**
 * Adds the scale data set to a database that holds the demo plans.
 * @example await seedScale(db.sql, { dossiers: 100_000, onProgress: console.log })
 */
export async function seedScale(sql: SqlConnection, options: ScaleSeedOptions): Promise<ScaleSeedResult> {
  const total = Math.floor(options.dossiers)
  if (!Number.isFinite(total) || total < 1) throw new ToolkitError(`--scale doit être un nombre positif de dossiers, reçu ${options.dossiers}`)
  const existing = await sql.query<{ n: number }>(`SELECT COUNT(*) AS n FROM "Tenant" WHERE slug LIKE ?`, [`${SCALE_TENANT_SLUG_PREFIX}%`])
  if (Number(existing[0]?.n ?? 0) > 0) {
    throw new ToolkitError('cette base contient déjà un jeu de données de volume', { hint: 'Chargez le jeu de volume dans une base neuve.' })
  }
  const plans = await sql.query(`SELECT id FROM "Plan" WHERE id IN (${PLAN_IDS.map(() => '?').join(', ')})`, PLAN_IDS)
  if (plans.length !== PLAN_IDS.length) throw new ToolkitError('les plans de démo manquent', { hint: 'Chargez d’abord les données de démo (npm run db:seed).' })

  const random = mulberry32(options.seed ?? 20260121)
  const now = (options.now ?? (() => new Date()))().getTime()
  const span = 3 * 365 * 86_400_000
  // Spreads creation dates over the last three years (about 1.4 ids per dossier in all).
  const ids = new TimeOrderedIds(now - span, span / (total * 1.4 + 1_000), random)
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!
  const weighted = (list: readonly string[], weights: readonly number[]) => {
    let r = random()
    for (let i = 0; i < list.length; i++) if ((r -= weights[i]!) < 0) return list[i]!
    return list[list.length - 1]!
  }
  const sizes = zipfSizes(total, Math.max(10, Math.round(total / 2_000)))
  const result: ScaleSeedResult = { tenants: sizes.length, users: 0, clients: 0, dossiers: 0 }

  // `parent` is flushed first, so no row is written before the row its foreign key points to.
  const writer = (table: string, columns: string[], expected: number, parent?: { flush(): Promise<void> }) => {
    let pending: SqlValue[][] = []
    let written = 0
    const flush = async () => {
      if (pending.length === 0) return
      await parent?.flush()
      await sql.insertRows(table, columns, pending)
      written += pending.length
      pending = []
      options.onProgress?.({ table, rows: written, total: expected })
    }
    return {
      add: async (row: SqlValue[]) => {
        pending.push(row)
        if (pending.length >= BATCH_ROWS) await flush()
      },
      flush,
    }
  }

  const tenantIds = sizes.map(() => ids.next())
  const tenantRows = writer('Tenant', ['id', 'name', 'slug', 'planId', 'createdAt', 'updatedAt'], sizes.length)
  for (const [i, size] of sizes.entries()) {
    const created = new Date(ids.lastTime)
    const plan = PLAN_IDS[Math.min(PLAN_IDS.length - 1, Math.floor(Math.log10(size + 1)))]!
    await tenantRows.add([tenantIds[i]!, `Cabinet ${pick(LAST_NAMES)} ${i + 1}`, `${SCALE_TENANT_SLUG_PREFIX}${String(i + 1).padStart(5, '0')}`, plan, created, created])
  }
  await tenantRows.flush()

  const userRows = writer('User', ['id', 'email', 'name', 'role', 'tenantId', 'createdAt'], Number.NaN)
  for (const [i, size] of sizes.entries()) {
    const count = 1 + Math.floor(Math.log2(size + 1))
    for (let u = 0; u < count; u++) {
      const name = `${pick(FIRST_NAMES)} ${pick(LAST_NAMES)}`
      await userRows.add([ids.next(), `user${u + 1}@scale-${i + 1}.example.fr`, name, u === 0 ? 'ADMIN' : random() < 0.7 ? 'AVOCAT' : 'ASSISTANT', tenantIds[i]!, new Date(ids.lastTime)])
      result.users++
    }
  }
  await userRows.flush()

  const clientRows = writer('Client', ['id', 'tenantId', 'firstName', 'lastName', 'email', 'phone', 'createdAt'], Math.ceil(total / 4) + sizes.length)
  const dossierRows = writer('Dossier', ['id', 'tenantId', 'clientId', 'numero', 'titre', 'description', 'statut', 'priorite', 'dateEcheance', 'createdAt', 'updatedAt'], total, clientRows)
  for (const [i, size] of sizes.entries()) {
    const clientIds: string[] = []
    for (let c = 0; c < Math.ceil(size / 4); c++) {
      const first = pick(FIRST_NAMES)
      const last = pick(LAST_NAMES)
      const id = ids.next()
      clientIds.push(id)
      const phone = random() < 0.8 ? `+33 6 ${String(Math.floor(random() * 1e8)).padStart(8, '0').replace(/(\d\d)(?=\d)/g, '$1 ')}` : null
      const email = random() < 0.9 ? `${first}.${last}${c}@example.fr`.toLowerCase().normalize('NFD').replace(/[\u0300-\u036f]/g, '') : null
      await clientRows.add([id, tenantIds[i]!, first, last, email, phone, new Date(ids.lastTime)])
      result.clients++
    }
    for (let d = 0; d < size; d++) {
      const created = ids.lastTime
      const updated = Math.min(now, created + Math.floor(random() * 90 * 86_400_000))
      const sentences = Math.floor(random() * 5)
      const description = sentences === 0 ? null : Array.from({ length: sentences }, () => pick(SENTENCES)).join(' ')
      const due = random() < 0.7 ? new Date(created + Math.floor((random() * 365 - 30) * 86_400_000)) : null
      await dossierRows.add([
        ids.next(), tenantIds[i]!, pick(clientIds), `${new Date(created).getUTCFullYear()}-${String(d + 1).padStart(6, '0')}`,
        `${pick(MATTERS)} - ${pick(LAST_NAMES)} (${pick(PLACES)})`, description,
        weighted(STATUTS, STATUT_WEIGHTS), weighted(PRIORITES, PRIORITE_WEIGHTS), due, new Date(created), new Date(updated),
      ])
      result.dossiers++
    }
  }
  await clientRows.flush()
  await dossierRows.flush()
  return result
}

/** Splits `total` over `tenants` by a Zipf law (exponent 1.1), every tenant getting at least one. */
function zipfSizes(total: number, tenants: number): number[] {
  const count = Math.min(tenants, total)
  const weights = Array.from({ length: count }, (_, i) => 1 / (i + 1) ** 1.1)
  const sum = weights.reduce((a, b) => a + b, 0)
  const sizes = weights.map((w) => Math.max(1, Math.floor((w / sum) * total)))
  let rest = total - sizes.reduce((a, b) => a + b, 0)
  for (let i = 0; rest !== 0; i = (i + 1) % count) {
    if (rest > 0) (sizes[i]!++, rest--)
    else if (sizes[i]! > 1) (sizes[i]!--, rest++)
  }
  return sizes
}

/** A small, fast, seedable PRNG (mulberry32): uniform floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

/**
 * UUIDv7-shaped ids on an advancing clock: realistic, and inserted in key order, so B-tree
 * inserts append instead of splitting pages at random.
 */
class TimeOrderedIds {
  lastTime: number
  constructor(
    start: number,
    private readonly meanStep: number,
    private readonly random: () => number,
  ) {
    this.lastTime = start
  }
  next(): string {
    this.lastTime += 1 + Math.floor(this.random() * 2 * this.meanStep)
    const time = this.lastTime.toString(16).padStart(12, '0')
    const hex = (digits: number) => Math.floor(this.random() * 16 ** digits).toString(16).padStart(digits, '0')
    const variant = (8 + Math.floor(this.random() * 4)).toString(16)
    return `${time.slice(0, 8)}-${time.slice(8)}-7${hex(3)}-${variant}${hex(3)}-${hex(6)}${hex(6)}`
  }
}
