/**
 * SQLite values in the exports (the rules are in db/values.ts): integers arrive as bigint, reals as
 * number, text as string, blobs as Buffer; only a BOOLEAN column's 0 and 1 become false and true.
 * D1 stores the same values and uses this codec too.
 */
import type { RowValue, TableColumn, ValueCodec } from '../../db/table-reader.ts'
import { realJson, realText } from '../../db/values.ts'

type Kind = 'boolean' | 'text'

/** @example sqliteValueCodec({ name: 'actif', declaredType: 'BOOLEAN', nullable: false, primaryKeyPosition: 0 }).json(1n) // 'true' */
export function sqliteValueCodec(column: TableColumn): ValueCodec {
  return sqliteCodec(isBooleanColumn(column) ? 'boolean' : 'text')
}

/** A column declared BOOL or BOOLEAN: its integers 0 and 1 are written false and true. */
export function isBooleanColumn(column: TableColumn): boolean {
  return /^BOOL(EAN)?\b/.test(column.declaredType.toUpperCase())
}

function sqliteCodec(kind: Kind): ValueCodec {
  const text = (value: RowValue): string | null => {
    if (value === null) return null
    if (typeof value === 'bigint') {
      if (kind === 'boolean' && (value === 0n || value === 1n)) return value === 1n ? 'true' : 'false'
      return value.toString()
    }
    if (typeof value === 'number') return realText(value)
    if (typeof value === 'string') return value
    return value.toString('base64')
  }
  return {
    text,
    json(value) {
      if (value === null) return 'null'
      if (typeof value === 'bigint') {
        if (kind === 'boolean' && (value === 0n || value === 1n)) return value === 1n ? 'true' : 'false'
        return value.toString()
      }
      if (typeof value === 'number') return realJson(value)
      return JSON.stringify(text(value))
    },
  }
}
