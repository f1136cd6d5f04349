/** Row sources of the exporters: a table reader's async rows, a SQLite statement's rows, or records the engine formatted. */
import type { RowValue } from '../../db/table-reader.ts'
import type { TextSink } from '../../fs/hashed-file.ts'
import type { FormattedChunks } from '../../engines/snapshot.ts'

/**
 * Calls `each` for every row and awaits `pause()` whenever `each` returns true (its output is full).
 * A synchronous source is walked without a promise per row: measured on 1M rows, `for await` over
 * an async generator cost ~2.5 s per pass, more than reading the rows.
 */
export async function forEachRow<Row>(rows: AsyncIterable<Row> | Iterable<Row>, each: (row: Row) => boolean, pause: () => Promise<void>): Promise<void> {
  if (Symbol.iterator in rows) {
    for (const row of rows) if (each(row)) await pause()
  } else {
    for await (const row of rows) if (each(row)) await pause()
  }
}

/** How often (in rows) exporters report progress. */
export const REPORT_EVERY = 20_000

/**
 * Renders every row into one or more sinks (`render` pushes to them), waits for them whenever one
 * is full, and reports the running count to `onRows` every REPORT_EVERY rows and once at the end.
 * @returns the number of rows
 */
export async function writeRows<Row = RowValue[]>(
  rows: AsyncIterable<Row> | Iterable<Row>,
  sinks: readonly TextSink[],
  render: (row: Row, index: number) => void,
  onRows?: (rows: number) => void,
): Promise<number> {
  let count = 0
  let nextReport = REPORT_EVERY
  await forEachRow(
    rows,
    (row) => {
      render(row, count++)
      return sinks.some((sink) => sink.full)
    },
    async () => {
      await Promise.all(sinks.map((sink) => sink.flush()))
      if (count >= nextReport) {
        onRows?.(count)
        nextReport = count + REPORT_EVERY
      }
    },
  )
  onRows?.(count)
  return count
}

/**
 * Writes records the engine formatted (Snapshot.csvChunks, sqlite/export-format.ts) after what
 * `sink` holds, reporting to `onRows` after each buffer and once at the end.
 * @returns the number of records
 */
export async function writeFormattedChunks(formatted: FormattedChunks, sink: TextSink, onRows?: (rows: number) => void): Promise<number> {
  for (const chunk of formatted.chunks) {
    await sink.writeBytes(chunk)
    onRows?.(formatted.records())
  }
  const count = formatted.records()
  onRows?.(count)
  return count
}
