/**
 * Rotation keeps the newest complete backups, never deletes the newest verified one, and touches
 * nothing but complete backups; prune --dry-run only tells.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ENGINES, openTestDatabase, tempDir } from './helpers/databases.ts'
import { backupSystem, steppingClock } from './helpers/backup.ts'
import { planRotation } from '../scripts/lib/backup/catalog/rotation.ts'
import { backupPaths } from '../scripts/lib/backup/layout.ts'
import type { BackupEntry } from '../scripts/lib/backup/catalog/catalog.ts'
import type { BackupMetadata } from '../scripts/lib/backup/metadata.ts'

function entry(day: number, options: { verified?: boolean; damaged?: boolean } = {}): BackupEntry {
  const id = `backup-2026-01-${String(day).padStart(2, '0')}T03-00-00`
  return {
    id,
    form: 'archive',
    paths: backupPaths('/backups', id),
    sealValid: !options.damaged,
    ...(options.damaged ? { problem: 'unreadable' } : { metadata: { id, verified: options.verified ?? true } as BackupMetadata }),
  }
}

const ids = (entries: BackupEntry[]) => entries.map((e) => e.id.slice(7, 17))

test('rotation keeps the N newest and removes the rest, oldest included, whatever order it is given', () => {
  const plan = planRotation([entry(3), entry(1), entry(5), entry(2), entry(4)], 3)
  assert.deepEqual(ids(plan.keep), ['2026-01-05', '2026-01-04', '2026-01-03'])
  assert.deepEqual(ids(plan.remove), ['2026-01-02', '2026-01-01'])
  assert.equal(plan.keptBecauseVerified, undefined)
})

test('rotation never removes the newest verified backup, even beyond N', () => {
  const plan = planRotation([entry(5, { verified: false }), entry(4, { verified: false }), entry(3), entry(2), entry(1)], 2)
  assert.deepEqual(ids(plan.keep), ['2026-01-05', '2026-01-04', '2026-01-03'])
  assert.deepEqual(ids(plan.remove), ['2026-01-02', '2026-01-01'])
  assert.equal(plan.keptBecauseVerified, 'backup-2026-01-03T03-00-00')
  // A backup whose metadata was edited does not count as verified.
  const edited = planRotation([entry(3, { verified: false }), { ...entry(2), sealValid: false }, entry(1)], 1)
  assert.equal(edited.keptBecauseVerified, 'backup-2026-01-01T03-00-00')
})

test('rotation edge cases: fewer backups than N, N = 1, damaged backups, no backup at all, N < 1', () => {
  assert.deepEqual(planRotation([entry(1), entry(2)], 10).remove, [])
  assert.deepEqual(ids(planRotation([entry(1), entry(2), entry(3)], 1).remove), ['2026-01-02', '2026-01-01'])
  assert.deepEqual(ids(planRotation([entry(3, { damaged: true }), entry(2), entry(1)], 1).keep), ['2026-01-03', '2026-01-02'])
  // Unreadable backups cannot be told apart by source: they form their own series, under the same policy.
  assert.deepEqual(ids(planRotation([entry(3), entry(2, { damaged: true }), entry(1, { damaged: true })], 2).remove), [])
  assert.deepEqual(ids(planRotation([entry(4), entry(3, { damaged: true }), entry(2, { damaged: true }), entry(1, { damaged: true })], 2).remove), ['2026-01-01'])
  assert.deepEqual(planRotation([], 3), { keep: [], remove: [], reasons: {}, sourceOf: {} })
  assert.throws(() => planRotation([entry(1)], 0), /≥ 1/)
})

for (const engine of ENGINES) test(`${engine}: create rotates after each backup, folders and archives alike, and leaves other files alone`, async (t) => {
  const db = await openTestDatabase(t, engine)
  const backupDir = join(tempDir(t), 'backups')
  mkdirSync(backupDir)
  writeFileSync(join(backupDir, 'README.txt'), 'not a backup')
  mkdirSync(join(backupDir, 'backup-2020-01-01T00-00-00.tmp-999999999-x'))
  const clock = steppingClock()
  const removed: string[][] = []
  for (let i = 0; i < 4; i++) {
    const system = backupSystem(t, { databaseUrl: db.url, backupDir, maxBackups: 2, compressionEnabled: i % 2 === 0, exportFormats: ['csv'], now: clock })
    removed.push((await system.create()).rotation.removed)
  }
  assert.deepEqual(removed, [[], [], ['backup-2026-01-21T15-30-00'], ['backup-2026-01-21T15-31-00']])
  assert.deepEqual(readdirSync(backupDir).sort(), [
    'README.txt',
    'backup-2026-01-21T15-32-00.metadata.json',
    'backup-2026-01-21T15-32-00.tar.gz',
    'backup-2026-01-21T15-33-00',
    'history.jsonl',
  ])
})

test('the newest verified backup survives rotation by unverified ones; prune --dry-run deletes nothing', async (t) => {
  const db = await openTestDatabase(t, 'sqlite')
  const backupDir = join(tempDir(t), 'backups')
  const clock = steppingClock()
  const make = (verifyIntegrity: boolean, maxBackups = 2) =>
    backupSystem(t, { databaseUrl: db.url, backupDir, maxBackups, verifyIntegrity, compressionEnabled: false, exportFormats: ['json'], now: clock })
  await make(true).create()
  await make(true).create()
  for (let i = 0; i < 3; i++) await make(false).create()
  const listed = (await make(false).list()).backups.map((b) => [b.id.slice(-8), b.metadata!.verified])
  assert.deepEqual(listed, [['15-34-00', false], ['15-33-00', false], ['15-31-00', true]])

  const dryRun = await make(false, 1).prune({ dryRun: true })
  const { policy, reasons, sources, ...plan } = dryRun
  assert.deepEqual(plan, { dryRun: true, maxBackups: 1, kept: ['backup-2026-01-21T15-34-00', 'backup-2026-01-21T15-31-00'], removed: ['backup-2026-01-21T15-33-00'], keptBecauseVerified: 'backup-2026-01-21T15-31-00' })
  assert.deepEqual(policy, { keepLast: 1 })
  assert.deepEqual(reasons, { 'backup-2026-01-21T15-34-00': ['parmi les 1 plus récents (--keep-last)'], 'backup-2026-01-21T15-31-00': ['le plus récent backup vérifié de cette source, jamais supprimé'] })
  assert.equal(new Set(Object.values(sources)).size, 1, 'one source')
  assert.equal(readdirSync(backupDir).length, 4, 'three backups and history.jsonl')
  const pruned = await make(false, 1).prune()
  assert.deepEqual(pruned.removed, ['backup-2026-01-21T15-33-00'])
  assert.deepEqual(readdirSync(backupDir).sort(), ['backup-2026-01-21T15-31-00', 'backup-2026-01-21T15-34-00', 'history.jsonl'])
})

/** A backup of `source` (engine and path/URL as the metadata records them) taken at `iso`. */
function sourced(iso: string, engine: 'sqlite' | 'postgres', databasePath: string): BackupEntry {
  const id = `backup-${iso.slice(0, 19).replaceAll(':', '-')}`
  return { id, form: 'archive', paths: backupPaths('/backups', id), sealValid: true, metadata: { id, timestamp: iso, engine, databasePath, verified: true, incremental: false, parentId: null } as unknown as BackupMetadata }
}

