/** Storage URLs (scripts/lib/storage/url.ts): which backend each names, and the French line when something is missing or wrong. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ToolkitError } from '../scripts/lib/errors.ts'
import { openStorage, parseStorageUrl } from '../scripts/lib/storage/url.ts'
import { maskSecrets } from '../scripts/lib/storage/_errors.ts'
import { partSizeFor } from '../scripts/lib/storage/storage.ts'

test('a path is a folder, s3:// a bucket and prefix, azure:// a container and prefix', () => {
  assert.deepEqual(parseStorageUrl('./backups'), { kind: 'folder', path: './backups' })
  assert.deepEqual(parseStorageUrl('/var/backups/ipm'), { kind: 'folder', path: '/var/backups/ipm' })
  assert.deepEqual(parseStorageUrl('file:///var/backups/ipm'), { kind: 'folder', path: '/var/backups/ipm' })
  assert.deepEqual(parseStorageUrl('C:\\backups'), { kind: 'folder', path: 'C:\\backups' })
  assert.deepEqual(parseStorageUrl('s3://ipm-backups'), { kind: 's3', bucket: 'ipm-backups', prefix: '' })
  assert.deepEqual(parseStorageUrl('s3://ipm-backups/prod/cabinet-a/'), { kind: 's3', bucket: 'ipm-backups', prefix: 'prod/cabinet-a/' })
  assert.deepEqual(parseStorageUrl('azure://ipm-backups/prod'), { kind: 'azure', container: 'ipm-backups', prefix: 'prod/' })
})

test('bad URLs are refused with a French line and a hint, and credentials in a URL are refused', () => {
  const refuse = (url: string, message: RegExp) => assert.throws(() => parseStorageUrl(url), (error: Error) => error instanceof ToolkitError && message.test(error.message) && error.hint !== undefined)
  refuse('ftp://host/x', /^stockage « ftp:\/\/ » inconnu$/)
  refuse('s3://ab/x', /^nom de bucket S3 invalide « ab »$/)
  refuse('s3://Upper/x', /^nom de bucket S3 invalide/)
  refuse('azure://a--b/x', /^nom de conteneur Azure invalide/)
  refuse('s3://KEY:SECRET@bucket/x', /identifiants, « \? » et « # » n’ont pas leur place/)
  refuse('', /^dossier de sauvegarde vide$/)
  assert.throws(() => parseStorageUrl('s3://AKIA:verysecret@bucket/x'), (error: Error) => !error.message.includes('verysecret'))
})

test('missing credentials name the variable to set', () => {
  assert.throws(() => openStorage('s3://ipm-backups/prod', { env: { AWS_REGION: 'eu-west-3' } }), (error: Error) => error instanceof ToolkitError && error.message === 'identifiants S3 manquants pour s3://ipm-backups/prod/' && error.hint === 'définissez AWS_ACCESS_KEY_ID et AWS_SECRET_ACCESS_KEY')
  assert.throws(() => openStorage('s3://ipm-backups/prod', { env: { AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' } }), (error: Error) => error instanceof ToolkitError && error.message === 'région S3 manquante pour s3://ipm-backups/prod/' && /AWS_REGION/.test(error.hint!))
  assert.throws(() => openStorage('s3://ipm-backups/prod', { env: { AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b', AWS_ENDPOINT_URL_S3: 'localhost:9000' } }), /AWS_ENDPOINT_URL_S3 n’est pas une URL http\(s\)/)
  assert.throws(() => openStorage('azure://ipm-backups/prod', { env: {} }), (error: Error) => error instanceof ToolkitError && error.message === 'identifiants Azure manquants pour azure://ipm-backups/prod/' && /AZURE_STORAGE_CONNECTION_STRING/.test(error.hint!))
  assert.throws(() => openStorage('azure://ipm-backups/prod', { env: { AZURE_STORAGE_CONNECTION_STRING: 'AccountName=x;AccountKey=c2VjcmV0LWtleS1ub3QtdG8tc2hvdw==' } }), (error: Error) => error.message.startsWith('AZURE_STORAGE_CONNECTION_STRING invalide') && !error.message.includes('c2VjcmV0LWtleS1ub3QtdG8tc2hvdw'))
  assert.equal(openStorage('./backups', { env: {}, cwd: '/srv/ipm' }).location, '/srv/ipm/backups')
  assert.equal(openStorage('s3://ipm-backups/prod', { env: { AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b', AWS_REGION: 'eu-west-3' } }).location, 's3://ipm-backups/prod/')
})

test('secrets are masked in any text, raw or URL-encoded, and in key=value shapes', () => {
  const secret = 'abc/DEF+ghi=='
  assert.equal(maskSecrets(`failed with ${secret} and ${encodeURIComponent(secret)}`, [secret]), 'failed with **** and ****')
  assert.equal(maskSecrets('AccountName=dev;AccountKey=zzz;BlobEndpoint=http://x', []), 'AccountName=dev;AccountKey=****;BlobEndpoint=http://x')
  assert.equal(maskSecrets('https://h/b?X-Amz-Signature=deadbeef&sig=cafe', []), 'https://h/b?X-Amz-Signature=****&sig=****')
})

test('part size is max(8 MiB, size / 9000)', () => {
  assert.equal(partSizeFor(undefined), 8 * 1024 * 1024)
  assert.equal(partSizeFor(1024), 8 * 1024 * 1024)
  assert.equal(partSizeFor(100 * 1024 ** 3), Math.ceil((100 * 1024 ** 3) / 9000))
})
