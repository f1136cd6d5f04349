/**
 * D1 source: D1 has no file to copy and keeps no read transaction between requests, so the
 * database.db of a D1 backup is rebuilt here: the schema from D1's sqlite_master, then every row
 * read page by page (by rowid) through the D1 table reader, values exact. It is therefore not one
 * instant of the database when something writes during the backup — the metadata says so; stop
 * writers (or use Cloudflare's `wrangler d1 export`) when that matters. Every export then reads
 * the rebuilt file, so all files of the backup agree with each other.
 */
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { type SqlHandle, quoteIdentifier } from '../../db/connection.ts'
import { fsyncPath } from '../../fs/atomic.ts'
import { DATABASE_FILE, type Snapshot, type SnapshotOptions } from '../snapshot.ts'
import { SCAN_CACHE_KIB, sqliteFileSnapshot } from '../sqlite/snapshot.ts'

interface SchemaRow {
  type: string
  name: string
  sql: string
}

export const D1_SNAPSHOT_WARNING =
  'D1 est lu page par page, pas dans une seule transaction : des lignes écrites pendant le backup peuvent manquer ou être en partie incluses (arrêtez les écritures pour une copie exacte à un instant).'

export async function d1Snapshot(db: SqlHandle, options: SnapshotOptions): Promise<Snapshot> {
  const path = join(options.dir, DATABASE_FILE)
  const schema = await db.sql.query<SchemaRow>(
    `SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY rowid`,
  )
  const reader = await db.openTableReader()
  const out = new Database(path)
  try {
    out.pragma('journal_mode = OFF')
    out.pragma('synchronous = OFF')
    out.pragma(`cache_size = ${SCAN_CACHE_KIB}`)
    // Rows arrive table by table in name order, not in foreign-key order (better-sqlite3 enforces FKs by default).
    out.pragma('foreign_keys = OFF')
    const tables = await reader.tables()
    const total = (await Promise.all(tables.map((table) => reader.count(table)))).reduce((a, b) => a + b, 0)
    let done = 0
    out.exec('BEGIN')
    for (const row of schema.filter((r) => r.type === 'table')) out.exec(row.sql)
    for (const table of tables) {
      const columns = table.columns.map((c) => quoteIdentifier(c.name))
      const insert = out.prepare(`INSERT INTO ${quoteIdentifier(table.name)} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`)
      for await (const row of reader.rows(table)) {
        insert.run(...row)
        if (++done % 1000 === 0) options.onProgress?.({ label: 'D1 → database.db', done, total, unit: 'rows' })
      }
    }
    try {
      const sequences = await db.sql.query<{ name: string; seq: number }>('SELECT name, seq FROM sqlite_sequence')
      for (const { name, seq } of sequences) out.prepare('INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)').run(name, seq)
    } catch {
      // No AUTOINCREMENT table (or D1 hides sqlite_sequence): nothing to carry over.
    }
    for (const row of schema.filter((r) => r.type !== 'table')) out.exec(row.sql)
    out.exec('COMMIT')
    options.onProgress?.({ label: 'D1 → database.db', done, total, unit: 'rows' })
    out.pragma('journal_mode = DELETE')
  } finally {
    if (out.inTransaction) out.exec('ROLLBACK')
    out.close()
    await reader.close()
  }
  if (options.durable ?? true) fsyncPath(path)
  return sqliteFileSnapshot('d1', path, [D1_SNAPSHOT_WARNING])
}
