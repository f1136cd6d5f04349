/**
 * The spec's demo data set: 6 plans, 6 cabinets (tenants), "Cabinet Demo" with 3 clients and
 * 9 dossiers over the four statuts. Fixed ids make every run an upsert: seeding twice changes nothing.
 */
import type { AppPrismaClient } from '../db/connection.ts'

export const DEMO_TENANT_SLUG = 'cabinet-demo'

const plans = [
  { id: 'plan-decouverte', name: 'decouverte', displayName: 'Découverte', priceMonthly: '0', maxUsers: 1, maxDossiers: 20, maxStorageBytes: 500n * 2n ** 20n },
  { id: 'plan-solo', name: 'solo', displayName: 'Solo', priceMonthly: '29', maxUsers: 1, maxDossiers: 200, maxStorageBytes: 5n * 2n ** 30n },
  { id: 'plan-cabinet', name: 'cabinet', displayName: 'Cabinet', priceMonthly: '79', maxUsers: 5, maxDossiers: 1_000, maxStorageBytes: 20n * 2n ** 30n },
  { id: 'plan-pro', name: 'pro', displayName: 'Pro', priceMonthly: '149', maxUsers: 15, maxDossiers: 5_000, maxStorageBytes: 100n * 2n ** 30n },
  { id: 'plan-business', name: 'business', displayName: 'Business', priceMonthly: '349', maxUsers: 50, maxDossiers: 25_000, maxStorageBytes: 500n * 2n ** 30n },
  { id: 'plan-entreprise', name: 'entreprise', displayName: 'Entreprise', priceMonthly: '899.90', maxUsers: 500, maxDossiers: 1_000_000, maxStorageBytes: 5n * 2n ** 40n },
]

const tenants = [
  { id: 'tenant-demo', name: 'Cabinet Demo', slug: DEMO_TENANT_SLUG, planId: 'plan-pro' },
  { id: 'tenant-martin', name: 'Cabinet Martin & Associés', slug: 'cabinet-martin', planId: 'plan-business' },
  { id: 'tenant-dubois', name: 'SCP Dubois Avocats', slug: 'scp-dubois', planId: 'plan-cabinet' },
  { id: 'tenant-lefevre', name: 'Maître Lefèvre', slug: 'maitre-lefevre', planId: 'plan-solo' },
  { id: 'tenant-bernard', name: 'Bernard Conseil Juridique', slug: 'bernard-conseil', planId: 'plan-entreprise' },
  { id: 'tenant-moreau', name: 'Cabinet Moreau-Petit', slug: 'cabinet-moreau-petit', planId: 'plan-decouverte' },
]

const users = [
  { id: 'user-demo-admin', email: 'admin@cabinet-demo.fr', name: 'Claire Demo', role: 'ADMIN', tenantId: 'tenant-demo' },
  { id: 'user-demo-avocat', email: 'avocat@cabinet-demo.fr', name: 'Julien Roux', role: 'AVOCAT', tenantId: 'tenant-demo' },
  { id: 'user-demo-assistant', email: 'assistant@cabinet-demo.fr', name: 'Inès Garnier', role: 'ASSISTANT', tenantId: 'tenant-demo' },
  { id: 'user-martin-admin', email: 'admin@cabinet-martin.fr', name: 'Paul Martin', role: 'ADMIN', tenantId: 'tenant-martin' },
  { id: 'user-dubois-admin', email: 'admin@scp-dubois.fr', name: 'Hélène Dubois', role: 'ADMIN', tenantId: 'tenant-dubois' },
  { id: 'user-lefevre-admin', email: 'contact@maitre-lefevre.fr', name: 'Marc Lefèvre', role: 'ADMIN', tenantId: 'tenant-lefevre' },
  { id: 'user-bernard-admin', email: 'admin@bernard-conseil.fr', name: 'Sophie Bernard', role: 'ADMIN', tenantId: 'tenant-bernard' },
  { id: 'user-moreau-admin', email: 'admin@moreau-petit.fr', name: 'Luc Moreau', role: 'ADMIN', tenantId: 'tenant-moreau' },
] as const

