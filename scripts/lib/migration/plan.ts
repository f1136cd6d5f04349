/**
 * The dry run: what a migration would copy, into which schema, and every reason it cannot —
 * decided before a single byte is written. Checks the schema (each column's type and nullability
 * against the target) and the values (NULLs where the target wants none, numbers and dates the
 * target cannot hold), all inside the source's snapshot.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import { quoteIdentifier } from '../db/connection.ts'
import { tablesInDependencyOrder } from '../db/table-reader.ts'
import { ToolkitError, USAGE_EXIT_CODE, describeError } from '../errors.ts'
import { converterFor, conversionFor, sqliteTypeAccepts, type ColumnConversion, type ConversionOverrides, type Converter, type ValueKind } from './conversion.ts'
import type { PostgresSource, SourceColumn, SourceTable } from './source.ts'
import { deriveTable, describeAppSchema, type AppSchema, type DerivedTable, type TargetTable } from './target-schema.ts'

export type SchemaChoice = 'auto' | 'app' | 'derive'

export interface PlannedColumn {
  name: string
  /** The PostgreSQL type as declared: `timestamp(3) without time zone`, `"Role"`. */
  sourceType: string
  /** How its values are converted; absent when they cannot be. */
  kind?: ValueKind
  /** The SQLite column's declared type. */
  targetType?: string
}

export interface PlannedTable {
  name: string
  rows: number
  /** `all`, `selected` (--tables), or the table whose foreign key needs it. */
  reason: string
  /** Created by the app's migrations, or derived from the PostgreSQL catalog. */
  schema: 'app' | 'derived'
  columns: PlannedColumn[]
  /** What the PostgreSQL table has that the SQLite copy will not (CHECK constraints, gin indexes…). */
  notCarried: string[]
}

export interface PlanProblem {
  /** `source`: the data or its schema (fix it in PostgreSQL or leave the table out); `target`: the SQLite file's path. */
  about: 'source' | 'target'
  table?: string
  column?: string
  message: string
}

export interface MigrationPlan {
  source: { url: string; serverVersion: string }
  target: { path: string; exists: boolean; previousKeptAs?: string }
  schema: { mode: 'app' | 'derived'; reason: string; migrations: string[] }
  /** In copy order: every table after the tables its foreign keys point to. */
  tables: PlannedTable[]
  /** Source tables left out, and why. */
  skipped: { name: string; reason: string }[]
  totalRows: number
  /** Anything here stops the migration before it writes. */
  problems: PlanProblem[]
}

/** A planned table with what the copy needs: the source table, one converter per column, its DDL when derived. */
export interface TableWork {
  source: SourceTable
  planned: PlannedTable
  converters: Converter[]
  derived?: DerivedTable
  /** App tables: the columns SQLite declares NOT NULL (a nullable source column must then hold no NULL). */
  notNull: Set<string>
}

export interface PlanOptions {
  /** Absolute path of the SQLite file to create. */
  target: string
  schema?: SchemaChoice
  /** Copy only these tables (and the tables their foreign keys need). */
  tables?: string[]
  force?: boolean
  /** Replaces value conversions (tests use it to prove the verification catches a bad one). */
  conversions?: ConversionOverrides
  /** The app's SQLite schema; default: the committed migrations applied to an in-memory database. */
  appSchema?: AppSchema
}

export const BEFORE_MIGRATION_SUFFIX = '.before-migration'
const MIGRATIONS_TABLE = '_prisma_migrations'
const EXAMPLES = 3

/**
 * Plans a migration from an open source.
 * @example const { plan } = await planMigration(source, { target: '/data/app.db' }); plan.problems // []
 */
