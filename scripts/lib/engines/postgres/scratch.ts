/**
 * Restore drills on PostgreSQL: a temporary database `ipm_drill_<pid>_<random>` created on the
 * server of the configured database and dropped after (WITH (FORCE)); a drill killed before it
 * could drop it leaves it behind, and the next drill drops every such database whose process is gone.
 */
import pg from 'pg'
import { ToolkitError, describeError } from '../../errors.ts'
import type { IntegrityFinding, ScratchDatabases } from '../engine.ts'
import { processIsAlive } from '../../fs/leftovers.ts'
import { scratchName, scratchOwner } from '../_scratch.ts'

const PREFIX = 'ipm_drill_'

function serverUrl(url: string | undefined): string {
  if (url === undefined || !/^postgres(ql)?:\/\//i.test(url)) {
    throw new ToolkitError("l'exercice de restauration d'un backup PostgreSQL crée une base temporaire sur un serveur PostgreSQL, mais la base configurée n'en est pas une", {
      hint: '--database postgresql://utilisateur@hôte/base (le serveur de la base ; elle-même n\'est pas touchée)',
    })
  }
  return url
}

async function withAdmin<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  client.on('error', () => {})
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end().catch(() => {})
  }
}

function databaseUrl(server: string, name: string): string {
  const url = new URL(server)
  url.pathname = `/${name}`
  return url.toString()
}

export const postgresScratch: ScratchDatabases = {
  async create({ serverUrl: server }) {
    const base = serverUrl(server)
    const name = scratchName(PREFIX)
    await withAdmin(base, (client) => client.query(`CREATE DATABASE "${name}"`))
    const url = databaseUrl(base, name)
    const redacted = new URL(url)
    if (redacted.password) redacted.password = '****'
    return {
      url,
      display: redacted.toString(),
      drop: () => withAdmin(base, async (client) => void (await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`))),
      // Its checksums stream rows through one connection (no helper threads): nothing to start early.
      readableWhileChecked: false,
    }
  },
  async cleanLeftovers({ serverUrl: server }) {
    if (server === undefined || !/^postgres(ql)?:\/\//i.test(server)) return []
    return withAdmin(server, async (client) => {
      const { rows } = await client.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE '${PREFIX}%'`)
      const dropped: string[] = []
      for (const { datname } of rows) {
        const pid = scratchOwner(datname, PREFIX)
        if (pid === undefined || processIsAlive(pid)) continue
        await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`)
        dropped.push(datname)
      }
      return dropped
    })
  },
  async integrity(db) {
    const findings: IntegrityFinding[] = []
    // Foreign keys are enforced while loading; a constraint left NOT VALID would hide rows that break one.
    const invalid = await db.sql.query<{ conname: string }>(`SELECT conname FROM pg_constraint WHERE contype = 'f' AND NOT convalidated`)
    findings.push({ name: 'foreign-keys', status: invalid.length === 0 ? 'ok' : 'failed', detail: invalid.length === 0 ? 'contraintes de clé étrangère validées' : `contraintes non validées : ${invalid.map((c) => c.conname).join(', ')}` })
    try {
      await db.sql.query('CREATE EXTENSION IF NOT EXISTS amcheck')
    } catch (error) {
      findings.push({ name: 'amcheck', status: 'skipped', detail: `amcheck indisponible : ${describeError(error)}` })
      return findings
    }
    const indexes = await db.sql.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.amname = 'btree' AND n.nspname = current_schema() ORDER BY 1`,
    )
    const broken: string[] = []
    for (const { name } of indexes) {
      try {
        await db.sql.query(`SELECT bt_index_check(to_regclass(?), true)`, [name])
      } catch (error) {
        broken.push(`${name} (${describeError(error)})`)
      }
    }
    findings.push({ name: 'amcheck', status: broken.length === 0 ? 'ok' : 'failed', detail: broken.length === 0 ? `amcheck : ${indexes.length} index B-tree vérifiés (heapallindexed)` : `amcheck : ${broken.join(' ; ')}` })
    return findings
  },
}
