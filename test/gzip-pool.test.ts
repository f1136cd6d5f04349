import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { gunzipSync } from 'node:zlib'
import { BLOCK_SIZE, GzipPool } from '../scripts/lib/backup/archive/gzip-blocks.ts'

test('a pool limited to fewer blocks at a time (restore leaves cores to its early check) still does every block, in order, and lifting the limit goes on', async () => {
  const pool = new GzipPool({ threads: 2 })
  try {
    // Half random, half repeated: blocks worth a worker (above its start-up threshold) that do compress.
    const blocks = Array.from({ length: 8 }, (_, i) => Buffer.concat([randomBytes(BLOCK_SIZE / 2), Buffer.alloc(BLOCK_SIZE / 2, i)]))
    pool.limit(0)
    const first = blocks.slice(0, 4).map((block) => pool.gzip(Buffer.from(block)))
    pool.limit(pool.size)
    const rest = blocks.slice(4).map((block) => pool.gzip(Buffer.from(block)))
    const members = await Promise.all([...first, ...rest])
    members.forEach((member, i) => assert.ok(gunzipSync(member.data).equals(blocks[i]!), `block ${i}`))
    pool.limit(1)
    const inflated = await Promise.all(members.map((member) => pool.gunzip(member.data)))
    inflated.forEach((block, i) => assert.ok(block.data.equals(blocks[i]!), `block ${i} back`))
  } finally {
    await pool.close()
  }
})