export async function planMigration(source: PostgresSource, options: PlanOptions): Promise<{ plan: MigrationPlan; work: TableWork[] }> {
  const problems: PlanProblem[] = []
  const appSchema = options.appSchema ?? (await describeAppSchema())
  const appTableNames = new Set(appSchema.tables.map((t) => t.name))
  const byName = new Map(source.tables.map((t) => [t.name, t]))

  // Which schema.
  const choice = options.schema ?? 'auto'
  const hasAppTables = [...appTableNames].every((name) => byName.has(name))
  const mode: 'app' | 'derived' = choice === 'app' || (choice === 'auto' && hasAppTables) ? 'app' : 'derived'
  let reason: string
  if (mode === 'app') {
    reason = choice === 'app' ? 'demandé par --schema app' : `la source a les tables de l’application et ${MIGRATIONS_TABLE}`
    if (!hasAppTables) {
      const missing = [...appTableNames].filter((name) => !byName.has(name))
      problems.push({ about: 'source', message: `--schema app : il manque à la source les tables de l’application ${missing.join(', ')}` })
    } else {
      const applied = source.appliedMigrations ?? []
      if (applied.join('\n') !== appSchema.migrations.join('\n')) {
        problems.push({
          about: 'source',
          table: MIGRATIONS_TABLE,
          message: `les migrations appliquées de la source [${applied.join(', ') || 'aucune'}] diffèrent de prisma/sqlite/migrations [${appSchema.migrations.join(', ')}] : le schéma SQLite de l’application ne correspondrait pas aux données. Déployez d’abord les migrations PostgreSQL en attente, ou copiez telle quelle avec --schema derive`,
        })
      }
    }
  } else {
    reason = choice === 'derive' ? 'demandé par --schema derive' : `il manque à la source les tables de l’application (${[...appTableNames].filter((n) => !byName.has(n)).join(', ')})`
  }

  // Which tables: the selection plus, transitively, every table its foreign keys point to.
  const reasons = new Map<string, string>()
  if (options.tables === undefined || options.tables.length === 0) {
    for (const table of source.tables) reasons.set(table.name, 'toutes')
  } else {
    const unknown = options.tables.filter((name) => !byName.has(name))
    if (unknown.length > 0) {
      throw new ToolkitError(`--tables : pas de table ${unknown.map((n) => `"${n}"`).join(', ')} dans la source`, {
        hint: `Tables de la source : ${source.tables.map((t) => t.name).join(', ')} (la casse compte).`,
        exitCode: USAGE_EXIT_CODE,
      })
    }
    const visit = (name: string, why: string) => {
      if (reasons.has(name)) return
      reasons.set(name, why)
      for (const fk of byName.get(name)?.foreignKeys ?? []) {
        // Tables of other schemas are not copied (their keys are reported as not carried).
        if (fk.referencedTable !== name && byName.has(fk.referencedTable)) visit(fk.referencedTable, `référencée par ${name}`)
      }
    }
    for (const name of options.tables) visit(name, 'choisie')
    for (const name of options.tables) reasons.set(name, 'choisie')
  }
  const skipped: MigrationPlan['skipped'] = []
  for (const table of source.tables) if (!reasons.has(table.name)) skipped.push({ name: table.name, reason: 'non choisie par --tables' })
  if (mode === 'app' && reasons.has(MIGRATIONS_TABLE)) {
    reasons.delete(MIGRATIONS_TABLE)
    skipped.push({ name: MIGRATIONS_TABLE, reason: "réécrite par les migrations SQLite (les empreintes de l’historique PostgreSQL ne sont pas celles de SQLite)" })
  }

  const appTables = new Map(appSchema.tables.map((t) => [t.name, t]))
  const selected = tablesInDependencyOrder(source.tables.filter((t) => reasons.has(t.name)).map((t) => t.info)).map((info) => byName.get(info.name)!)
  const overrides = options.conversions ?? {}
  const work: TableWork[] = []
  checkNames(selected, mode === 'app' ? appSchema.tables : [], problems)
  const copied = new Set([...selected.map((t) => t.name), ...(mode === 'app' ? appTableNames : [])])
  for (const table of selected) {
    const appTable = mode === 'app' ? appTables.get(table.name) : undefined
    work.push(planTable(table, reasons.get(table.name)!, appTable, overrides, problems, copied))
  }
  if (selected.length === 0) problems.push({ about: 'source', message: 'la source n’a aucune table à copier' })

  problems.push(...(await checkValues(source, work)))
  const target = checkTarget(options.target, options.force ?? false, problems)
  const plan: MigrationPlan = {
    source: { url: source.redactedUrl, serverVersion: source.serverVersion },
    target,
    schema: { mode, reason, migrations: mode === 'app' ? appSchema.migrations : [] },
    tables: work.map((w) => w.planned),
    skipped,
    totalRows: work.reduce((sum, w) => sum + w.planned.rows, 0),
    problems,
  }
  return { plan, work }
}

