/**
 * The performance dashboard: measures every query of its Prisma Client, runs the spec's six tests,
 * and turns each window of recorded queries into the metrics object of performance-metrics.json.
 *
 * @example
 * const dashboard = new DatabasePerformanceDashboard({ environment }) // DATABASE_URL, or the project's prisma/dev.db
 * setInterval(async () => {
 *   const metrics = await dashboard.analyzePerformance()
 *   if (metrics.slowQueriesCount > 10) console.warn("Trop de requêtes lentes détectées!")
 * }, 60_000)
 */
import type { AppPrismaClient, DatabaseHandle, SqlConnection } from '../db/connection.ts'
import { quoteIdentifier } from '../db/connection.ts'
import { openDatabase } from '../db/open.ts'
import type { ToolkitEnvironment } from '../environment.ts'
import { describeError } from '../errors.ts'
import type { ProgressListener } from '../progress.ts'
import { DEMO_TENANT_SLUG } from '../seed/demo.ts'
import { advise, type AdvisorOptions, type Recommendation } from './advisor.ts'
import { DEFAULT_THRESHOLDS, aggregateFingerprints, repeatedReads, summarizeOperations, tenantActivity, type Thresholds } from './analysis.ts'
import { engineNamed } from '../engines/index.ts'
import { type CacheStatistics, type ConnectionStatistics, type MetricsEngine, type TenantTable } from '../engines/metrics-engine.ts'
import { fingerprintId, fingerprintSql } from '../db/fingerprint.ts'
import { instrumentDatabase, type Instrumentation, type OperationRecord } from './instrumentation.ts'
import { PERFORMANCE_METRICS_VERSION, type PerformanceMetrics, type RawOperation, type TenantMetrics } from './performance-metrics.ts'
import { runPerformanceTests, type PerformanceTestResult } from './performance-tests.ts'
import { roundMs } from '../statistics.ts'

export interface DashboardOptions {
  /** A database URL, or an open handle (left open by close()). Default: the environment's DATABASE_URL. */
  database?: string | DatabaseHandle
  /** fast < fastMs ≤ medium ≤ slowMs < slow. Default 50 / 100 ms. */
  thresholds?: Partial<Thresholds>
  /** Tenant of test 4, by id or slug. Default: the demo cabinet when present, else the first tenant. */
  tenant?: string
  /** Run the six tests in each analysis (default true); false analyzes only what the client recorded. */
  runTests?: boolean
  advisor?: Partial<AdvisorOptions>
  /** Resolved once by the script (scripts/lib/environment.ts): the default database and where relative paths start. */
  environment: ToolkitEnvironment
  cwd?: string
  onProgress?: ProgressListener
  /** Epoch milliseconds. */
  now?: () => number
}

/** The app's tables; without them only the connection test and the engine counters can run. */
export const APP_TABLES = ['Plan', 'Tenant', 'User', 'Client', 'Dossier'] as const
const TENANT_OWNED: readonly { table: string; tenantColumn: string }[] = [
  { table: 'Tenant', tenantColumn: 'id' },
  { table: 'User', tenantColumn: 'tenantId' },
  { table: 'Client', tenantColumn: 'tenantId' },
  { table: 'Dossier', tenantColumn: 'tenantId' },
]
const RAW_METRICS_LIMIT = 5_000
// D1 binds at most 100 values per statement.
const IN_LIST_CHUNK = 50

interface Opened {
  db: DatabaseHandle
  instrumentation: Instrumentation
  engine: MetricsEngine
}

export class DatabasePerformanceDashboard {
  readonly thresholds: Thresholds
  private readonly options: DashboardOptions
  private readonly now: () => number
  private readonly startedAt: number
  private opened: Promise<Opened> | undefined

  constructor(options: DashboardOptions) {
    this.options = options
    this.now = options.now ?? (() => Date.now())
    this.startedAt = this.now()
    this.thresholds = { ...DEFAULT_THRESHOLDS, ...options.thresholds }
  }

  /** The measured Prisma Client: what the app does through it shows in the next analysis. */
  async client(): Promise<AppPrismaClient> {
    return (await this.open()).instrumentation.prisma
  }

  /** The measured client, its operations attributed to `tenantId` however they are awaited. */
  async forTenant(tenantId: string): Promise<AppPrismaClient> {
    return (await this.open()).instrumentation.forTenant(tenantId)
  }

