/**
 * A tenant restore reads only its cabinet's sections of a compressed backup (tenant-restore/
 * sections.ts), on every engine, from a local folder and from S3 (s3rver): the result is exactly the
 * full path's, a changed byte of those sections is refused before any write, the bytes outside them
 * are never used, a backup without the index still restores through the full path, and the index,
 * which lies in plaintext beside the archive, holds no cabinet's name.
 */
import assert from 'node:assert/strict'
import { cpSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { AdvancedBackupSystem } from '../scripts/lib/backup/backup-system.ts'
import { createBackup } from '../scripts/lib/backup/create/create.ts'
import { verifyBackup } from '../scripts/lib/backup/catalog/verify.ts'
import { parseMetadata, serializeMetadata, type BackupMetadata, type TenantIndex } from '../scripts/lib/backup/metadata.ts'
import type { DatabaseHandle } from '../scripts/lib/db/connection.ts'
import type { EngineName } from '../scripts/lib/db/url.ts'
import { generateKeyFile, readKeyFile, unwrapDataKey } from '../scripts/lib/encryption/keys.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'
import { tenantChecksum } from '../scripts/lib/tenant-restore/checksum.ts'
import { planTenantRestore, type TenantRestorePlan } from '../scripts/lib/tenant-restore/plan.ts'
import { restoreTenant } from '../scripts/lib/tenant-restore/restore.ts'
import { tenantKey, tenantRunsOf } from '../scripts/lib/tenant-restore/sections.ts'
import { ENGINES, openTestDatabase, tempDir } from './helpers/databases.ts'
import { STORAGES } from './helpers/storage.ts'
import { addTenantData, everyTenantChecksum } from './helpers/tenants.ts'

const TOOL = { name: 'ia-poste-manager-test', version: '0.0.0' }
const TENANT = 'tenant-martin'

/** The demo data and more cabinets, the archive several gzip members long (one is ~8,000 dossiers), backed up compressed. */
async function backedUp(t: { after: (fn: () => unknown) => void }, engine: EngineName) {
  const db = await openTestDatabase(t, engine)
  await addTenantData(db, 'tenant-demo', 4, 5)
  await addTenantData(db, TENANT, 20, 30)
  await addTenantData(db, 'tenant-dubois', 2, 3)
  await addTenantData(db, 'tenant-moreau', 40, 200)
  const backupDir = join(tempDir(t), 'backups')
  const { metadata } = await createBackup({ db, backupDir, formats: ['json', 'csv'], compress: true, verify: true, tool: TOOL, prismaSchemaSha256: null, now: () => new Date('2026-01-21T15:30:00Z') })
  return { db, backupDir, id: metadata.id, sidecar: join(backupDir, `${metadata.id}.metadata.json`), archive: join(backupDir, `${metadata.id}.tar.gz`) }
}

async function damage(db: DatabaseHandle): Promise<void> {
  // No list of ids: D1 binds at most 100 values per statement.
  await db.prisma.dossier.deleteMany({ where: { tenantId: TENANT, id: { endsWith: '7' } } })
  await db.prisma.client.update({ where: { id: `${TENANT}-client-1` }, data: { lastName: 'Modifié', phone: null } })
}

/** The same backup in another folder, its metadata resealed without the tenant index (a backup made before it). */
function withoutIndex(t: { after: (fn: () => unknown) => void }, backupDir: string, id: string): string {
  const copy = join(tempDir(t), 'backups')
  cpSync(backupDir, copy, { recursive: true })
  const path = join(copy, `${id}.metadata.json`)
  const { metadata } = parseMetadata(readFileSync(path, 'utf8'), path)
  const { tenantIndex: _dropped, metadataSha256: _seal, ...rest } = metadata
  writeFileSync(path, serializeMetadata(rest))
  return copy
}

function indexOf(sidecar: string): { metadata: BackupMetadata; index: TenantIndex } {
  const { metadata } = parseMetadata(readFileSync(sidecar, 'utf8'), sidecar)
  assert.ok(metadata.tenantIndex, 'a compressed backup of a database with cabinets has a tenant index')
  return { metadata, index: metadata.tenantIndex }
}

/**
 * Byte ranges [start, end) of the archive file holding `tenantId`'s sections: its members, each once, in
 * order. `dataKey`: an encrypted backup's, whose index keeps each cabinet's runs sealed.
 */
function sectionRanges(index: TenantIndex, backupId: string, tenantId: string, dataKey?: Buffer): [number, number][] {
  const starts = [index.memberOffset]
  for (const [length] of index.members) starts.push(starts.at(-1)! + length)
  const members = new Set<number>()
  for (const [from, to] of Object.values(tenantRunsOf(index, backupId, dataKey)![tenantKey(backupId, tenantId)]!)) {
    for (let m = Math.floor((index.offset + from) / index.blockSize); m <= Math.floor((index.offset + to - 1) / index.blockSize); m++) members.add(m - index.first)
  }
  return [...members].sort((a, b) => a - b).map((m) => [starts[m]!, starts[m + 1]!])
}

/** What a plan says about the data, whichever path read the backup. */
function substance(plan: TenantRestorePlan) {
  const { backupRead: _read, ...rest } = plan
  return rest
}

for (const engine of ENGINES) {
  describe(`restauration d'un cabinet par sections (${engine})`, () => {
    test('reads only the cabinet’s sections and gives exactly what the full path gives; every other cabinet unchanged', async (t) => {
      const { db, backupDir, id, sidecar, archive } = await backedUp(t, engine)
      const inBackup = await tenantChecksum({ db, tenantId: TENANT })
      await damage(db)
      const others = await everyTenantChecksum(db)
      others.delete(TENANT)

      const full = await planTenantRestore({ backup: { backupDir: withoutIndex(t, backupDir, id), id }, target: db, tenant: 'cabinet-martin' })
      assert.equal(full.backupRead.path, 'full')

      // Every byte of the archive outside the cabinet's members is zeroed: the fast path cannot use any of them.
      const { index } = indexOf(sidecar)
      const ranges = sectionRanges(index, id, TENANT)
      const original = readFileSync(archive)
      const kept = Buffer.alloc(original.length)
      for (const [start, end] of ranges) original.copy(kept, start, start, end)
      writeFileSync(archive, kept)
      const keptBytes = ranges.reduce((sum, [start, end]) => sum + end - start, 0)
      assert.ok(keptBytes < original.length / 2, `${keptBytes} of ${original.length} bytes kept`)
      assert.equal((await verifyBackup(backupDir, id)).ok, false, 'the zeroed archive is not the backup any more')

      const result = await restoreTenant({ backup: { backupDir, id }, target: db, tenant: 'cabinet-martin', safetyDir: tempDir(t) })
      assert.deepEqual(result.plan.backupRead.path, 'sections')
      assert.deepEqual(substance(result.plan), substance(full))
      assert.ok(full.tables.some((c) => c.toInsert > 0))
      assert.equal(result.after?.checksum, inBackup.checksum)
      assert.equal((await tenantChecksum({ db, tenantId: TENANT })).checksum, inBackup.checksum)
      const after = await everyTenantChecksum(db)
      after.delete(TENANT)
      assert.deepEqual(after, others)
    })

    test('a changed byte inside the cabinet’s sections is refused before any write', async (t) => {
      const { db, backupDir, id, sidecar, archive } = await backedUp(t, engine)
      await damage(db)
      const before = await everyTenantChecksum(db)
      const { index } = indexOf(sidecar)
      const [start, end] = sectionRanges(index, id, TENANT).at(-1)!
      const bytes = readFileSync(archive)
      bytes[Math.floor((start + end) / 2)]! ^= 0x01
      writeFileSync(archive, bytes)
      await assert.rejects(restoreTenant({ backup: { backupDir, id }, target: db, tenant: TENANT, safetyDir: tempDir(t) }), /a changé depuis la sauvegarde \(SHA-256 différent de l'index\) : rien n'a été écrit/)
      assert.deepEqual(await everyTenantChecksum(db), before)
    })

    test('a backup without the index restores through the full path', async (t) => {
      const { db, backupDir, id } = await backedUp(t, engine)
      const inBackup = await tenantChecksum({ db, tenantId: TENANT })
      await damage(db)
      const safetyDir = tempDir(t)
      const result = await restoreTenant({ backup: { backupDir: withoutIndex(t, backupDir, id), id }, target: db, tenant: TENANT, safetyDir })
      assert.deepEqual(result.plan.backupRead, { path: 'full', reason: 'sauvegarde sans index des cabinets' })
      assert.equal((await tenantChecksum({ db, tenantId: TENANT })).checksum, inBackup.checksum)
    })

    test('a cabinet deleted from the live database is restored through the full path', async (t) => {
      const { db, backupDir, id } = await backedUp(t, engine)
      const inBackup = await tenantChecksum({ db, tenantId: 'tenant-dubois' })
      await db.prisma.tenant.delete({ where: { id: 'tenant-dubois' } })
      const result = await restoreTenant({ backup: { backupDir, id }, target: db, tenant: 'tenant-dubois', safetyDir: tempDir(t) })
      assert.equal(result.plan.backupRead.path, 'full')
      assert.equal((await tenantChecksum({ db, tenantId: 'tenant-dubois' })).checksum, inBackup.checksum)
    })

    test('the plaintext metadata beside the archive names no cabinet (neither name, slug nor id)', async (t) => {
      const { db, sidecar } = await backedUp(t, engine)
      const text = readFileSync(sidecar, 'utf8')
      const { metadata, index } = indexOf(sidecar)
      // The index adds one field; the rest of the format is as before.
      for (const file of metadata.files) assert.deepEqual(Object.keys(file), ['path', 'size', 'sha256'])
      const tenants = await db.prisma.tenant.findMany()
      assert.equal(Object.keys(index.tenants!).length, tenants.length)
      for (const tenant of tenants) for (const value of [tenant.id, tenant.name, tenant.slug]) assert.ok(!text.includes(value), `${value} is in the metadata`)
    })
  })
}

for (const engine of ENGINES.filter((e) => e !== 'd1')) {
  test(`encrypted (${engine}): only the chunks covering the cabinet's members are decrypted, each tag checked; a flipped ciphertext byte there is refused`, async (t) => {
    const dir = tempDir(t)
    const keyFile = generateKeyFile(join(dir, 'backup.key')).path
    const db = await openTestDatabase(t, engine)
    await addTenantData(db, TENANT, 20, 30)
    await addTenantData(db, 'tenant-moreau', 40, 200)
    const backupDir = join(dir, 'backups')
    const system = new AdvancedBackupSystem({ databaseUrl: db.url, backupDir, environment: resolveEnvironment({}), maxBackups: 10, encrypt: true, keyFile })
    const { metadata } = await system.create()
    assert.ok(metadata.encryption && metadata.tenantIndex)
    // Each cabinet's runs (its size) are sealed in the plaintext metadata; the key opens them.
    assert.equal(metadata.tenantIndex.tenants, undefined)
    assert.match(metadata.tenantIndex.sealedTenants ?? '', /^[A-Za-z0-9+/]+=*$/)
    const dataKey = await unwrapDataKey(metadata.encryption.key, readKeyFile(keyFile))
    assert.equal(Object.keys(tenantRunsOf(metadata.tenantIndex, metadata.id, dataKey)!).length, (await db.prisma.tenant.count()))
    assert.throws(() => tenantRunsOf(metadata.tenantIndex!, 'backup-2020-01-01T00-00-00', dataKey), /l'index des cabinets du backup backup-2020-01-01T00-00-00 chiffré ne s’ouvre pas : authentification échouée/)
    const inBackup = await tenantChecksum({ db, tenantId: TENANT })
    await damage(db)

    const keyless = new AdvancedBackupSystem({ databaseUrl: db.url, backupDir, environment: resolveEnvironment({}), maxBackups: 10 })
    await assert.rejects(keyless.restoreTenant(metadata.id, { tenant: TENANT, yes: true }), /est chiffrée et aucune clé n’est fournie/)

    // A flipped byte in the middle of the ciphertext of the cabinet's last section.
    const sealed = join(backupDir, `${metadata.id}.tar.gz.enc`)
    const original = readFileSync(sealed)
    const [start, end] = sectionRanges(metadata.tenantIndex, metadata.id, TENANT, dataKey).at(-1)!
    const plainAt = Math.floor((start + end) / 2)
    const flipped = Buffer.from(original)
    flipped[16 + Math.floor(plainAt / 65_536) * (65_536 + 16) + (plainAt % 65_536)]! ^= 0x01
    writeFileSync(sealed, flipped)
    const damaged = await everyTenantChecksum(db)
    await assert.rejects(system.restoreTenant(metadata.id, { tenant: TENANT, yes: true }), /déchiffrement refusé au bloc \d+ : authentification échouée/)
    assert.deepEqual(await everyTenantChecksum(db), damaged)

    writeFileSync(sealed, original)
    const result = await system.restoreTenant(metadata.id, { tenant: TENANT, yes: true })
    assert.equal(result.plan.backupRead.path, 'sections')
    // Read: the header, then whole sealed chunks covering the cabinet's members, nothing else.
    const read = result.plan.backupRead.path === 'sections' ? result.plan.backupRead.bytes : Infinity
    // (neighbouring members are read together: one range of chunks per group)
    const groups: [number, number][] = []
    for (const [from, to] of sectionRanges(metadata.tenantIndex, metadata.id, TENANT, dataKey)) {
      if (groups.at(-1)?.[1] === from) groups.at(-1)![1] = to
      else groups.push([from, to])
    }
    const chunks = groups.reduce((sum, [from, to]) => sum + (Math.floor((to - 1) / 65_536) - Math.floor(from / 65_536) + 1) * (65_536 + 16), 0)
    assert.ok(read <= 16 + chunks && read < metadata.encryption.ciphertext.size, `${read} bytes read, ${16 + chunks} in the cabinet's chunks, ${metadata.encryption.ciphertext.size} stored`)
    assert.equal((await tenantChecksum({ db, tenantId: TENANT })).checksum, inBackup.checksum)
  })
}

const s3 = STORAGES.find((entry) => entry.name === 's3')!
for (const engine of ENGINES.filter((e) => e !== 'd1')) {
  test(`s3 (${engine}): the cabinet's sections are read by ranges, the result is the full path's`, async (t) => {
    const storage = await s3.start(t)
    const db = await openTestDatabase(t, engine)
    await addTenantData(db, TENANT, 20, 30)
    await addTenantData(db, 'tenant-moreau', 40, 200)
    const environment = { ...resolveEnvironment({}), storage: storage.env }
    const history = tempDir(t)
    const system = new AdvancedBackupSystem({ databaseUrl: db.url, backupDir: storage.url, environment: { ...environment, backupHistoryDir: history }, maxBackups: 10 })
    const { metadata } = await system.create()
    assert.ok(metadata.tenantIndex)
    const inBackup = await tenantChecksum({ db, tenantId: TENANT })
    await damage(db)
    const others = await everyTenantChecksum(db)
    others.delete(TENANT)

    const result = await system.restoreTenant(metadata.id, { tenant: 'cabinet-martin', yes: true })
    assert.equal(result.plan.backupRead.path, 'sections')
    const read = result.plan.backupRead.path === 'sections' ? result.plan.backupRead.bytes : Infinity
    assert.ok(read < metadata.archive!.size / 2, `${read} bytes read of ${metadata.archive!.size}`)
    assert.equal((await tenantChecksum({ db, tenantId: TENANT })).checksum, inBackup.checksum)
    const after = await everyTenantChecksum(db)
    after.delete(TENANT)
    assert.deepEqual(after, others)
    assert.ok(readdirSync(history).some((name) => name.includes('before-restore')), 'the safety export is written on this machine')

    // A backup without the index on the storage: the full path, through a checked local copy.
    await db.prisma.dossier.deleteMany({ where: { tenantId: TENANT } })
    const key = `${metadata.id}.metadata.json`
    const { tenantIndex: _dropped, metadataSha256: _seal, ...rest } = metadata
    const text = Buffer.from(serializeMetadata(rest))
    await storage.overwriteRaw(key, text)
    const again = await system.restoreTenant(metadata.id, { tenant: TENANT, yes: true })
    assert.equal(again.plan.backupRead.path, 'full')
    assert.equal((await tenantChecksum({ db, tenantId: TENANT })).checksum, inBackup.checksum)
  })
}
