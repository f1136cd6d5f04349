/**
 * Encryption (scripts/lib/encryption): round trips at the chunk boundaries, every tampering refused
 * before the tampered chunk's plaintext is emitted, keys from a file, the environment or a passphrase,
 * rewrap, and docs/decrypt-backup.mjs (plain node:crypto) as the independent judge of the format.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes, createHash } from 'node:crypto'
import { chmodSync, readFileSync, statSync, writeFileSync, existsSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { tempDir } from './helpers/databases.ts'
import { REPO_ROOT } from './helpers/cli.ts'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { createDecryptStream, createEncryptStream } from '../scripts/lib/encryption/streams.ts'
import { CHUNK_SIZE, HEADER_SIZE, SEALED_CHUNK_SIZE, encryptedSize } from '../scripts/lib/encryption/format.ts'
import { createDataKey, generateKeyFile, readKeyFile, resolveKeySource, rewrapDataKey, unwrapDataKey, type KeySource } from '../scripts/lib/encryption/keys.ts'

const FAST_SCRYPT = { N: 2 ** 12, r: 8, p: 1 }

/** Feeds `input` in uneven pieces, as a network would. */
function pieces(input: Buffer, size = 7_001): Readable {
  return Readable.from((function* () {
    for (let offset = 0; offset < input.length; offset += size) yield input.subarray(offset, offset + size)
  })())
}

async function encrypt(plaintext: Buffer, dataKey: Buffer): Promise<Buffer> {
  const out: Buffer[] = []
  await pipeline(pieces(plaintext), createEncryptStream(dataKey), async function* (source) {
    for await (const chunk of source) out.push(chunk as Buffer)
  })
  return Buffer.concat(out)
}

/** What the decrypting stream emitted before it stopped, and why it stopped. */
async function decrypt(ciphertext: Buffer, dataKey: Buffer): Promise<{ emitted: Buffer; error: unknown }> {
  const out: Buffer[] = []
  let error: unknown
  try {
    await pipeline(pieces(ciphertext), createDecryptStream(dataKey), async function* (source) {
      for await (const chunk of source) out.push(chunk as Buffer)
    })
  } catch (caught) {
    error = caught
  }
  return { emitted: Buffer.concat(out), error }
}

for (const size of [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 5 * 1024 * 1024 + 123]) {
  test(`round trip of ${size} bytes: exact bytes back, ciphertext of the announced size`, async () => {
    const plaintext = randomBytes(size)
    const dataKey = randomBytes(32)
    const ciphertext = await encrypt(plaintext, dataKey)
    assert.equal(ciphertext.length, encryptedSize(size))
    const { emitted, error } = await decrypt(ciphertext, dataKey)
    assert.equal(error, undefined)
    assert.ok(emitted.equals(plaintext))
  })
}

test('two encryptions of the same bytes under the same key differ (random nonce prefix)', async () => {
  const dataKey = randomBytes(32)
  const plaintext = Buffer.alloc(1000, 7)
  assert.notDeepEqual(await encrypt(plaintext, dataKey), await encrypt(plaintext, dataKey))
})

