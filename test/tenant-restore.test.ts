/**
 * Restoring one cabinet (tenant) from a backup into a live database, on every engine and across
 * engines: the cabinet comes back exactly as it was in the backup (content checksum), every other
 * cabinet and the shared plans stay byte for byte what they were, and every refusal happens before
 * any write.
 */
import assert from 'node:assert/strict'
import { readFileSync, existsSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { createBackup } from '../scripts/lib/backup/create/create.ts'
import type { DatabaseHandle } from '../scripts/lib/db/connection.ts'
import type { EngineName } from '../scripts/lib/db/url.ts'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { tableContentChecksum, tenantChecksum } from '../scripts/lib/tenant-restore/checksum.ts'
import { planTenantRestore } from '../scripts/lib/tenant-restore/plan.ts'
import { restoreTenant } from '../scripts/lib/tenant-restore/restore.ts'
import { checksumRows } from '../scripts/lib/tenant-restore/rows.ts'
import { python } from './helpers/backup.ts'
import { requireJudge } from './helpers/judges.ts'
import { ENGINES, openTestDatabase, tempDir } from './helpers/databases.ts'
import { addTenantData, everyTenantChecksum } from './helpers/tenants.ts'

const TOOL = { name: 'ia-poste-manager-test', version: '0.0.0' }
const NOW = () => new Date('2026-01-22T03:00:00.000Z')

/** A database of `engine` with the demo data and two more cabinets with clients and dossiers, backed up. */
async function backedUpDatabase(t: { after: (fn: () => unknown) => void }, engine: EngineName, compress = true) {
  const db = await openTestDatabase(t, engine)
  await addTenantData(db, 'tenant-demo', 4, 5)
  await addTenantData(db, 'tenant-martin', 3, 4)
  await addTenantData(db, 'tenant-dubois', 2, 3)
  const backupDir = join(tempDir(t), 'backups')
  const { metadata } = await createBackup({ db, backupDir, formats: ['json'], compress, verify: true, tool: TOOL, prismaSchemaSha256: null, now: () => new Date('2026-01-21T15:30:00Z') })
  return { db, backupDir, id: metadata.id }
}

/** Deletes half of Cabinet Demo's dossiers, changes a client, adds a client: what a bad day looks like. */
async function damageDemo(db: DatabaseHandle): Promise<{ deletedDossiers: number }> {
  const dossiers = await db.prisma.dossier.findMany({ where: { tenantId: 'tenant-demo' }, select: { id: true }, orderBy: { id: 'asc' } })
  const doomed = dossiers.filter((_, i) => i % 2 === 0).map((d) => d.id)
  await db.prisma.dossier.deleteMany({ where: { id: { in: doomed } } })
  await db.prisma.client.update({ where: { id: 'client-demo-1' }, data: { lastName: 'Dupont-Modifié', phone: null } })
  await db.prisma.client.create({ data: { id: 'client-demo-new', tenantId: 'tenant-demo', firstName: 'Nouveau', lastName: 'Client', email: 'nouveau@example.fr' } })
  return { deletedDossiers: doomed.length }
}

function demoDossierCount(): number {
  return 9 + 4 * 5
}

for (const engine of ENGINES) {
  describe(`restauration d'un cabinet (${engine})`, () => {
    test('restores the damaged cabinet exactly and leaves every other cabinet and the plans untouched', async (t) => {
      const { db, backupDir, id } = await backedUpDatabase(t, engine)
      const inBackup = await tenantChecksum({ db, tenantId: 'tenant-demo' })
      const { deletedDossiers } = await damageDemo(db)
      // Other cabinets keep working after the backup: their newer rows must survive.
      await db.prisma.client.create({ data: { id: 'client-martin-after', tenantId: 'tenant-martin', firstName: 'Après', lastName: 'Sauvegarde' } })
      const others = await everyTenantChecksum(db)
      others.delete('tenant-demo')
      const plans = await tableContentChecksum({ db, table: 'Plan' })

      const dry = await restoreTenant({ backup: { backupDir, id }, target: db, tenant: 'Cabinet Demo', dryRun: true })
      assert.equal(dry.dryRun, true)
      assert.deepEqual(dry.plan.ownedTables, ['Tenant', 'Client', 'Dossier', 'User'])
      assert.deepEqual(dry.plan.sharedTables, ['Plan'])
      assert.deepEqual(dry.plan.conflicts, [])
      const byTable = Object.fromEntries(dry.plan.tables.map((c) => [c.table, c]))
      const dossiers = demoDossierCount()
      assert.deepEqual(byTable.Dossier, { table: 'Dossier', current: dossiers - deletedDossiers, backup: dossiers, unchanged: dossiers - deletedDossiers, toDelete: 0, toInsert: deletedDossiers })
      assert.deepEqual(byTable.Client, { table: 'Client', current: 3 + 4 + 1, backup: 7, unchanged: 6, toDelete: 2, toInsert: 1 })
      assert.deepEqual(byTable.User, { table: 'User', current: 3, backup: 3, unchanged: 3, toDelete: 0, toInsert: 0 })
      assert.deepEqual(byTable.Tenant, { table: 'Tenant', current: 1, backup: 1, unchanged: 1, toDelete: 0, toInsert: 0 })
      assert.equal(dry.plan.backupChecksum.checksum, inBackup.checksum)
      assert.notEqual(dry.plan.currentChecksum.checksum, inBackup.checksum)
      assert.equal((await tenantChecksum({ db, tenantId: 'tenant-demo' })).checksum, dry.plan.currentChecksum.checksum, 'a dry run writes nothing')

      const steps: string[] = []
      const result = await restoreTenant({ backup: { backupDir, id }, target: db, tenant: 'tenant-demo', now: NOW, onStep: (s) => void steps.push(s) })
      assert.equal(result.after?.checksum, inBackup.checksum)
      assert.equal((await tenantChecksum({ db, tenantId: 'tenant-demo' })).checksum, inBackup.checksum)
      assert.equal(result.inserted, 1 + 7 + 3 + dossiers)
      assert.equal(result.deleted, 1 + 8 + 3 + dossiers - deletedDossiers)
      const after = await everyTenantChecksum(db)
      after.delete('tenant-demo')
      assert.deepEqual(after, others)
      assert.deepEqual(await tableContentChecksum({ db, table: 'Plan' }), plans)
      assert.equal(await db.prisma.client.count({ where: { id: 'client-martin-after' } }), 1)
      assert.deepEqual(steps, ['tenant-restore:planned', 'tenant-restore:locked', 'tenant-restore:after-safety-export', 'tenant-restore:after-delete', 'tenant-restore:before-commit', 'tenant-restore:after-commit'])

      // The safety export holds the damaged state, and its hash is the one reported and written beside it.
      const safety = result.safetyExport!
      assert.equal(safety.path, join(backupDir, 'tenant-tenant-demo-2026-01-22T03-00-00Z.before-restore.json'))
      const bytes = readFileSync(safety.path)
      assert.equal(createHash('sha256').update(bytes).digest('hex'), safety.sha256)
      assert.equal(readFileSync(`${safety.path}.sha256`, 'utf8'), `${safety.sha256}  ${'tenant-tenant-demo-2026-01-22T03-00-00Z.before-restore.json'}\n`)
      const exported = JSON.parse(bytes.toString('utf8'))
      assert.equal(exported.checksum.checksum, dry.plan.currentChecksum.checksum)
      assert.equal(exported.tables.Dossier.rows.length, dossiers - deletedDossiers)
      assert.equal(safety.rows, result.deleted)

      // Restoring again changes nothing.
      const again = await planTenantRestore({ backup: { backupDir, id }, target: db, tenant: 'tenant-demo' })
      assert.ok(again.tables.every((c) => c.toDelete === 0 && c.toInsert === 0))
    })

    test('refuses before any write when a plan the backup needs was deleted', async (t) => {
      const { db, backupDir, id } = await backedUpDatabase(t, engine, false)
      // Cabinet Moreau-Petit is on plan-decouverte: move it away, delete the plan, then damage Cabinet Demo's plan the same way.
      await db.prisma.tenant.update({ where: { id: 'tenant-demo' }, data: { planId: 'plan-solo' } })
      await db.prisma.plan.delete({ where: { id: 'plan-pro' } })
      await db.prisma.dossier.deleteMany({ where: { tenantId: 'tenant-demo' } })
      const before = await everyTenantChecksum(db)
      const plans = await tableContentChecksum({ db, table: 'Plan' })
      await assert.rejects(
        restoreTenant({ backup: { backupDir, id }, target: db, tenant: 'Cabinet Demo', now: NOW }),
        (error: unknown) =>
          error instanceof ToolkitError &&
          error.message.startsWith('restauration du cabinet « Cabinet Demo » refusée avant toute écriture (1 problème) :\n') &&
          error.message.includes('Plan id = "plan-pro", dont dépendent les lignes Tenant du cabinet « Cabinet Demo » dans la sauvegarde, n\'existe plus dans la base cible'),
      )
      assert.deepEqual(await everyTenantChecksum(db), before)
      assert.deepEqual(await tableContentChecksum({ db, table: 'Plan' }), plans)
      assert.equal(existsSync(join(backupDir, 'tenant-tenant-demo-2026-01-22T03-00-00Z.before-restore.json')), false)
    })

    test('refuses before any write when another cabinet now uses a unique e-mail or a primary key of the backup', async (t) => {
      const { db, backupDir, id } = await backedUpDatabase(t, engine, false)
      await db.prisma.user.delete({ where: { id: 'user-demo-avocat' } })
      await db.prisma.user.create({ data: { id: 'user-martin-new', email: 'avocat@cabinet-demo.fr', name: 'Transfuge', tenantId: 'tenant-martin' } })
      await db.prisma.client.update({ where: { id: 'client-demo-2' }, data: { tenantId: 'tenant-dubois' } })
      const before = await everyTenantChecksum(db)
      const plan = await planTenantRestore({ backup: { backupDir, id }, target: db, tenant: 'tenant-demo' })
      const messages = plan.conflicts.map((c) => c.message)
      assert.ok(messages.includes('User email = "avocat@cabinet-demo.fr" : la sauvegarde le donne au cabinet restauré, mais la ligne User "user-martin-new" d\'un autre cabinet (cabinet tenant-martin) l\'utilise déjà (index unique User_email_key)'), messages.join('\n'))
      assert.ok(messages.some((m) => m.startsWith('Client id = "client-demo-2" : la sauvegarde le donne au cabinet restauré, mais la ligne Client "client-demo-2" d\'un autre cabinet (cabinet tenant-dubois)')), messages.join('\n'))
      await assert.rejects(restoreTenant({ backup: { backupDir, id }, target: db, tenant: 'tenant-demo', now: NOW }), /refusée avant toute écriture/)
      assert.deepEqual(await everyTenantChecksum(db), before)
    })

    test('names the candidates when the tenant is unknown or ambiguous', async (t) => {
      const { db, backupDir, id } = await backedUpDatabase(t, engine, false)
      await assert.rejects(planTenantRestore({ backup: { backupDir, id }, target: db, tenant: 'Cabinet Inconnu' }), (error: unknown) => {
        assert.ok(error instanceof ToolkitError)
        assert.match(error.message, /^aucun cabinet « Cabinet Inconnu » dans la sauvegarde backup-2026-01-21T15-30-00 ; cabinets présents : /)
        assert.ok(error.message.includes('"Cabinet Demo" (tenant-demo)'))
        return true
      })
      assert.equal((await planTenantRestore({ backup: { backupDir, id }, target: db, tenant: 'cabinet demo' })).tenant.id, 'tenant-demo')
    })
  })
}

describe('restauration d\'un cabinet entre moteurs', () => {
  const pairs: [EngineName, EngineName][] = [
    ['sqlite', 'postgres'],
    ['postgres', 'sqlite'],
  ]
  for (const [from, to] of pairs) {
    if (!ENGINES.includes(from) || !ENGINES.includes(to)) continue
    test(`a ${from} backup restores a cabinet into ${to}`, async (t) => {
      const source = await backedUpDatabase(t, from)
      const inBackup = await tenantChecksum({ db: source.db, tenantId: 'tenant-demo' })
      const target = await openTestDatabase(t, to)
      await addTenantData(target, 'tenant-demo', 4, 5)
      await addTenantData(target, 'tenant-martin', 3, 4)
      await damageDemo(target)
      const martin = await tenantChecksum({ db: target, tenantId: 'tenant-martin' })
      const result = await restoreTenant({ backup: { backupDir: source.backupDir, id: source.id }, target, tenant: 'Cabinet Demo', now: NOW })
      assert.equal(result.after?.checksum, inBackup.checksum)
      assert.deepEqual(await tenantChecksum({ db: target, tenantId: 'tenant-martin' }), martin)
      // The app reads back what it wrote before: dates, enums and nulls are stored the engine's way.
      const dossier = await target.prisma.dossier.findUniqueOrThrow({ where: { id: 'tenant-demo-dossier-0' } })
      assert.equal(dossier.dateEcheance?.toISOString(), '2026-03-01T12:00:00.456Z')
      assert.equal(dossier.statut, 'OUVERT')
      assert.equal(dossier.description, null)
    })
  }
})

/** Runs the child fixture; resolves with its exit signal/code and output. */
function child(args: string[], onLine?: (line: string) => void): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'tenant-restore-child.ts'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    proc.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk
      for (const line of chunk.toString().split('\n')) if (line !== '') onLine?.(line)
    })
    proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
    proc.on('error', reject)
    proc.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
}

