/**
 * An Azure Blob container as object storage, under a name prefix. A put stages the body as blocks
 * of partSizeFor(size) (two in flight) and commits the block list only after the last one, with
 * our SHA-256 as the blob's `sha256` metadata: until that commit nothing is visible, and a killed put
 * leaves only uncommitted blocks (Azure drops them after 7 days; sweepIncompleteUploads sooner).
 *
 * The SDK (~0.6 s of CPU to load) is loaded when the first Azure storage is built, not by this
 * module. Its own parser checks the connection string then, and openStorage is synchronous, so its
 * CommonJS build is required rather than imported.
 */
import { createRequire } from 'node:module'
import type * as AzureBlobSdk from '@azure/storage-blob'
import type { BlobServiceClient, BlockBlobClient, ContainerClient } from '@azure/storage-blob'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { ToolkitError } from '../errors.ts'
import { failureKind, maskSecrets, rewordStreamErrors, storageFailure } from './_errors.ts'
import { checkKey, confirmHead, hashedBody, notFound, partSizeFor, parts, shouldSweep, type ByteRange, type ObjectHead, type ObjectStorage, type PutOptions, type PutResult, type StoredObject, type SweepOptions } from './storage.ts'

export interface AzureEnvironment {
  AZURE_STORAGE_CONNECTION_STRING?: string | undefined
}

export interface AzureStorageOptions {
  container: string
  /** Name prefix inside the container ("" or ending with "/"). */
  prefix: string
  env: AzureEnvironment
  /** Overrides partSizeFor() (tests). */
  partSize?: number
  /** Retries per request; 3 by default. */
  maxTries?: number
}

const BLOCKS_IN_FLIGHT = 2

function hintFor(error: unknown): string {
  const { status, code } = failureKind(error)
  if (status === 403 || code === 'AuthenticationFailed' || code === 'AuthorizationFailure') return 'vérifiez AZURE_STORAGE_CONNECTION_STRING (compte et clé) et les droits sur le conteneur'
  if (code === 'ContainerNotFound') return 'créez le conteneur, ou corrigez son nom dans l’URL azure://<conteneur>/<préfixe>'
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ECONNRESET' || code === 'REQUEST_SEND_ERROR' || code === 'ETIMEDOUT') return 'vérifiez le point d’accès (BlobEndpoint) de AZURE_STORAGE_CONNECTION_STRING et le réseau'
  return 'relancez la commande ; si l’erreur persiste, vérifiez le service Azure'
}

/** The secrets a connection string holds: the account key and any SAS signature. */
function secretsOf(connectionString: string): string[] {
  const secrets = [connectionString]
  for (const part of connectionString.split(';')) {
    const [name, ...rest] = part.split('=')
    const value = rest.join('=')
    if (/^(AccountKey|SharedAccessSignature)$/i.test(name?.trim() ?? '') && value) secrets.push(value)
  }
  return secrets
}

const requireAzureSdk = (): typeof AzureBlobSdk => createRequire(import.meta.url)('@azure/storage-blob')

export class AzureBlobStorage implements ObjectStorage {
  readonly location: string
  readonly #sdk: typeof AzureBlobSdk
  readonly #container: ContainerClient
  readonly #prefix: string
  readonly #secrets: string[]
  readonly #partSize: number | undefined

  /** @example new AzureBlobStorage({ container: 'backups', prefix: 'prod/', env: { AZURE_STORAGE_CONNECTION_STRING } }) */
  constructor(options: AzureStorageOptions) {
    const connectionString = options.env.AZURE_STORAGE_CONNECTION_STRING
    this.location = `azure://${options.container}/${options.prefix}`
    if (!connectionString) throw new ToolkitError(`identifiants Azure manquants pour ${this.location}`, { hint: 'définissez AZURE_STORAGE_CONNECTION_STRING (portail Azure → compte de stockage → Clés d’accès)' })
    this.#secrets = secretsOf(connectionString)
    this.#prefix = options.prefix
    this.#partSize = options.partSize
    this.#sdk = requireAzureSdk()
    let service: BlobServiceClient
    try {
      service = this.#sdk.BlobServiceClient.fromConnectionString(connectionString, { retryOptions: { maxTries: options.maxTries ?? 3 } })
    } catch (error) {
      throw new ToolkitError(`AZURE_STORAGE_CONNECTION_STRING invalide : ${maskSecrets(String((error as Error).message ?? error), this.#secrets)}`, { hint: 'copiez la chaîne de connexion entière depuis le portail Azure (AccountName=…;AccountKey=…;EndpointSuffix=…)' })
    }
    this.#container = service.getContainerClient(options.container)
  }

