import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { parseInstant } from '../scripts/lib/replication/instant.ts'

test('parseInstant reads ISO instants with Z or an offset, to the millisecond', () => {
  assert.equal(parseInstant('2026-03-01T14:05:00+01:00').toISOString(), '2026-03-01T13:05:00.000Z')
  assert.equal(parseInstant('2026-03-01 13:05:07.123456Z').toISOString(), '2026-03-01T13:05:07.123Z')
  assert.equal(parseInstant('2026-03-01T08:05-0500').toISOString(), '2026-03-01T13:05:00.000Z')
  assert.equal(parseInstant(' 2026-03-01T15:05:00+02 ').toISOString(), '2026-03-01T13:05:00.000Z')
  assert.equal(parseInstant('2026-03-01T10:15:00+01:00').toISOString(), '2026-03-01T09:15:00.000Z')
  assert.equal(parseInstant('2026-03-01T09:15:00.250Z').toISOString(), '2026-03-01T09:15:00.250Z')
  assert.equal(parseInstant('2026-03-01T10:15Z').toISOString(), '2026-03-01T10:15:00.000Z')
})

test('parseInstant refuses text without an offset, unreadable text and impossible dates, in one French line', () => {
  const refused = (text: string, message: string) =>
    assert.throws(() => parseInstant(text), (error: unknown) => error instanceof ToolkitError && error.message === message && error.exitCode === 2 && /ISO 8601|Vérifiez/.test(error.hint ?? ''))
  refused('2026-03-01T14:05:00', 'Instant sans fuseau horaire refusé : "2026-03-01T14:05:00".')
  refused('2026-03-01 14:05', 'Instant sans fuseau horaire refusé : "2026-03-01 14:05".')
  refused('2026-03-01', 'Instant illisible : "2026-03-01".')
  refused('hier soir', 'Instant illisible : "hier soir".')
  refused('2026-02-30T10:00:00Z', 'Instant impossible : "2026-02-30T10:00:00Z".')
  refused('2026-03-01T24:00:00Z', 'Instant impossible : "2026-03-01T24:00:00Z".')
})