// D1 is left out: one local D1 (Miniflare) cannot be opened by two processes at once.
for (const engine of ENGINES.filter((e) => e !== 'd1')) {
  describe(`restauration d'un cabinet, processus concurrents (${engine})`, () => {
    for (const killAt of ['tenant-restore:after-delete', 'tenant-restore:before-commit']) {
      test(`a restore killed (SIGKILL) at ${killAt} leaves the old cabinet, whole`, async (t) => {
        const { db, backupDir, id } = await backedUpDatabase(t, engine, false)
        await damageDemo(db)
        const before = await everyTenantChecksum(db)
        const url = (db as DatabaseHandle & { url: string }).url
        const run = await child(['restore', url, backupDir, id, 'tenant-demo', killAt])
        assert.equal(run.signal, 'SIGKILL', run.stderr)
        assert.deepEqual(await everyTenantChecksum(db), before)
        // A killed run leaves nothing that stops the next one.
        const inBackup = (await planTenantRestore({ backup: { backupDir, id }, target: db, tenant: 'tenant-demo' })).backupChecksum
        const result = await restoreTenant({ backup: { backupDir, id }, target: db, tenant: 'tenant-demo', now: NOW })
        assert.equal(result.after?.checksum, inBackup.checksum)
      })
    }

    test('a restore killed after commit leaves the new cabinet', async (t) => {
      const { db, backupDir, id } = await backedUpDatabase(t, engine, false)
      const inBackup = await tenantChecksum({ db, tenantId: 'tenant-demo' })
      await damageDemo(db)
      const run = await child(['restore', (db as DatabaseHandle & { url: string }).url, backupDir, id, 'tenant-demo', 'tenant-restore:after-commit'])
      assert.equal(run.signal, 'SIGKILL', run.stderr)
      assert.equal((await tenantChecksum({ db, tenantId: 'tenant-demo' })).checksum, inBackup.checksum)
    })

    test('the writes another process makes to other cabinets during the restore survive it', async (t) => {
      const { db, backupDir, id } = await backedUpDatabase(t, engine, false)
      const inBackup = await tenantChecksum({ db, tenantId: 'tenant-demo' })
      await damageDemo(db)
      const clientsBefore = await db.prisma.client.count({ where: { tenantId: 'tenant-martin' } })
      const writes = 150
      let started!: () => void
      const writerStarted = new Promise<void>((resolve) => (started = resolve))
      const writer = child(['write', (db as DatabaseHandle & { url: string }).url, 'tenant-martin', String(writes)], (line) => line === 'started' && started())
      await writerStarted
      const result = await restoreTenant({ backup: { backupDir, id }, target: db, tenant: 'tenant-demo', now: NOW })
      const done = await writer
      assert.equal(done.code, 0, done.stderr)
      assert.match(done.stdout, new RegExp(`done ${writes}`))
      assert.equal(result.after?.checksum, inBackup.checksum)
      assert.equal((await tenantChecksum({ db, tenantId: 'tenant-demo' })).checksum, inBackup.checksum)
      assert.equal(await db.prisma.client.count({ where: { tenantId: 'tenant-martin' } }), clientsBefore + writes)
    })
  })
}

