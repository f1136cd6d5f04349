/**
 * The spec's six performance tests, run through a (measured) Prisma Client: a connection round
 * trip, a count, tenants with their relations, a multi-filter dossier query, a groupBy, and five
 * counts in parallel. Each reports its result count and its wall time.
 */
import type { AppPrismaClient } from '../db/connection.ts'
import { describeError } from '../errors.ts'
import type { ProgressListener } from '../progress.ts'

export interface PerformanceTestResult {
  number: number
  /** The spec's label ("Count Plans"). */
  name: string
  status: 'passed' | 'failed' | 'skipped'
  /** What it returned, e.g. 6 plans; absent for the connection test. */
  count?: number
  /** The unit of `count`, as printed ("plans", "tenants", "groupes"…). */
  unit?: string
  durationMs: number
  /** Why it failed or was skipped. */
  reason?: string
}

export interface PerformanceTestOptions {
  /** The tenant of test 4 (id); unset skips it with `tenantReason`. */
  tenantId?: string
  tenantReason?: string
  /** False when the app's tables are missing: only the connection test can run. */
  tablesPresent: boolean
  onProgress?: ProgressListener
}

export interface PerformanceTest {
  number: number
  name: string
  /** Runs the test once; `tenantId` is only used by test 4. */
  run(prisma: AppPrismaClient, tenantId: string): Promise<{ count?: number; unit?: string }>
}

/** The six tests, in the spec's order; `runPerformanceTests` runs them all, the benchmark one by one. */
export const PERFORMANCE_TESTS: readonly PerformanceTest[] = [
  {
    number: 1,
    name: 'Connexion simple',
    async run(prisma) {
      await prisma.$queryRaw`SELECT 1`
      return {}
    },
  },
  { number: 2, name: 'Count Plans', run: async (prisma) => ({ count: await prisma.plan.count(), unit: 'plans' }) },
  {
    number: 3,
    name: 'FindMany Tenants (avec relations)',
    async run(prisma) {
      const tenants = await prisma.tenant.findMany({
        // The newest cabinets (ids are time-ordered): a page of the admin's list. Prisma applies the
        // nested `take` after loading every client of the page's tenants, so a page of the biggest
        // firms would load their whole client base.
        take: 20,
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        include: { plan: true, users: true, clients: { take: 10, orderBy: { id: 'asc' } } },
      })
      return { count: tenants.length, unit: 'tenants' }
    },
  },
  {
    number: 4,
    name: 'Requête complexe Dossiers',
    async run(prisma, tenantId) {
      const dossiers = await prisma.dossier.findMany({
        where: {
          tenantId,
          statut: { in: ['OUVERT', 'EN_COURS', 'EN_ATTENTE'] },
          priorite: { in: ['NORMALE', 'HAUTE', 'URGENTE'] },
        },
        include: { client: { select: { firstName: true, lastName: true } } },
        orderBy: [{ dateEcheance: 'asc' }, { id: 'asc' }],
        take: 100,
      })
      return { count: dossiers.length, unit: 'dossiers' }
    },
  },
  {
    number: 5,
    name: 'Agrégations',
    async run(prisma) {
      const groups = await prisma.dossier.groupBy({ by: ['statut'], _count: { _all: true } })
      return { count: groups.length, unit: 'groupes' }
    },
  },
  {
    number: 6,
    name: 'Requêtes parallèles',
    async run(prisma) {
      const counts = await Promise.all([prisma.plan.count(), prisma.tenant.count(), prisma.user.count(), prisma.client.count(), prisma.dossier.count()])
      return { count: counts.length, unit: 'requêtes parallèles' }
    },
  },
]

const NO_TABLES = "la base n'a pas les tables d'IA Poste Manager (appliquer les migrations: npm run db:migrate)"

/**
 * @example const results = await runPerformanceTests(metrics.prisma, { tenantId: 'tenant-demo', tablesPresent: true })
 */
export async function runPerformanceTests(prisma: AppPrismaClient, options: PerformanceTestOptions): Promise<PerformanceTestResult[]> {
  const results: PerformanceTestResult[] = []
  for (const [index, { number, name, run }] of PERFORMANCE_TESTS.entries()) {
    options.onProgress?.({ label: 'tests', done: index, total: PERFORMANCE_TESTS.length, unit: 'steps' })
    const skip = number > 1 && !options.tablesPresent ? NO_TABLES : number === 4 && options.tenantId === undefined ? (options.tenantReason ?? 'aucun tenant') : undefined
    if (skip !== undefined) {
      results.push({ number, name, status: 'skipped', durationMs: 0, reason: skip })
      continue
    }
    const started = performance.now()
    try {
      const outcome = await run(prisma, options.tenantId ?? '')
      results.push({ number, name, status: 'passed', ...outcome, durationMs: performance.now() - started })
    } catch (error) {
      results.push({ number, name, status: 'failed', durationMs: performance.now() - started, reason: describeError(error) })
    }
  }
  options.onProgress?.({ label: 'tests', done: PERFORMANCE_TESTS.length, total: PERFORMANCE_TESTS.length, unit: 'steps' })
  return results
}