  #name(key: string): string {
    checkKey(key, this.location)
    return `${this.#prefix}${key}`
  }

  #failure(action: string, error: unknown): ToolkitError {
    return storageFailure(action, this.location, error, this.#secrets, hintFor(error))
  }

  async put(key: string, body: AsyncIterable<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    const blob = this.#container.getBlockBlobClient(this.#name(key))
    const streamed = { size: 0, sha256: '' }
    // Block ids must all have the same length within a blob; a random upload id keeps concurrent puts apart.
    const uploadId = randomBytes(8).toString('hex')
    const blockIds: string[] = []
    const inFlight = new Set<Promise<void>>()
    try {
      let failed: unknown
      for await (const block of parts(hashedBody(key, body, options, streamed), this.#partSize ?? partSizeFor(options.size))) {
        const id = Buffer.from(`${uploadId}-${blockIds.length.toString().padStart(6, '0')}`).toString('base64')
        blockIds.push(id)
        const staging: Promise<void> = blob.stageBlock(id, block, block.length).then(
          () => void inFlight.delete(staging),
          (error: unknown) => {
            failed ??= error
            inFlight.delete(staging)
          },
        )
        inFlight.add(staging)
        if (inFlight.size >= BLOCKS_IN_FLIGHT) await Promise.race(inFlight)
        if (failed !== undefined) throw failed
      }
      await Promise.all(inFlight)
      if (failed !== undefined) throw failed
      await blob.commitBlockList(blockIds, { metadata: { sha256: streamed.sha256 }, blobHTTPHeaders: { blobContentType: 'application/octet-stream' } })
    } catch (error) {
      await Promise.allSettled(inFlight)
      await discardUncommitted(blob).catch(() => {})
      throw this.#failure(`envoi de « ${key} »`, error)
    }
    return confirmHead(key, this.location, await this.head(key), streamed)
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const blob = this.#container.getBlobClient(this.#name(key))
    if (range?.length === 0) {
      if ((await this.head(key)) === undefined) throw notFound(key, this.location)
      return Readable.from([])
    }
    try {
      const response = await blob.download(range?.offset ?? 0, range?.length)
      return rewordStreamErrors(response.readableStreamBody as Readable, (error) => storageFailure(`lecture de « ${key} »`, this.location, error, this.#secrets, hintFor(error)))
    } catch (error) {
      if (failureKind(error).status === 404 && failureKind(error).code !== 'ContainerNotFound') throw notFound(key, this.location)
      throw this.#failure(`lecture de « ${key} »`, error)
    }
  }

  async head(key: string): Promise<ObjectHead | undefined> {
    try {
      const properties = await this.#container.getBlobClient(this.#name(key)).getProperties()
      return { key, size: properties.contentLength ?? 0, lastModified: properties.lastModified ?? new Date(0), sha256: properties.metadata?.sha256 }
    } catch (error) {
      if (error instanceof this.#sdk.RestError && error.statusCode === 404 && error.code !== 'ContainerNotFound') return undefined
      throw this.#failure(`lecture des propriétés de « ${key} »`, error)
    }
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    try {
      for await (const item of this.#container.listBlobsFlat({ prefix: `${this.#prefix}${prefix}` })) {
        yield { key: item.name.slice(this.#prefix.length), size: item.properties.contentLength ?? 0, lastModified: item.properties.lastModified }
      }
    } catch (error) {
      throw this.#failure('liste des objets', error)
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.#container.getBlobClient(this.#name(key)).deleteIfExists()
    } catch (error) {
      throw this.#failure(`suppression de « ${key} »`, error)
    }
  }

  async sweepIncompleteUploads(prefix: string, options: SweepOptions): Promise<{ removed: string[] }> {
    const removed: string[] = []
    try {
      const committed = new Set<string>()
      for await (const item of this.#container.listBlobsFlat({ prefix: `${this.#prefix}${prefix}` })) committed.add(item.name)
      for await (const item of this.#container.listBlobsFlat({ prefix: `${this.#prefix}${prefix}`, includeUncommitedBlobs: true })) {
        if (committed.has(item.name) || !shouldSweep(item.name.slice(this.#prefix.length), item.properties.createdOn ?? item.properties.lastModified, options)) continue
        // A name with only uncommitted blocks: committing an empty list discards them, then the empty blob goes.
        await discardUncommitted(this.#container.getBlockBlobClient(item.name))
        removed.push(item.name.slice(this.#prefix.length))
      }
    } catch (error) {
      throw this.#failure('nettoyage des envois inachevés', error)
    }
    return { removed: removed.sort() }
  }
}

/**
 * Drops the uncommitted blocks of a name that has no committed blob (a failed or killed first put):
 * committing an empty list discards them, then that empty blob is deleted. A committed blob is left
 * alone (its stray blocks are invisible and expire), as is one another put commits meanwhile.
 */
async function discardUncommitted(blob: BlockBlobClient): Promise<void> {
  const { etag } = await blob.commitBlockList([], { conditions: { ifNoneMatch: '*' } })
  await blob.deleteIfExists({ conditions: { ifMatch: etag } })
}