test('a row set’s content checksum is the sum modulo 2^256 of each row’s SHA-256 (python3 as the judge), whatever the row order', { skip: requireJudge('python3') }, () => {
  const columns = ['name', 'amount', 'note']
  // Enough rows for the sum to wrap past 2^256 many times, with the escapes of a COPY text line.
  const rows = Array.from({ length: 64 }, (_, i) => [`cabinet ${i}`, String(i * 1234567), i % 3 === 0 ? null : `tab\there\nnew line ${i} \\`])
  const ours = checksumRows(columns, rows)
  assert.deepEqual(checksumRows(columns, [...rows].reverse()), ours)
  const judge = python<{ rows: number; checksum: string }>(
    `import hashlib, json, sys
columns, rows = json.loads(sys.argv[1]), json.loads(sys.argv[2])
order = sorted(range(len(columns)), key=lambda i: columns[i])
header = '\\t'.join(columns[i] for i in order) + '\\n'
def text(v):
    if v is None: return '\\\\N'
    return v.replace('\\\\', '\\\\\\\\').replace('\\t', '\\\\t').replace('\\n', '\\\\n').replace('\\r', '\\\\r')
total = 0
for row in rows:
    line = '\\t'.join(text(row[i]) for i in order) + '\\n'
    total = (total + int(hashlib.sha256((header + line).encode()).hexdigest(), 16)) % (1 << 256)
print(json.dumps({'rows': len(rows), 'checksum': 'sum256:%064x' % total}))`,
    [JSON.stringify(columns), JSON.stringify(rows)],
  )
  assert.deepEqual(ours, judge)
})