  /**
   * Runs the six tests (unless `runTests: false`), then analyzes every operation recorded since the
   * previous call. Fails only when the database cannot be opened; what cannot be measured is
   * explained in `notes`, and failed tests in `tests`.
   */
  async analyzePerformance(): Promise<PerformanceMetrics> {
    const { db, instrumentation, engine } = await this.open()
    const progress = (done: number) => this.options.onProgress?.({ label: 'analyse', done, total: 6, unit: 'steps' })
    const notes: string[] = []
    const attempt = async <T>(what: string, work: () => Promise<T>, fallback: T): Promise<T> => {
      try {
        return await work()
      } catch (error) {
        notes.push(`${what}: ${describeError(error)}`)
        return fallback
      }
    }

    progress(0)
    const tables = await attempt('liste des tables', () => engine.listTables(db.sql), [] as string[])
    const missing = APP_TABLES.filter((t) => !tables.includes(t))
    const tablesPresent = missing.length === 0
    if (!tablesPresent) {
      notes.push(`tables absentes: ${missing.join(', ')}; seuls la connexion et les compteurs du moteur sont mesurés (appliquer les migrations: npm run db:migrate)`)
    }
    const testTenant = tablesPresent ? await attempt('tenant du test 4', () => this.resolveTestTenant(db.sql), { reason: 'tenant introuvable' }) : {}
    if (testTenant.reason !== undefined && tablesPresent) notes.push(`test 4 ignoré: ${testTenant.reason}`)

    let tests: PerformanceTestResult[] = []
    if (this.options.runTests ?? true) {
      tests = await runPerformanceTests(instrumentation.prisma, {
        tablesPresent,
        tenantId: testTenant.tenantId,
        tenantReason: testTenant.reason,
        onProgress: this.options.onProgress,
      })
      tests = tests.map((t) => ({ ...t, durationMs: roundMs(t.durationMs) }))
    }
    progress(1)

    const window = instrumentation.drain()
    const operations = window.operations
    const statistics = summarizeOperations(operations, this.thresholds)
    const { stats: fingerprints, samples } = aggregateFingerprints(operations, window.unattributedSql)
    progress(2)

    const tenantMetrics = tablesPresent ? await attempt('métriques par tenant', () => this.tenantMetrics(db.sql, engine, operations, tables), emptyTenants(operations)) : emptyTenants(operations)
    const storageMethod = tenantMetrics.method
    progress(3)

    const cache = await attempt<CacheStatistics>('statistiques de cache', () => engine.cacheStatistics(db.sql), { hitRate: null, source: 'n/a : les compteurs du cache sont illisibles' })
    const connections = await attempt<ConnectionStatistics>('connexions', () => engine.connectionStatistics(db.sql, { poolSize: db.poolSize }), {
      active: null,
      open: null,
      poolSize: db.poolSize ?? null,
      serverUptimeMs: null,
    })
    progress(4)

    const recommendations = await attempt<Recommendation[]>(
      'recommandations',
      () => advise({ operations, fingerprints, samples, engine, sql: db.sql, thresholds: this.thresholds, options: this.options.advisor }),
      [],
    )
    progress(6)

    const timestamp = this.now()
    return {
      version: PERFORMANCE_METRICS_VERSION,
      timestamp: new Date(timestamp).toISOString(),
      uptime: timestamp - this.startedAt,
      slowQueriesCount: statistics.slowQueriesCount,
      engine: db.engine,
      database: db.redactedUrl,
      window: { startedAt: new Date(window.startedAt).toISOString(), endedAt: new Date(window.endedAt).toISOString(), droppedOperations: window.droppedOperations },
      thresholds: this.thresholds,
      tests,
      globalMetrics: {
        ...statistics,
        cacheHitRate: cache.hitRate === null ? null : Math.round(cache.hitRate * 10_000) / 10_000,
        connectionPoolSize: connections.poolSize,
        activeConnections: connections.active,
      },
      fingerprints,
      tenantMetrics: tenantMetrics.rows,
      cache: { ...cache, repeatedReads: repeatedReads(fingerprints) },
      system: {
        uptimeMs: timestamp - this.startedAt,
        activeConnections: connections.active,
        openConnections: connections.open,
        poolSize: connections.poolSize,
        serverUptimeMs: connections.serverUptimeMs,
        ...(connections.note === undefined ? {} : { note: connections.note }),
        storageMethod,
      },
      recommendations,
      notes,
      rawMetrics: operations.slice(-RAW_METRICS_LIMIT).map(rawOperation),
    }
  }

  /** Closes the database if the dashboard opened it. */
  async close(): Promise<void> {
    const opened = this.opened
    this.opened = undefined
    if (opened === undefined || typeof this.options.database === 'object') return
    const { db } = await opened.catch(() => ({ db: undefined }))
    await db?.close()
  }

  private open(): Promise<Opened> {
    this.opened ??= (async () => {
      const database = this.options.database
      const db =
        typeof database === 'object'
          ? database
          : await openDatabase(database ?? this.options.environment.databaseUrl, { environment: this.options.environment, cwd: this.options.cwd })
      try {
        return { db, instrumentation: instrumentDatabase(db), engine: engineNamed(db.engine).metrics }
      } catch (error) {
        if (typeof database !== 'object') await db.close()
        throw error
      }
    })().catch((error: unknown) => {
      // The next analysis tries again (a watch survives a database that was down).
      this.opened = undefined
      throw error
    })
    return this.opened
  }