test('every tampering is refused, and no plaintext of the tampered chunk (or after it) is emitted', async () => {
  const dataKey = randomBytes(32)
  const plaintext = randomBytes(3 * CHUNK_SIZE + 500) // chunks 0, 1, 2 full, chunk 3 (last) of 500 bytes
  const ciphertext = await encrypt(plaintext, dataKey)
  const chunkAt = (i: number) => HEADER_SIZE + i * SEALED_CHUNK_SIZE
  const flip = (position: number) => {
    const copy = Buffer.from(ciphertext)
    copy[position]! ^= 0x01
    return copy
  }
  const cases: { name: string; bytes: Buffer; key?: Buffer; goodChunks: number; chunk: number }[] = [
    { name: 'truncated at a chunk boundary', bytes: ciphertext.subarray(0, chunkAt(3)), goodChunks: 2, chunk: 2 },
    { name: 'truncated inside the last chunk', bytes: ciphertext.subarray(0, ciphertext.length - 1), goodChunks: 3, chunk: 3 },
    { name: 'truncated inside the header', bytes: ciphertext.subarray(0, 10), goodChunks: 0, chunk: 0 },
    { name: 'truncated to the header alone', bytes: ciphertext.subarray(0, HEADER_SIZE), goodChunks: 0, chunk: 0 },
    { name: 'chunks 0 and 1 swapped', bytes: Buffer.concat([ciphertext.subarray(0, HEADER_SIZE), ciphertext.subarray(chunkAt(1), chunkAt(2)), ciphertext.subarray(chunkAt(0), chunkAt(1)), ciphertext.subarray(chunkAt(2))]), goodChunks: 0, chunk: 0 },
    { name: 'chunk 1 repeated in place of chunk 2', bytes: Buffer.concat([ciphertext.subarray(0, chunkAt(2)), ciphertext.subarray(chunkAt(1), chunkAt(2)), ciphertext.subarray(chunkAt(3))]), goodChunks: 2, chunk: 2 },
    { name: 'a bit flipped in chunk 1', bytes: flip(chunkAt(1) + 1234), goodChunks: 1, chunk: 1 },
    { name: 'a bit flipped in chunk 2’s tag', bytes: flip(chunkAt(3) - 1), goodChunks: 2, chunk: 2 },
    { name: 'a bit flipped in the nonce prefix of the header', bytes: flip(HEADER_SIZE - 1), goodChunks: 0, chunk: 0 },
    { name: 'one byte appended', bytes: Buffer.concat([ciphertext, Buffer.from([0])]), goodChunks: 3, chunk: 3 },
    { name: 'a whole chunk appended', bytes: Buffer.concat([ciphertext, ciphertext.subarray(chunkAt(1), chunkAt(2))]), goodChunks: 3, chunk: 3 },
    { name: 'a wrong data key', bytes: ciphertext, key: randomBytes(32), goodChunks: 0, chunk: 0 },
  ]
  for (const c of cases) {
    const { emitted, error } = await decrypt(c.bytes, c.key ?? dataKey)
    assert.ok(error instanceof ToolkitError, `${c.name}: refused`)
    assert.match(error.message, new RegExp(`^déchiffrement refusé au bloc ${c.chunk} : `), c.name)
    assert.ok(emitted.equals(plaintext.subarray(0, c.goodChunks * CHUNK_SIZE)), `${c.name}: exactly the ${c.goodChunks} verified chunks were emitted`)
  }
  const magic = await decrypt(flip(0), dataKey)
  assert.equal((magic.error as Error).message, 'déchiffrement refusé : ce fichier n’est pas une sauvegarde chiffrée par cet outil')
  assert.equal(magic.emitted.length, 0)
})

test('keygen writes a 0600 key file atomically and refuses to overwrite one', (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'backup.key')
  const { keyId } = generateKeyFile(path)
  assert.equal(statSync(path).mode & 0o777, 0o600)
  const text = readFileSync(path, 'utf8')
  assert.match(text, /^[A-Za-z0-9+/]{43}=\n$/)
  assert.equal(keyId, createHash('sha256').update(Buffer.from(text.trim(), 'base64')).digest('hex').slice(0, 16))
  assert.throws(() => generateKeyFile(path), (error: Error) => error instanceof ToolkitError && error.message === `le fichier de clé ${path} existe déjà`)
  assert.equal(readFileSync(path, 'utf8'), text, 'the existing key is untouched')
  assert.deepEqual(readFileSync(path, 'utf8').length, 45)
})

