// Decrypts a backup without the toolkit: node decrypt-backup.mjs <key file> <key record .json> <encrypted file> <output>
// The key record is the backup's wrapped-key record (or any JSON holding it under "encryption"). Format: docs/ENCRYPTION_FORMAT.md.
import { createDecipheriv, createHash } from 'node:crypto'
import { closeSync, fstatSync, openSync, readFileSync, readSync, renameSync, writeSync } from 'node:fs'
const [keyFile, recordFile, inputFile, outputFile] = process.argv.slice(2)
const kek = Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'base64')
const json = JSON.parse(readFileSync(recordFile, 'utf8')), record = json.encryption ?? json
const b64 = (text) => Buffer.from(text, 'base64')
function open(key, nonce, aad, tag, ciphertext) { // returns the plaintext only once the tag is checked
  const d = createDecipheriv('aes-256-gcm', key, nonce).setAAD(aad).setAuthTag(tag)
  const plain = d.update(ciphertext); d.final(); return plain
}
if (createHash('sha256').update(kek).digest('hex').slice(0, 16) !== record.kekId) throw new Error(`wrong key: this backup needs key id ${record.kekId}`)
const dataKey = open(kek, b64(record.wrap.nonce), Buffer.from(`IPMBKENC/1/${record.kekId}`), b64(record.wrap.tag), b64(record.wrap.ciphertext))
const input = openSync(inputFile, 'r'), size = fstatSync(input).size
const header = Buffer.alloc(16); readSync(input, header, 0, 16, 0)
if (size < 32 || header.toString('latin1', 0, 12) !== 'IPMBKENC\x01\x10\x00\x00') throw new Error('not an encrypted backup (version 1)')
const sealed = Buffer.alloc(65536 + 16), nonce = Buffer.alloc(12); header.copy(nonce, 0, 12, 16)
const output = openSync(`${outputFile}.partial`, 'wx', 0o600)
for (let position = 16, index = 0n; position < size || index === 0n; index++) {
  const length = readSync(input, sealed, 0, Math.min(sealed.length, size - position), position)
  position += length
  if (length < 16) throw new Error('truncated')
  nonce.writeBigUInt64BE(index, 4)
  const last = position === size ? 1 : 0
  writeSync(output, open(dataKey, nonce, Buffer.concat([header, Buffer.from([last])]), sealed.subarray(length - 16, length), sealed.subarray(0, length - 16)))
}
closeSync(output); closeSync(input); renameSync(`${outputFile}.partial`, outputFile)
