/**
 * The archives' gzip members made by libdeflate (backup/archive/libdeflate.c) or, without it, by
 * zlib: the build has the binding and this machine's pools use it; members of either codec are read
 * by zlib and by the other codec; a damaged member is refused with a reason; GNU tar reads archives
 * of either codec, and the built tool's, to the bytes that went in.
 * Which codec made a member is read in its header: libdeflate writes OS 255, zlib OS 3 (Unix).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync, gzipSync } from 'node:zlib'
import { ArchiveWriter } from '../scripts/lib/backup/archive/archive.ts'
import { BLOCK_SIZE, GzipPool } from '../scripts/lib/backup/archive/gzip-blocks.ts'
import { compileLibdeflateBinding, libdeflateBinding, LIBDEFLATE_BINDING, LIBDEFLATE_SOURCE } from '../scripts/lib/backup/archive/libdeflate.ts'
import { PROJECT_ROOT } from '../scripts/lib/environment.ts'
import type { BackupMetadata } from '../scripts/lib/backup/metadata.ts'
import { REPO_ROOT } from './helpers/cli.ts'
import { tempDir } from './helpers/databases.ts'
import { gzipMemberStarts, run } from './helpers/backup.ts'
import { requireJudge } from './helpers/judges.ts'
import { nextVersionOf } from './helpers/native.ts'

const LIBDEFLATE_OS = 0xff
const ZLIB_OS = 3
const ZLIB = { unavailable: 'test' } as const

/** Blocks of each path: empty, small enough for this thread (no worker), and a whole block half random (a worker's). */
function sampleBlocks(): Buffer[] {
  const text = Buffer.from('Dossier;Client;Cabinet Dupont & Associés;2026-01-21\n'.repeat(2000))
  return [Buffer.alloc(0), text, Buffer.concat([randomBytes(BLOCK_SIZE / 2), Buffer.alloc(BLOCK_SIZE / 2, 7)])]
}

test('the build has the libdeflate binding, and a pool made without options uses it', { skip: requireJudge('libdeflate') }, async () => {
  const choice = libdeflateBinding()
  assert.ok('path' in choice, `libdeflate is set aside: ${'unavailable' in choice ? choice.unavailable : ''}`)
  const pool = new GzipPool({ threads: 1 })
  try {
    for (const block of sampleBlocks()) assert.equal((await pool.gzip(Buffer.from(block))).data[9], LIBDEFLATE_OS)
  } finally {
    await pool.close()
  }
})

test('without a C compiler the build says why and pools use zlib; a binding built from another libdeflate.c (a git pull without npm run build) is left unused', (t) => {
  const root = tempDir(t, 'ipm-binding-')
  assert.equal(compileLibdeflateBinding(PROJECT_ROOT, root, { CC: 'no-such-compiler' }), 'compilateur C introuvable (no-such-compiler)')
  assert.ok(!existsSync(join(root, LIBDEFLATE_BINDING)))
  assert.match((libdeflateBinding(join(root, LIBDEFLATE_BINDING)) as { unavailable: string }).unavailable, /absent \(npm run build\)$/)
  const source = nextVersionOf(root, LIBDEFLATE_SOURCE)
  assert.equal(compileLibdeflateBinding(root, root), undefined)
  const library = join(root, LIBDEFLATE_BINDING)
  assert.deepEqual(libdeflateBinding(library), { unavailable: `${library} construit d’une autre source (npm run build)` })
  if (!requireJudge('libdeflate')) {
    const current = libdeflateBinding(library, source)
    assert.ok('path' in current, 'the same binding against its own source')
    assert.equal(current.path, library)
    assert.equal(typeof current.binding.gzip, 'function')
  }
})

test('members of either codec, at levels 1, 6 and 9, inflate to their block through zlib and through the other codec', { skip: requireJudge('libdeflate') }, async () => {
  const blocks = sampleBlocks()
  for (const level of [1, 6, 9]) {
    const pools = { libdeflate: new GzipPool({ threads: 2, level }), zlib: new GzipPool({ threads: 2, level, codec: ZLIB }) }
    try {
      for (const [maker, reader] of [['libdeflate', 'zlib'], ['zlib', 'libdeflate']] as const) {
        for (const [i, block] of blocks.entries()) {
          const member = (await pools[maker].gzip(Buffer.from(block))).data
          assert.equal(member[9], maker === 'libdeflate' ? LIBDEFLATE_OS : ZLIB_OS, `${maker} made block ${i} at level ${level}`)
          assert.ok(gunzipSync(member).equals(block), `zlib reads ${maker}'s block ${i} at level ${level}`)
          assert.ok((await pools[reader].gunzip(member)).data.equals(block), `${reader} reads ${maker}'s block ${i} at level ${level}`)
        }
      }
    } finally {
      await Promise.all(Object.values(pools).map((pool) => pool.close()))
    }
  }
})