test('key sources: a key file, BACKUP_ENCRYPTION_KEY, BACKUP_PASSPHRASE, one at a time, each checked', (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'k')
  generateKeyFile(path)
  const fromFile = resolveKeySource({ env: {}, keyFile: path })
  assert.equal(fromFile?.kind, 'key')
  const key = randomBytes(32).toString('base64')
  const fromEnv = resolveKeySource({ env: { BACKUP_ENCRYPTION_KEY: key } })
  assert.ok(fromEnv?.kind === 'key' && fromEnv.key.equals(Buffer.from(key, 'base64')))
  assert.equal(resolveKeySource({ env: { BACKUP_PASSPHRASE: 'correct horse' } })?.kind, 'passphrase')
  assert.equal(resolveKeySource({ env: {} }), undefined)
  assert.throws(() => resolveKeySource({ env: { BACKUP_ENCRYPTION_KEY: key, BACKUP_PASSPHRASE: 'x' } }), /^ToolkitError: plusieurs clés de chiffrement sont fournies \(BACKUP_ENCRYPTION_KEY, BACKUP_PASSPHRASE\)$/)
  const shortKey = randomBytes(16).toString('base64')
  assert.throws(() => resolveKeySource({ env: { BACKUP_ENCRYPTION_KEY: shortKey } }), (error: Error) => error.message === 'BACKUP_ENCRYPTION_KEY ne contient pas une clé valide (32 octets en base64 attendus)' && !error.message.includes(shortKey))
  chmodSync(path, 0o640)
  assert.throws(() => readKeyFile(path), (error: Error) => error instanceof ToolkitError && error.message.endsWith('est lisible par d’autres utilisateurs (mode 640)') && error.hint === `chmod 600 ${path}`)
  chmodSync(path, 0o600)
  symlinkSync(path, join(dir, 'link'))
  assert.throws(() => readKeyFile(join(dir, 'link')), /n’est pas un fichier ordinaire/)
  assert.throws(() => readKeyFile(join(dir, 'missing')), /est introuvable/)
})

test('a wrong key is one clear line naming the expected key id, with no key material in it', async () => {
  const right: KeySource = { kind: 'key', key: randomBytes(32), origin: 'BACKUP_ENCRYPTION_KEY' }
  const wrong: KeySource = { kind: 'key', key: randomBytes(32), origin: 'le fichier de clé /tmp/k' }
  const { record } = await createDataKey(right)
  await assert.rejects(unwrapDataKey(record, wrong), (error: Error) => {
    assert.ok(error instanceof ToolkitError)
    assert.doesNotMatch(error.message, /\n/)
    assert.match(error.message, new RegExp(`^mauvaise clé : le fichier de clé /tmp/k a l’identifiant [0-9a-f]{16}, cette sauvegarde demande ${record.kekId}$`))
    for (const secret of [right.key, wrong.key]) for (const encoding of ['base64', 'hex'] as const) assert.ok(!`${error.message} ${error.hint}`.includes(secret.toString(encoding)))
    return true
  })
  await assert.rejects(unwrapDataKey(record, { kind: 'passphrase', passphrase: 'x', origin: 'BACKUP_PASSPHRASE' }), /^ToolkitError: cette sauvegarde est chiffrée par une clé, pas par une phrase de passe$/)
  const tampered = { ...record, wrap: { ...record.wrap, tag: Buffer.alloc(16).toString('base64') } }
  await assert.rejects(unwrapDataKey(tampered, right), /fiche de clé altérée/)
  await assert.rejects(unwrapDataKey({ ...record, version: 2 }, right), /^ToolkitError: fiche de clé de la sauvegarde invalide : version 2 inconnue$/)
})