function planTable(
  table: SourceTable,
  reason: string,
  appTable: TargetTable | undefined,
  overrides: ConversionOverrides,
  problems: PlanProblem[],
  copiedTables: ReadonlySet<string>,
): TableWork {
  const conversions = new Map<string, ColumnConversion>()
  const tableConverters: Converter[] = []
  const columns: PlannedColumn[] = []
  if (table.columns.length === 0) problems.push({ about: 'source', table: table.name, message: 'la table n’a pas de colonnes' })
  for (const column of table.columns) {
    const choice = conversionFor(column.type)
    const planned: PlannedColumn = { name: column.name, sourceType: column.declaredType }
    columns.push(planned)
    if ('unsupported' in choice) {
      problems.push({ about: 'source', table: table.name, column: column.name, message: `conversion impossible : ${choice.unsupported}` })
      tableConverters.push(converterFor('text'))
      continue
    }
    planned.kind = choice.kind
    conversions.set(column.name, choice)
    tableConverters.push(converterFor(choice.kind, column.type, overrides))
    if (appTable === undefined) {
      planned.targetType = choice.sqliteType
      continue
    }
    const target = appTable.columns.find((c) => c.name === column.name)
    if (target === undefined) {
      problems.push({ about: 'source', table: table.name, column: column.name, message: `le schéma SQLite de l’application n’a pas de colonne "${column.name}" dans "${table.name}" : ses valeurs seraient perdues` })
      continue
    }
    planned.targetType = target.declaredType
    if (!sqliteTypeAccepts(target.declaredType, choice.kind)) {
      problems.push({ about: 'source', table: table.name, column: column.name, message: `PostgreSQL ${column.declaredType} (${choice.kind}) ne tient pas dans la colonne SQLite ${target.declaredType} de l’application` })
    }
  }
  if (appTable !== undefined) {
    if (appTable.withoutRowid) problems.push({ about: 'source', table: table.name, message: 'les tables WITHOUT ROWID ne sont pas prises en charge (la vérification lit les lignes dans l’ordre d’insertion)' })
    for (const target of appTable.columns) {
      if (target.notNull && !target.hasDefault && !table.columns.some((c) => c.name === target.name)) {
        problems.push({ about: 'source', table: table.name, column: target.name, message: `le schéma SQLite de l’application exige "${target.name}" (NOT NULL, sans défaut) mais la source n’a pas cette colonne` })
      }
    }
  }
  const derived = appTable === undefined ? deriveTable(table, conversions, copiedTables) : undefined
  return {
    source: table,
    converters: tableConverters,
    ...(derived ? { derived } : {}),
    notNull: new Set(appTable?.columns.filter((c) => c.notNull).map((c) => c.name) ?? []),
    planned: { name: table.name, rows: table.rows, reason, schema: appTable === undefined ? 'derived' : 'app', columns, notCarried: derived?.notCarried ?? [] },
  }
}

/** SQLite reserves `sqlite_` names and compares identifiers without case. */
function checkNames(tables: SourceTable[], appTables: TargetTable[], problems: PlanProblem[]): void {
  const seen = new Map<string, string>(appTables.map((t) => [t.name.toLowerCase(), t.name]))
  for (const table of tables) {
    if (/^sqlite_/i.test(table.name)) problems.push({ about: 'source', table: table.name, message: 'SQLite réserve les noms de table commençant par "sqlite_"' })
    const other = seen.get(table.name.toLowerCase())
    if (other !== undefined && other !== table.name) problems.push({ about: 'source', table: table.name, message: `SQLite ignore la casse des noms de table : "${table.name}" et "${other}" seraient la même table` })
    seen.set(table.name.toLowerCase(), table.name)
    const columns = new Map<string, string>()
    for (const column of table.columns) {
      const clash = columns.get(column.name.toLowerCase())
      if (clash !== undefined) problems.push({ about: 'source', table: table.name, column: column.name, message: `SQLite ignore la casse des noms de colonne : "${column.name}" et "${clash}" seraient la même colonne` })
      columns.set(column.name.toLowerCase(), column.name)
    }
  }
}

