/**
 * Rotation keeps the newest complete backups, never deletes the newest verified one, and touches
 * nothing but complete backups; prune --dry-run only tells.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { openTestDatabase, tempDir } from './helpers/databases.ts'
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
  assert.deepEqual(ids(planRotation([entry(3), entry(2, { damaged: true }), entry(1, { damaged: true })], 2).remove), ['2026-01-01'])
  assert.deepEqual(planRotation([], 3), { keep: [], remove: [] })
  assert.throws(() => planRotation([entry(1)], 0), /≥ 1/)
})

test('create rotates after each backup, folders and archives alike, and leaves other files alone', async (t) => {
  const db = await openTestDatabase(t, 'sqlite')
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
  assert.deepEqual(dryRun, { dryRun: true, maxBackups: 1, kept: ['backup-2026-01-21T15-34-00', 'backup-2026-01-21T15-31-00'], removed: ['backup-2026-01-21T15-33-00'], keptBecauseVerified: 'backup-2026-01-21T15-31-00' })
  assert.equal(readdirSync(backupDir).length, 4, 'three backups and history.jsonl')
  const pruned = await make(false, 1).prune()
  assert.deepEqual(pruned.removed, ['backup-2026-01-21T15-33-00'])
  assert.deepEqual(readdirSync(backupDir).sort(), ['backup-2026-01-21T15-31-00', 'backup-2026-01-21T15-34-00', 'history.jsonl'])
})