test('passphrase: scrypt with the record’s salt and cost; a wrong passphrase is refused; the default cost works', async () => {
  const source: KeySource = { kind: 'passphrase', passphrase: 'Cabinet Dupont — 2026 ✓', origin: 'BACKUP_PASSPHRASE' }
  const { dataKey, record } = await createDataKey(source, { scryptCost: FAST_SCRYPT })
  assert.equal(record.kdf?.name, 'scrypt')
  assert.equal(record.kdf?.N, FAST_SCRYPT.N)
  assert.ok((await unwrapDataKey(JSON.parse(JSON.stringify(record)), source)).equals(dataKey))
  // NFC: the same passphrase typed with a decomposed accent opens it too.
  assert.ok((await unwrapDataKey(record, { ...source, passphrase: source.passphrase.normalize('NFD') })).equals(dataKey))
  await assert.rejects(unwrapDataKey(record, { ...source, passphrase: 'Cabinet Dupont' }), /^ToolkitError: phrase de passe incorrecte pour cette sauvegarde$/)
  await assert.rejects(unwrapDataKey(record, { kind: 'key', key: randomBytes(32), origin: 'x' }), /chiffrée par une phrase de passe/)
  const slow = await createDataKey(source)
  assert.deepEqual({ N: slow.record.kdf?.N, r: slow.record.kdf?.r, p: slow.record.kdf?.p }, { N: 131072, r: 8, p: 1 })
  assert.ok((await unwrapDataKey(slow.record, source)).equals(slow.dataKey))
  assert.ok(!JSON.stringify(slow.record).includes(source.passphrase))
})

test('rewrap: the same data key under a new key, the old key refused, the data untouched and readable', async () => {
  const oldKey: KeySource = { kind: 'key', key: randomBytes(32), origin: 'old' }
  const newKey: KeySource = { kind: 'key', key: randomBytes(32), origin: 'new' }
  const { dataKey, record } = await createDataKey(oldKey)
  const plaintext = randomBytes(100_000)
  const ciphertext = await encrypt(plaintext, dataKey)
  const rewrapped = await rewrapDataKey(record, oldKey, newKey)
  assert.notEqual(rewrapped.kekId, record.kekId)
  await assert.rejects(unwrapDataKey(rewrapped, oldKey), /^ToolkitError: mauvaise clé/)
  const { emitted, error } = await decrypt(ciphertext, await unwrapDataKey(rewrapped, newKey))
  assert.equal(error, undefined)
  assert.ok(emitted.equals(plaintext))
  // Key to passphrase and back.
  const phrase: KeySource = { kind: 'passphrase', passphrase: 'p', origin: 'BACKUP_PASSPHRASE' }
  const viaPhrase = await rewrapDataKey(rewrapped, newKey, phrase, { scryptCost: FAST_SCRYPT })
  assert.ok((await unwrapDataKey(await rewrapDataKey(viaPhrase, phrase, oldKey), oldKey)).equals(dataKey))
  await assert.rejects(rewrapDataKey(record, newKey, oldKey), /mauvaise clé/)
})

test('docs/decrypt-backup.mjs (node:crypto only) decrypts what the library wrote, and refuses a flipped bit', async (t) => {
  const dir = tempDir(t)
  const keyFile = join(dir, 'backup.key')
  generateKeyFile(keyFile)
  for (const size of [0, CHUNK_SIZE, 3 * CHUNK_SIZE + 17]) {
    const plaintext = randomBytes(size)
    const { dataKey, record } = await createDataKey(readKeyFile(keyFile))
    const encrypted = join(dir, `archive-${size}.enc`)
    writeFileSync(encrypted, await encrypt(plaintext, dataKey))
    const metadata = join(dir, `metadata-${size}.json`)
    writeFileSync(metadata, JSON.stringify({ id: 'backup-x', encryption: record }))
    const output = join(dir, `restored-${size}`)
    const run = spawnSync('node', [join(REPO_ROOT, 'docs/decrypt-backup.mjs'), keyFile, metadata, encrypted, output], { encoding: 'utf8' })
    assert.equal(run.status, 0, run.stderr)
    assert.ok(readFileSync(output).equals(plaintext), `${size} bytes`)
    if (size > 0) {
      const bytes = readFileSync(encrypted)
      bytes[bytes.length - 20]! ^= 0x80
      writeFileSync(encrypted, bytes)
      const refused = spawnSync('node', [join(REPO_ROOT, 'docs/decrypt-backup.mjs'), keyFile, metadata, encrypted, `${output}-tampered`], { encoding: 'utf8' })
      assert.notEqual(refused.status, 0)
      assert.match(refused.stderr, /Unsupported state or unable to authenticate data/)
      assert.equal(existsSync(`${output}-tampered`), false)
    }
  }
})
