/**
 * The file every export is written through (fs/hashed-file.ts): what reaches the disk, its size and
 * its SHA-256 (judged by `sha256sum`), its write-behind syncs (judged by `strace`), and the size of
 * the batches a TextSink hands to it.
 */
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { BATCH_CHARACTERS, HashedFile, TextSink } from '../scripts/lib/fs/hashed-file.ts'
import { defer, tempDir } from './helpers/databases.ts'
import { requireJudge } from './helpers/judges.ts'

test('text and bytes written in many pieces reach the disk whole, in order, with the size and SHA-256 sha256sum finds', async (t) => {
  const path = join(tempDir(t, 'ipm-hashed-file-'), 'out.txt')
  const out = await HashedFile.create(path)
  const sink = new TextSink(out)
  const expected: Buffer[] = []
  // Rows of one-, two-, three- and four-byte UTF-8 characters, so that characters straddle the
  // 512 KiB scratch buffer's end, with raw bytes between them, about 3 MB in all.
  for (let i = 0; i < 40_000; i++) {
    const row = `${i};Dossier d’appel n°${i} — clôturé 🗂;${'x'.repeat(i % 97)}\r\n`
    sink.push(row)
    expected.push(Buffer.from(row, 'utf8'))
    if (sink.full) await sink.flush()
    if (i % 9_999 === 0) {
      await sink.flush()
      const bytes = Buffer.from([0, 255, 10, i % 256])
      out.write(bytes)
      expected.push(bytes)
    }
  }
  await sink.flush()
  const written = await out.commit()
  const whole = Buffer.concat(expected)
  assert.ok(readFileSync(path).equals(whole), 'the file holds exactly what was written')
  assert.equal(written.size, whole.length)
  assert.equal(written.sha256, execFileSync('sha256sum', [path], { encoding: 'utf8' }).split(' ')[0])
})

test('a file with nothing written is empty, and its hash is that of no bytes', async (t) => {
  const path = join(tempDir(t, 'ipm-hashed-file-'), 'empty.txt')
  const written = await (await HashedFile.create(path)).commit()
  assert.deepEqual(written, { size: 0, sha256: execFileSync('sha256sum', [path], { encoding: 'utf8' }).split(' ')[0] })
  assert.equal(readFileSync(path).length, 0)
})

test('a TextSink hands its stream batches that stay small even in two-byte text (no string in V8’s large-object space)', async () => {
  const batches: number[] = []
  const out = new Writable({
    decodeStrings: false,
    write(chunk: string, _encoding, callback) {
      batches.push(chunk.length)
      callback()
    },
  })
  const sink = new TextSink(out)
  // 28 % of the rows of a real cabinet hold a ’ (U+2019): the joined batch is a two-byte string.
  const row = '"Litige d’un bail commercial, Lyon 3e",'.repeat(5) + '\r\n'
  for (let i = 0; i < 20_000; i++) {
    sink.push(row)
    if (sink.full) await sink.flush()
  }
  await sink.flush()
  assert.ok(batches.length > 1)
  // Past 128 KB (64 Ki two-byte characters) V8 maps a string on its own and unmaps it at the next GC.
  const largest = Math.max(...batches)
  assert.ok(largest <= BATCH_CHARACTERS + row.length, `largest batch ${largest} characters`)
  assert.ok(largest * 2 < 128 * 1024, `largest batch ${largest} characters, ${largest * 2} bytes as two-byte text`)
})

test('a disk that fills up fails the commit with ENOSPC, even when the last bytes were still in the buffer', async (t) => {
  const mountPoint = join(tempDir(t, 'ipm-hashed-file-'), 'small-disk')
  mkdirSync(mountPoint)
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mountPoint])
  if (mounted.status !== 0) return t.skip('cannot mount a tmpfs here (needs root): the no-space path is untested')
  defer(t, () => spawnSync('umount', [mountPoint]))
  // 100 KB: less than the 512 KiB buffer, so nothing reaches the disk before the commit.
  const out = await HashedFile.create(join(mountPoint, 'big.txt'))
  out.write('x'.repeat(100_000))
  await assert.rejects(out.commit(), (error: NodeJS.ErrnoException) => error.code === 'ENOSPC')
  await out.abort()
})

test('a durable file is synced as it grows, so the commit only waits for its last part; a file that is not durable is never synced', { skip: requireJudge('strace', 'sha256sum') }, (t) => {
  const dir = tempDir(t, 'ipm-hashed-file-')
  // A child writes 200 MiB in 1 MiB pieces under strace, which lists its syncs in order.
  const write = (name: string, durable: boolean) => {
    const path = join(dir, name)
    const script = `import { HashedFile } from ${JSON.stringify(join(import.meta.dirname, '..', 'scripts', 'lib', 'fs', 'hashed-file.ts'))}
const out = await HashedFile.create(${JSON.stringify(path)}, { durable: ${durable} })
const piece = Buffer.alloc(1024 * 1024, 0x61)
for (let i = 0; i < 200; i++) if (!out.write(piece)) await new Promise((resolve) => out.once('drain', resolve))
console.log((await out.commit()).sha256)`
    const traced = spawnSync('strace', ['-f', '-e', 'trace=fsync,fdatasync', '-o', `${path}.strace`, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' })
    assert.equal(traced.status, 0, traced.stderr)
    assert.equal(traced.stdout.trim(), execFileSync('sha256sum', [path], { encoding: 'utf8' }).split(' ')[0])
    return readFileSync(`${path}.strace`, 'utf8').split('\n').flatMap((line) => /\b(fsync|fdatasync)\(/.exec(line)?.[1] ?? [])
  }
  const durable = write('durable.bin', true)
  assert.ok(durable.filter((call) => call === 'fdatasync').length >= 2, `syncs of the durable file: ${durable.join(', ')}`)
  assert.equal(durable.at(-1), 'fsync', 'the commit ends with an fsync')
  assert.deepEqual(write('staging.bin', false), [])
})
