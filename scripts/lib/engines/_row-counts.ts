/** Step 4 of every restore: the row count of each table against what the backup's metadata records. */
import { ToolkitError } from '../errors.ts'
import type { RowCount } from './engine.ts'

/**
 * Counts each table of the metadata (null when the table is missing) and throws when any differs.
 * @example const counts = await checkRowCounts(metadata.tables, async (name) => present.has(name) ? count(name) : null)
 */
export async function checkRowCounts(tables: readonly { name: string; rows: number }[], countRows: (table: string) => Promise<number | null>): Promise<RowCount[]> {
  const counts: RowCount[] = []
  for (const table of tables) counts.push({ name: table.name, expected: table.rows, actual: await countRows(table.name) })
  const wrong = counts.filter((c) => c.actual !== c.expected)
  if (wrong.length > 0) throw new ToolkitError(`les nombres de lignes diffèrent des métadonnées : ${wrong.map((c) => `${c.name} ${c.actual ?? 'absente'} au lieu de ${c.expected}`).join(', ')}`)
  return counts
}