test('hardening 4: rotation counts per source — with SQLite and PostgreSQL backups in one folder, --keep 2 keeps 2 of each', () => {
  const sqlite = (day: number) => sourced(`2026-02-${String(day).padStart(2, '0')}T03:00:00.000Z`, 'sqlite', '/srv/app/dev.db')
  const postgres = (day: number) => sourced(`2026-02-${String(day).padStart(2, '0')}T04:00:00.000Z`, 'postgres', 'postgresql://app:***@db/app')
  // The PostgreSQL backups are the oldest of the folder: a folder-wide count deleted them all.
  const entries = [sqlite(9), sqlite(8), sqlite(7), sqlite(6), postgres(2), postgres(1)]
  const plan = planRotation(entries, 2)
  assert.deepEqual(plan.remove.map((e) => e.id).sort(), [sqlite(7).id, sqlite(6).id].sort())
  assert.deepEqual(plan.keep.map((e) => e.id).sort(), [sqlite(9).id, sqlite(8).id, postgres(2).id, postgres(1).id].sort())
  assert.equal(plan.sourceOf[postgres(1).id], 'postgres postgresql://app:***@db/app')
})

test('retention by age follows restic: keep-daily keeps the newest of each of the last N days that have a backup', () => {
  const at = (iso: string) => sourced(iso, 'sqlite', '/srv/app/dev.db')
  const entries = [at('2026-03-10T20:00:00.000Z'), at('2026-03-10T08:00:00.000Z'), at('2026-03-09T20:00:00.000Z'), at('2026-03-07T20:00:00.000Z'), at('2026-03-01T20:00:00.000Z'), at('2026-02-14T20:00:00.000Z')]
  const plan = planRotation(entries, { keepDaily: 3, keepMonthly: 2 })
  assert.deepEqual(plan.keep.map((e) => e.id), ['backup-2026-03-10T20-00-00', 'backup-2026-03-09T20-00-00', 'backup-2026-03-07T20-00-00', 'backup-2026-02-14T20-00-00'])
  assert.deepEqual(plan.reasons['backup-2026-03-10T20-00-00'], ['le plus récent du jour 2026-03-10', 'le plus récent du mois 2026-03'])
  assert.deepEqual(plan.reasons['backup-2026-02-14T20-00-00'], ['le plus récent du mois 2026-02'])
  assert.throws(() => planRotation(entries, { keepDaily: 0 }), /garderait rien/)
})
