/** Row sources of the exporters: a table reader's async rows, or a SQLite statement's rows. */
import type { RowValue } from '../../db/table-reader.ts'

export type RowSource = AsyncIterable<RowValue[]> | Iterable<RowValue[]>

/**
 * Calls `each` for every row and awaits `pause()` whenever `each` returns true (its output is full).
 * A synchronous source is walked without a promise per row: measured on 1M rows, `for await` over
 * an async generator cost ~2.5 s per pass, more than reading the rows.
 */
export async function forEachRow(rows: RowSource, each: (row: RowValue[]) => boolean, pause: () => Promise<void>): Promise<void> {
  if (Symbol.iterator in rows) {
    for (const row of rows) if (each(row)) await pause()
  } else {
    for await (const row of rows) if (each(row)) await pause()
  }
}
