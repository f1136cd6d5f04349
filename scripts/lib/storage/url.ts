/**
 * From a `--dir` value to a storage: `./backups` or any path → a local folder,
 * `s3://<bucket>/<prefix>` → S3, `azure://<container>/<prefix>` → Azure Blob. The caller passes the
 * environment values in; nothing here reads the variables itself.
 */
import { ToolkitError, USAGE_EXIT_CODE } from '../errors.ts'
import { AzureBlobStorage, type AzureEnvironment } from './azure.ts'
import { FolderStorage } from './folder.ts'
import { S3Storage, type S3Environment } from './s3.ts'
import type { ObjectStorage } from './storage.ts'

export type StorageUrl = { kind: 'folder'; path: string } | { kind: 's3'; bucket: string; prefix: string } | { kind: 'azure'; container: string; prefix: string }

/** Every variable a storage may need; pass the process's values (or a test's). */
export type StorageEnvironment = S3Environment & AzureEnvironment

export interface OpenStorageOptions {
  env: StorageEnvironment
  /** Resolves a relative folder path; the process's working directory when omitted. */
  cwd?: string
  /** Overrides the part/block size (tests). */
  partSize?: number
  /** Requests tried per call (S3 and Azure retries). */
  maxAttempts?: number
}

function normalisePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, '')
  return trimmed === '' ? '' : `${trimmed}/`
}

/**
 * Which storage a URL names. Anything without a scheme, or with `file:`, is a folder. A URL that
 * names none is a usage error (exit 2): the command line is wrong, no operation has started.
 * @example parseStorageUrl('s3://ipm-backups/prod') // { kind: 's3', bucket: 'ipm-backups', prefix: 'prod/' }
 */
export function parseStorageUrl(text: string): StorageUrl {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1]?.toLowerCase()
  if (scheme === undefined || /^[a-z]:[\\/]/i.test(text)) {
    if (text.trim() === '') throw new ToolkitError('dossier de sauvegarde vide', { hint: 'indiquez --dir ./backups, s3://<bucket>/<préfixe> ou azure://<conteneur>/<préfixe>', exitCode: USAGE_EXIT_CODE })
    return { kind: 'folder', path: text }
  }
  if (scheme === 'file') return { kind: 'folder', path: decodeURIComponent(new URL(text).pathname) }
  const rest = text.slice(scheme.length + 3)
  if (/[@?#]/.test(rest)) throw new ToolkitError(`URL de stockage ${scheme}:// invalide : identifiants, « ? » et « # » n’ont pas leur place dans l’URL`, { hint: scheme === 's3' ? 'passez les identifiants par AWS_ACCESS_KEY_ID et AWS_SECRET_ACCESS_KEY' : 'passez les identifiants par AZURE_STORAGE_CONNECTION_STRING', exitCode: USAGE_EXIT_CODE })
  const slash = rest.indexOf('/')
  const name = slash === -1 ? rest : rest.slice(0, slash)
  const prefix = normalisePrefix(slash === -1 ? '' : rest.slice(slash + 1))
  if (scheme === 's3') {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name)) throw new ToolkitError(`nom de bucket S3 invalide « ${name} »`, { hint: '3 à 63 caractères : minuscules, chiffres, « . » et « - » (s3://<bucket>/<préfixe>)', exitCode: USAGE_EXIT_CODE })
    return { kind: 's3', bucket: name, prefix }
  }
  if (scheme === 'azure') {
    if (!/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(name)) throw new ToolkitError(`nom de conteneur Azure invalide « ${name} »`, { hint: '3 à 63 caractères : minuscules, chiffres et « - » (azure://<conteneur>/<préfixe>)', exitCode: USAGE_EXIT_CODE })
    return { kind: 'azure', container: name, prefix }
  }
  throw new ToolkitError(`stockage « ${scheme}:// » inconnu`, { hint: 'utilisez un dossier, s3://<bucket>/<préfixe> ou azure://<conteneur>/<préfixe>', exitCode: USAGE_EXIT_CODE })
}

/**
 * The storage a URL names, built from explicit environment values.
 * @example const storage = openStorage(options.dir, { env: { AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY, AWS_REGION: env.AWS_REGION, AWS_ENDPOINT_URL_S3: env.AWS_ENDPOINT_URL_S3, AZURE_STORAGE_CONNECTION_STRING: env.AZURE_STORAGE_CONNECTION_STRING }, cwd })
 */
export function openStorage(url: string, options: OpenStorageOptions): ObjectStorage {
  const parsed = parseStorageUrl(url)
  const tuning = { ...(options.partSize !== undefined ? { partSize: options.partSize } : {}) }
  switch (parsed.kind) {
    case 'folder':
      return new FolderStorage(parsed.path, options.cwd === undefined ? {} : { cwd: options.cwd })
    case 's3':
      return new S3Storage({ bucket: parsed.bucket, prefix: parsed.prefix, env: options.env, ...tuning, ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}) })
    case 'azure':
      return new AzureBlobStorage({ container: parsed.container, prefix: parsed.prefix, env: options.env, ...tuning, ...(options.maxAttempts !== undefined ? { maxTries: options.maxAttempts } : {}) })
  }
}