/** SQL conditions (true = the value cannot be copied) per conversion kind, run in the snapshot. */
function valueChecks(table: TableWork): { column: SourceColumn; condition: string; what: string }[] {
  const checks: { column: SourceColumn; condition: string; what: string }[] = []
  table.source.columns.forEach((column, i) => {
    const c = quoteIdentifier(column.name)
    const kind = table.planned.columns[i]?.kind
    if (kind === 'decimal') {
      checks.push({
        column,
        what: 'des nombres que SQLite ne conserve pas exactement (plus de ~15 chiffres significatifs, NaN ou infini)',
        condition: `${c} IS NOT NULL AND NOT CASE
          WHEN ${c}::text IN ('NaN', 'Infinity', '-Infinity') THEN false
          WHEN ${c} = trunc(${c}) AND ${c} BETWEEN -9223372036854775808 AND 9223372036854775807 THEN true
          WHEN abs(${c}) > 1.7976931348623157e308 OR abs(${c}) < 5e-324 THEN false
          ELSE ${c}::float8::text::numeric = ${c} END`,
      })
    } else if (kind === 'real') {
      checks.push({ column, what: 'des valeurs NaN (SQLite stocke NaN comme NULL)', condition: `${c} = 'NaN'` })
    } else if (kind === 'datetime') {
      checks.push({ column, what: "des dates hors de portée du DateTime de Prisma (infini, avant l’an 1, après 9999)", condition: `${c} IS NOT NULL AND (NOT isfinite(${c}) OR extract(year FROM ${c}) < 1 OR extract(year FROM ${c}) > 9999)` })
    } else if (kind === 'array') {
      checks.push({ column, what: 'des tableaux dont les bornes ne commencent pas à 1', condition: `${c} IS NOT NULL AND array_dims(${c}) ~ '\\[(-|0|[2-9]|1[0-9])'` })
    }
    if (column.nullable && table.notNull.has(column.name)) {
      // A nullable PostgreSQL column feeding a NOT NULL SQLite one is fine until a NULL shows up.
      checks.push({ column, what: 'des NULL, alors que la colonne SQLite est NOT NULL', condition: `${c} IS NULL` })
    }
  })
  return checks
}

async function checkValues(source: PostgresSource, work: TableWork[]): Promise<PlanProblem[]> {
  const problems: PlanProblem[] = []
  for (const table of work) {
    if (table.planned.rows === 0) continue
    const checks = valueChecks(table)
    if (checks.length === 0) continue
    const counts = `SELECT ${checks.map((check, i) => `count(*) FILTER (WHERE ${check.condition}) AS c${i}`).join(', ')} FROM ${quoteIdentifier(table.source.name)}`
    let row: Record<string, string | null>
    try {
      row = (await source.query(counts))[0] ?? {}
    } catch (error) {
      problems.push({ about: 'source', table: table.source.name, message: `la vérification des valeurs a échoué : ${describeError(error)}` })
      continue
    }
    for (const [i, check] of checks.entries()) {
      const count = Number(row[`c${i}`] ?? 0)
      if (count === 0) continue
      const examples = await exampleKeys(source, table.source, check.condition)
      problems.push({
        about: 'source',
        table: table.source.name,
        column: check.column.name,
        message: `${count} ligne${count === 1 ? '' : 's'} avec ${check.what}${examples ? `, par exemple ${examples}` : ''}`,
      })
    }
  }
  return problems
}

async function exampleKeys(source: PostgresSource, table: SourceTable, condition: string): Promise<string> {
  const keys = table.columns.filter((c) => c.primaryKeyPosition > 0).sort((a, b) => a.primaryKeyPosition - b.primaryKeyPosition)
  if (keys.length === 0) return ''
  const rows = await source.query(`SELECT ${keys.map((c) => `${quoteIdentifier(c.name)}::text AS ${quoteIdentifier(c.name)}`).join(', ')} FROM ${quoteIdentifier(table.name)} WHERE ${condition} ORDER BY ${keys.map((c) => quoteIdentifier(c.name)).join(', ')} LIMIT ${EXAMPLES}`)
  return rows.map((row) => keys.map((k) => `${k.name}=${row[k.name as keyof typeof row]}`).join(',')).join('; ')
}

function checkTarget(path: string, force: boolean, problems: PlanProblem[]): MigrationPlan['target'] {
  const exists = existsSync(path)
  const dir = dirname(path)
  if (!existsSync(dir)) {
    problems.push({ about: 'target', message: `le dossier de la cible ${dir} n’existe pas` })
  } else {
    try {
      accessSync(dir, constants.W_OK)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      problems.push({ about: 'target', message: `écriture impossible dans ${dir} : ${code === 'EROFS' ? 'système de fichiers en lecture seule' : code === 'EACCES' ? 'permission refusée' : describeError(error)}` })
    }
  }
  if (exists && statSync(path).isDirectory()) problems.push({ about: 'target', message: `la cible ${path} est un dossier` })
  else if (exists && !force) problems.push({ about: 'target', message: `la cible ${path} existe : passez --force pour la remplacer (le fichier actuel est gardé sous ${path}${BEFORE_MIGRATION_SUFFIX})` })
  if (existsSync(`${path}-wal`) || existsSync(`${path}-journal`)) {
    problems.push({ about: 'target', message: `la cible ${path} est utilisée ou n’a pas été fermée proprement (un fichier -wal ou -journal est à côté) : arrêtez d’abord l’application` })
  }
  return { path, exists, ...(exists && force ? { previousKeptAs: `${path}${BEFORE_MIGRATION_SUFFIX}` } : {}) }
}
