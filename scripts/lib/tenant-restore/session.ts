/**
 * What a tenant restore needs from an engine, and nothing more: exact reads of a subset of rows,
 * the unique indexes of a table, and one write transaction. Each engine folder implements it in
 * `engines/<engine>/tenant-restore.ts`, the `Engine`'s `openTenantSession` member.
 */
import type { SqlValue } from '../db/connection.ts'
import type { RowValue, TableInfo } from '../db/table-reader.ts'
import type { ValueKind } from '../migration/conversion.ts'

export interface UniqueIndex {
  name: string
  columns: string[]
}

export interface TenantSession {
  /**
   * `SELECT <every column of table> FROM table WHERE <where>`: values as the table reader gives
   * them (RowValue: SQLite integers as bigint, PostgreSQL values as their text form), in
   * `table.columns` order. `where` uses `?` placeholders and may refer to the table by its name.
   */
  selectRows(table: TableInfo, where: string, params: readonly SqlValue[]): Promise<RowValue[][]>
  /** The unique indexes of a table as the catalog declares them (primary key included). */
  uniqueIndexes(table: string): Promise<UniqueIndex[]>
  /** The newest finished, not rolled back migration of `_prisma_migrations`, or null. */
  newestMigration(): Promise<string | null>
  /** The value to bind for a canonical value of `kind` into a column of this engine. */
  bindValue(kind: ValueKind, canonical: string, declaredType: string): SqlValue
  /**
   * Starts the write transaction. On SQLite and PostgreSQL it takes the locks that stop other
   * writers from changing this tenant until commit (SQLite: the database write lock; PostgreSQL:
   * the tenant's root row FOR UPDATE, which every insert referencing it must wait for); on D1
   * statements are collected and sent as one batch at commit (D1 has no interactive transaction).
   */
  begin(lock: { table: string; where: string; params: readonly SqlValue[] }): Promise<void>
  /** Runs one write statement in the transaction (after begin); `?` placeholders. */
  execute(sql: string, params: readonly SqlValue[]): Promise<void>
  commit(): Promise<void>
  rollback(): Promise<void>
  close(): Promise<void>
  /** How many bound values one statement may carry. */
  readonly maxParameters: number
}
