/**
 * tailCollectorSink, the live dashboard's reader of the collector's sink: every execution the app's
 * real collector (instrument) writes is handed over exactly once, across rotations to `.1`, cut
 * lines and the per-read byte budget; what cannot be read is counted, never guessed.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { appendFileSync } from 'node:fs'
import { join } from 'node:path'
import { defer, openTestDatabase, tempDir } from './helpers/databases.ts'
import { collectorOf, instrument } from '../scripts/lib/metrics/collector.ts'
import { tailCollectorSink, type SinkExecution } from '../scripts/lib/metrics/sink-tail.ts'

describe('tailCollectorSink', () => {
  test('follows the real collector across rotations: each execution read once; two rotations between reads are counted as a missed file', async (t) => {
    const db = await openTestDatabase(t, 'sqlite')
    const sink = join(tempDir(t), 'app.metrics.ndjson')
    // A tiny sink: it rotates every few flushes.
    const prisma = instrument(db.prisma, { sink, flushIntervalMs: 60_000, maxBytes: 600 })
    defer(t, () => collectorOf(prisma).close())
    const tail = tailCollectorSink(sink)
    const seen: SinkExecution[] = []
    const first = await tail.read((e) => seen.push(e))
    assert.deepEqual([first.found, seen.length], [false, 0], 'no sink yet')

    let done = 0
    for (let round = 0; round < 12; round++) {
      for (let i = 0; i < 3; i++) await prisma.plan.count({ where: { active: true } })
      done += 3
      await collectorOf(prisma).flush()
      const read = await tail.read((e) => seen.push(e))
      assert.equal(read.missedFiles, 0)
    }
    assert.equal(seen.length, done, 'every execution, once')
    assert.ok(seen.every((e) => e.kind === 'op' && e.fingerprint === 'Plan.count {where:{active:?}}'))

    // Three flushes of 600+ bytes each before the next read: the sink rotated twice, the middle file is gone.
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 8; i++) await prisma.plan.count({ where: { active: true } })
      await collectorOf(prisma).flush()
    }
    const before = seen.length
    const read = await tail.read((e) => seen.push(e))
    assert.equal(read.missedFiles, 1)
    assert.ok(seen.length - before < 24, 'what was lost is not invented')
  })

  test('a line cut mid-append waits for its end; the byte budget leaves a backlog read next time; the first read keeps only executions since `since`', async (t) => {
    const sink = join(tempDir(t), 'app.metrics.ndjson')
    const definition = JSON.stringify({ v: 1, d: 'aaaaaaaaaaaa', k: 'sql', f: 'SELECT ? FROM "Plan"' })
    const event = (at: number) => JSON.stringify([at, 'aaaaaaaaaaaa', 'tenant-a', 1.5, 1, 0])
    appendFileSync(sink, `${definition}\n${event(1_000)}\n${event(5_000)}\n`)
    const tail = tailCollectorSink(sink, { since: 2_000, maxBytesPerRead: 100, chunkBytes: 32 })
    const seen: number[] = []
    const visit = (e: SinkExecution) => void seen.push(e.at)
    await tail.read(visit)
    assert.deepEqual(seen, [5_000], 'the first read: only since 2 000')

    const cut = event(6_000)
    appendFileSync(sink, cut.slice(0, 10))
    await tail.read(visit)
    assert.deepEqual(seen, [5_000])
    appendFileSync(sink, `${cut.slice(10)}\n`)
    await tail.read(visit)
    assert.deepEqual(seen, [5_000, 6_000], 'the cut line, once whole')

    appendFileSync(sink, Array.from({ length: 10 }, (_, i) => `${event(7_000 + i)}\n`).join(''))
    const budget = await tail.read(visit)
    assert.ok(budget.bytes <= 100 && budget.backlogBytes > 0, JSON.stringify(budget))
    while ((await tail.read(visit)).backlogBytes > 0);
    assert.deepEqual(seen, [5_000, 6_000, ...Array.from({ length: 10 }, (_, i) => 7_000 + i)], 'all of them, in order, once')
  })
})
