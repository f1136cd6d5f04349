import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatAmount } from '../scripts/lib/progress.ts'
import { formatBytes, formatDuration } from '../scripts/lib/format.ts'

test('progress amounts name their unit once', () => {
  assert.equal(formatAmount({ label: 'archive', done: 3 * 1024 * 1024, unit: 'bytes' }), '3.00 MB')
  assert.equal(formatAmount({ label: 'archive', done: 1024, total: 4096, unit: 'bytes' }), '1.00 KB / 4.00 KB')
  assert.equal(formatAmount({ label: 'Dossier', done: 1200, total: 5000, unit: 'rows' }), '1,200 / 5,000 rows')
  assert.equal(formatAmount({ label: 'Dossier', done: 7, unit: 'rows' }), '7 rows')
})

test('sizes and durations read the way the spec prints them', () => {
  assert.equal(formatBytes(512), '512 B')
  assert.equal(formatBytes(2 * 1024 * 1024), '2.00 MB')
  assert.equal(formatDuration(950), '950ms')
  assert.equal(formatDuration(12_300), '12.3s')
  assert.equal(formatDuration(192_000), '3m12s')
  assert.equal(formatDuration(2 * 3_600_000 + 5 * 60_000), '2h05m')
})