  private async resolveTestTenant(sql: SqlConnection): Promise<{ tenantId?: string; reason?: string }> {
    const wanted = this.options.tenant
    if (wanted !== undefined) {
      const [row] = await sql.query<{ id: string }>(`SELECT id FROM "Tenant" WHERE id = ? OR slug = ?`, [wanted, wanted])
      return row === undefined ? { reason: `tenant « ${wanted} » introuvable (ni id ni slug)` } : { tenantId: row.id }
    }
    const [demo] = await sql.query<{ id: string }>(`SELECT id FROM "Tenant" WHERE slug = ?`, [DEMO_TENANT_SLUG])
    if (demo !== undefined) return { tenantId: demo.id }
    const [first] = await sql.query<{ id: string }>(`SELECT id FROM "Tenant" ORDER BY id LIMIT 1`)
    return first === undefined ? { reason: 'la base ne contient aucun tenant' } : { tenantId: first.id }
  }

  private async tenantMetrics(sql: SqlConnection, engine: MetricsEngine, operations: readonly OperationRecord[], tables: readonly string[]): Promise<{ rows: TenantMetrics[]; method: string }> {
    const activity = tenantActivity(operations)
    const ids = [...activity.keys()]
    const names = new Map<string, string>()
    const dossiers = new Map<string, number>()
    const clients = new Map<string, number>()
    const storage = new Map<string, number>()
    const tenantTables: TenantTable[] = []
    for (const owned of TENANT_OWNED) {
      if (tables.includes(owned.table)) tenantTables.push({ ...owned, columns: await engine.listColumns(sql, owned.table) })
    }
    let method = (await engine.tenantStorage(sql, [], tenantTables)).method
    for (let start = 0; start < ids.length; start += IN_LIST_CHUNK) {
      const chunk = ids.slice(start, start + IN_LIST_CHUNK)
      const list = chunk.map(() => '?').join(', ')
      for (const row of await sql.query<{ id: string; name: string }>(`SELECT id, name FROM "Tenant" WHERE id IN (${list})`, chunk)) names.set(row.id, row.name)
      for (const [table, counts] of [['Dossier', dossiers], ['Client', clients]] as const) {
        const rows = await sql.query<{ tenant: string; n: number | string }>(
          `SELECT ${quoteIdentifier('tenantId')} AS tenant, COUNT(*) AS n FROM ${quoteIdentifier(table)} WHERE ${quoteIdentifier('tenantId')} IN (${list}) GROUP BY ${quoteIdentifier('tenantId')}`,
          chunk,
        )
        for (const row of rows) counts.set(row.tenant, Number(row.n))
      }
      const measured = await engine.tenantStorage(sql, chunk, tenantTables)
      method = measured.method
      for (const [id, bytes] of measured.bytes) storage.set(id, bytes)
    }
    const rows = ids.map((tenantId): TenantMetrics => {
      const exists = names.has(tenantId)
      return {
        tenantId,
        tenantName: names.get(tenantId) ?? null,
        ...activity.get(tenantId)!,
        totalDossiers: exists ? (dossiers.get(tenantId) ?? 0) : null,
        totalClients: exists ? (clients.get(tenantId) ?? 0) : null,
        storageUsed: exists ? (storage.get(tenantId) ?? 0) : null,
      }
    })
    rows.sort((a, b) => b.queryCount - a.queryCount || (a.tenantName ?? a.tenantId).localeCompare(b.tenantName ?? b.tenantId))
    return { rows, method }
  }
}

function emptyTenants(operations: readonly OperationRecord[]): { rows: TenantMetrics[]; method: string } {
  const rows = [...tenantActivity(operations)].map(([tenantId, activity]) => ({
    tenantId,
    tenantName: null,
    ...activity,
    totalDossiers: null,
    totalClients: null,
    storageUsed: null,
  }))
  return { rows, method: 'n/a : les tables des cabinets sont illisibles' }
}

function rawOperation(operation: OperationRecord): RawOperation {
  return {
    id: operation.id,
    timestamp: new Date(operation.startedAt).toISOString(),
    model: operation.model,
    action: operation.action,
    tenantId: operation.tenantId,
    tenantSource: operation.tenantSource,
    durationMs: roundMs(operation.durationMs),
    dbDurationMs: roundMs(operation.dbDurationMs),
    rows: operation.rows,
    ...(operation.error === undefined ? {} : { error: operation.error }),
    sql: operation.sql.map((s) => ({ fingerprintId: fingerprintId(fingerprintSql(s.sql)), durationMs: roundMs(s.durationMs) })),
  }
}