test('libdeflate refuses a damaged member, bytes after it, and leaves a member announcing more than a block to zlib', { skip: requireJudge('libdeflate') }, async () => {
  const pool = new GzipPool({ threads: 1 })
  try {
    const block = sampleBlocks()[1]!
    const member = (await pool.gzip(Buffer.from(block))).data
    const damaged = Buffer.from(member)
    damaged[Math.floor(damaged.length / 2)]! ^= 0x40
    await assert.rejects(pool.gunzip(damaged), /^Error: libdeflate: bad data$/)
    // Bytes after the member whose last four repeat its ISIZE: only the whole-input check sees them.
    const trailing = Buffer.concat([member, Buffer.alloc(4), member.subarray(-4)])
    await assert.rejects(pool.gunzip(trailing), /^Error: libdeflate: trailing bytes$/)
    // ISIZE of almost 4 GiB: not allocated, zlib reads the member and finds the length wrong.
    const lying = Buffer.from(gzipSync(Buffer.from('court')))
    lying.writeUInt32LE(0xffff_ff00, lying.length - 4)
    await assert.rejects(pool.gunzip(lying), /incorrect length check/)
  } finally {
    await pool.close()
  }
})

test('GNU tar reads archives of either codec to the files that went in, and the built tool writes libdeflate\'s', { skip: requireJudge('libdeflate', 'sqlite3', 'tar', 'sha256sum') }, async (t) => {
  const dir = tempDir(t, 'ipm-libdeflate-')
  const files = { 'texte.txt': Buffer.from(randomBytes(3 << 20).toString('hex')), 'petit.txt': Buffer.from('Cabinet Dupont\n') }
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes)
  for (const [codec, os] of [['libdeflate', LIBDEFLATE_OS], ['zlib', ZLIB_OS]] as const) {
    const pool = new GzipPool({ threads: 2, ...(codec === 'zlib' ? { codec: ZLIB } : {}) })
    const archive = join(dir, `${codec}.tar.gz`)
    try {
      const writer = await ArchiveWriter.create(archive, { pool })
      for (const name of Object.keys(files)) void writer.addFile(`${codec}/${name}`, join(dir, name), new Date())
      await writer.finish()
    } finally {
      await pool.close()
    }
    assertMembersOf(archive, os, codec)
    run('tar', ['-xzf', archive, '-C', dir])
    for (const [name, bytes] of Object.entries(files)) assert.ok(readFileSync(join(dir, codec, name)).equals(bytes), `${codec}: ${name}`)
  }

  // The built tool: its worker threads run codeBlock from its bundled text.
  const database = join(dir, 'cabinet.db')
  run('sqlite3', [database, `CREATE TABLE "Dossier" ("id" INTEGER PRIMARY KEY, "titre" TEXT NOT NULL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) INSERT INTO "Dossier" SELECT i, 'Dossier ' || hex(randomblob(24)) FROM n;`])
  const backups = join(dir, 'backups')
  const result = spawnSync(process.execPath, [join(REPO_ROOT, 'dist', 'advanced-backup.mjs'), 'create', '--quiet', '--database', `file:${database}`, '--dir', backups], { cwd: REPO_ROOT, encoding: 'utf8' })
  assert.equal(result.status, 0, result.stderr)
  const archive = join(backups, readdirSync(backups).find((name) => name.endsWith('.tar.gz'))!)
  assertMembersOf(archive, LIBDEFLATE_OS, 'the built tool')
  const metadata = JSON.parse(readFileSync(archive.replace(/\.tar\.gz$/, '.metadata.json'), 'utf8')) as BackupMetadata
  const extracted = join(dir, 'extracted')
  run('mkdir', [extracted])
  run('tar', ['-xzf', archive, '-C', extracted])
  const sums = metadata.files.map((file) => `${file.sha256}  ${metadata.id}/${file.path}`).join('\n') + '\n'
  const check = spawnSync('sha256sum', ['-c', '--strict', '-'], { cwd: extracted, input: sums, encoding: 'utf8' })
  assert.equal(check.status, 0, check.stdout + check.stderr)
  assert.equal(check.stdout.trim().split('\n').length, metadata.files.length)
})

/** Every member of `archive` (more than two) was made by the codec that writes `os`. */
function assertMembersOf(archive: string, os: number, maker: string): void {
  const bytes = readFileSync(archive)
  const starts = gzipMemberStarts(archive)
  assert.ok(starts.length > 2, `${maker}: several members`)
  for (const start of starts) assert.equal(bytes[start + 9], os, `${maker}: the member at byte ${start}`)
}