const clients = [
  { id: 'client-demo-1', firstName: 'Jean', lastName: 'Dupont', email: 'jean.dupont@example.fr', phone: '+33 6 12 34 56 78' },
  { id: 'client-demo-2', firstName: 'Marie', lastName: 'Lambert', email: 'marie.lambert@example.fr', phone: '+33 6 98 76 54 32' },
  { id: 'client-demo-3', firstName: 'Société', lastName: 'Horizon SARL', email: 'juridique@horizon.example.fr', phone: null },
]

const dossiers = [
  { n: 1, clientId: 'client-demo-1', titre: 'Litige locatif - appartement Lyon 3e', statut: 'OUVERT', priorite: 'NORMALE', due: '2026-02-15' },
  { n: 2, clientId: 'client-demo-1', titre: 'Succession Dupont', statut: 'EN_COURS', priorite: 'HAUTE', due: '2026-03-01' },
  { n: 3, clientId: 'client-demo-1', titre: 'Contestation amende', statut: 'CLOS', priorite: 'BASSE', due: null },
  { n: 4, clientId: 'client-demo-2', titre: 'Divorce par consentement mutuel', statut: 'EN_COURS', priorite: 'HAUTE', due: '2026-02-10' },
  { n: 5, clientId: 'client-demo-2', titre: 'Licenciement abusif - prud’hommes', statut: 'EN_ATTENTE', priorite: 'URGENTE', due: '2026-01-30' },
  { n: 6, clientId: 'client-demo-2', titre: 'Garde des enfants', statut: 'OUVERT', priorite: 'NORMALE', due: '2026-04-12' },
  { n: 7, clientId: 'client-demo-3', titre: 'Recouvrement de créances', statut: 'EN_COURS', priorite: 'NORMALE', due: '2026-02-28' },
  { n: 8, clientId: 'client-demo-3', titre: 'Rédaction des statuts (augmentation de capital)', statut: 'EN_ATTENTE', priorite: 'BASSE', due: null },
  { n: 9, clientId: 'client-demo-3', titre: 'Contentieux fournisseur', statut: 'CLOS', priorite: 'HAUTE', due: '2025-12-20' },
] as const

export const DEMO_COUNTS = { plans: plans.length, tenants: tenants.length, users: users.length, clients: clients.length, dossiers: dossiers.length }

/**
 * Creates or refreshes the demo data; works on every engine (plain upserts, no interactive transaction).
 * @example await seedDemo(db.prisma) // { plans: 6, tenants: 6, users: 8, clients: 3, dossiers: 9 }
 */
export async function seedDemo(prisma: AppPrismaClient): Promise<typeof DEMO_COUNTS> {
  for (const { id, ...plan } of plans) {
    const data = { ...plan, features: { support: plan.maxUsers > 5 ? 'prioritaire' : 'standard', ocr: plan.name !== 'decouverte' } }
    await prisma.plan.upsert({ where: { id }, create: { id, ...data }, update: data })
  }
  for (const { id, ...tenant } of tenants) {
    await prisma.tenant.upsert({ where: { id }, create: { id, ...tenant }, update: tenant })
  }
  for (const { id, ...user } of users) {
    await prisma.user.upsert({ where: { id }, create: { id, ...user }, update: user })
  }
  for (const { id, ...client } of clients) {
    const data = { ...client, tenantId: 'tenant-demo' }
    await prisma.client.upsert({ where: { id }, create: { id, ...data }, update: data })
  }
  for (const { n, due, ...dossier } of dossiers) {
    const id = `dossier-demo-${n}`
    const data = {
      ...dossier,
      tenantId: 'tenant-demo',
      numero: `2026-${String(n).padStart(4, '0')}`,
      description: `Dossier de démonstration n°${n}.`,
      dateEcheance: due === null ? null : new Date(`${due}T12:00:00.000Z`),
    }
    await prisma.dossier.upsert({ where: { id }, create: { id, ...data }, update: data })
  }
  return DEMO_COUNTS
}
