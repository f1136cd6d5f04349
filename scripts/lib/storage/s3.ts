/**
 * An S3-compatible bucket (AWS, MinIO, R2, Scaleway, OVH…) as object storage, under a key prefix.
 * Uploads go through lib-storage: one PutObject below a part, multipart above, parts of
 * partSizeFor(size), two in flight, aborted on any failure. Our SHA-256 is the object's
 * `x-amz-meta-sha256`: set at creation when the caller knows it, otherwise by a metadata-only
 * self-copy after the upload; put returns once a HEAD shows that size and hash.
 *
 * The SDK (~0.15 s of CPU to load) is imported by the first request, not by this module: the
 * credentials are checked when the storage is built, and a process that never reaches S3 never
 * loads it.
 */
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3'
import { Readable } from 'node:stream'
import { ToolkitError } from '../errors.ts'
import { failureKind, rewordStreamErrors, storageFailure } from './_errors.ts'
import { checkKey, confirmHead, hashedBody, notFound, partSizeFor, shouldSweep, type ByteRange, type ObjectHead, type ObjectStorage, type PutOptions, type PutResult, type StoredObject, type SweepOptions } from './storage.ts'

/** CopyObject copies at most 5 GiB in one call. */
const MAX_SELF_COPY = 5 * 1024 ** 3

/** The standard variables, passed in by the caller (this module never reads the variables itself). */
export interface S3Environment {
  AWS_ACCESS_KEY_ID?: string | undefined
  AWS_SECRET_ACCESS_KEY?: string | undefined
  AWS_SESSION_TOKEN?: string | undefined
  AWS_REGION?: string | undefined
  AWS_ENDPOINT_URL_S3?: string | undefined
}

export interface S3StorageOptions {
  bucket: string
  /** Key prefix inside the bucket ("" or ending with "/"). */
  prefix: string
  env: S3Environment
  /** Overrides partSizeFor() (tests; lib-storage needs ≥ 5 MiB). */
  partSize?: number
  /** Attempts per request (the SDK's retries); 3 by default. */
  maxAttempts?: number
}

function hintFor(error: unknown, endpoint: string | undefined): string {
  const { status, code } = failureKind(error)
  if (code === 'InvalidAccessKeyId' || code === 'SignatureDoesNotMatch' || code === 'AccessDenied' || status === 403) return 'vérifiez AWS_ACCESS_KEY_ID et AWS_SECRET_ACCESS_KEY, et les droits de cette clé sur le bucket'
  if (code === 'NoSuchBucket') return 'créez le bucket, ou corrigez son nom dans l’URL s3://<bucket>/<préfixe>'
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'TimeoutError' || code === 'ETIMEDOUT') return endpoint === undefined ? 'vérifiez le réseau et AWS_REGION' : `vérifiez AWS_ENDPOINT_URL_S3 (${endpoint}) et le réseau`
  return 'relancez la commande ; si l’erreur persiste, vérifiez le service S3'
}

/** The loaded SDK (its command classes) and a client built from this storage's configuration. */
interface S3Connection {
  s3: typeof import('@aws-sdk/client-s3')
  client: S3Client
}

export class S3Storage implements ObjectStorage {
  readonly location: string
  readonly #config: S3ClientConfig
  #connection: Promise<S3Connection> | undefined
  readonly #bucket: string
  readonly #prefix: string
  readonly #secrets: string[]
  readonly #endpoint: string | undefined
  readonly #partSize: number | undefined

  /** @example new S3Storage({ bucket: 'backups', prefix: 'prod/', env: { AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3 } }) */
  constructor(options: S3StorageOptions) {
    const { env } = options
    const missing = (['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] as const).filter((name) => !env[name])
    if (missing.length > 0) throw new ToolkitError(`identifiants S3 manquants pour s3://${options.bucket}/${options.prefix}`, { hint: `définissez ${missing.join(' et ')}` })
    const endpoint = env.AWS_ENDPOINT_URL_S3 || undefined
    if (endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint)) throw new ToolkitError('AWS_ENDPOINT_URL_S3 n’est pas une URL http(s)', { hint: 'exemple : AWS_ENDPOINT_URL_S3=https://s3.fr-par.scw.cloud' })
    if (endpoint === undefined && !env.AWS_REGION) throw new ToolkitError(`région S3 manquante pour s3://${options.bucket}/${options.prefix}`, { hint: 'définissez AWS_REGION (par exemple eu-west-3), ou AWS_ENDPOINT_URL_S3 pour un service compatible S3' })
    this.#bucket = options.bucket
    this.#prefix = options.prefix
    this.#endpoint = endpoint
    this.#partSize = options.partSize
    this.#secrets = [env.AWS_SECRET_ACCESS_KEY!, env.AWS_SESSION_TOKEN ?? ''].filter((s) => s !== '')
    this.location = `s3://${options.bucket}/${options.prefix}`
    const config: S3ClientConfig = {
      region: env.AWS_REGION || 'us-east-1',
      credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY!, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) },
      maxAttempts: options.maxAttempts ?? 3,
    }
    if (endpoint !== undefined) {
      // Custom endpoints: path-style URLs, and no default checksums (many S3-compatible servers
      // store the aws-chunked framing inside the object, or reject the trailer).
      Object.assign(config, { endpoint, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' })
    }
    this.#config = config
  }

  /** The SDK and this storage's client, loaded and built by the first request. */
  #connect(): Promise<S3Connection> {
    return (this.#connection ??= import('@aws-sdk/client-s3').then((s3) => ({ s3, client: new s3.S3Client(this.#config) })))
  }

  #key(key: string): string {
    checkKey(key, this.location)
    return `${this.#prefix}${key}`
  }

  #failure(action: string, error: unknown): ToolkitError {
    return storageFailure(action, this.location, error, this.#secrets, hintFor(error, this.#endpoint))
  }

  async put(key: string, body: AsyncIterable<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    const objectKey = this.#key(key)
    const streamed = { size: 0, sha256: '' }
    try {
      const [{ s3, client }, { Upload }] = await Promise.all([this.#connect(), import('@aws-sdk/lib-storage')])
      const upload = new Upload({
        client,
        params: { Bucket: this.#bucket, Key: objectKey, Body: Readable.from(hashedBody(key, body, options, streamed)), ContentType: 'application/octet-stream', ...(options.sha256 ? { Metadata: { sha256: options.sha256 } } : {}) },
        partSize: this.#partSize ?? partSizeFor(options.size),
        queueSize: 2,
        leavePartsOnError: false,
      })
      await upload.done()
      if (!options.sha256) {
        if (streamed.size > MAX_SELF_COPY) {
          await this.delete(key)
          throw new ToolkitError(`envoi de « ${key} » : au-delà de 5 Gio, le SHA-256 doit être connu avant l’envoi`, { hint: 'passez sha256 (calculé sur le fichier local) à put()' })
        }
        await client.send(new s3.CopyObjectCommand({ Bucket: this.#bucket, Key: objectKey, CopySource: `${this.#bucket}/${encodeURIComponent(objectKey).replace(/%2F/g, '/')}`, MetadataDirective: 'REPLACE', Metadata: { sha256: streamed.sha256 }, ContentType: 'application/octet-stream' }))
      }
    } catch (error) {
      throw this.#failure(`envoi de « ${key} »`, error)
    }
    return confirmHead(key, this.location, await this.head(key), streamed)
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const objectKey = this.#key(key)
    if (range?.length === 0) {
      if ((await this.head(key)) === undefined) throw notFound(key, this.location)
      return Readable.from([])
    }
    const header = range === undefined ? undefined : `bytes=${range.offset}-${range.length === undefined ? '' : range.offset + range.length - 1}`
    try {
      const { s3, client } = await this.#connect()
      const response = await client.send(new s3.GetObjectCommand({ Bucket: this.#bucket, Key: objectKey, ...(header ? { Range: header } : {}) }))
      return rewordStreamErrors(response.Body as Readable, (error) => storageFailure(`lecture de « ${key} »`, this.location, error, this.#secrets, hintFor(error, this.#endpoint)))
    } catch (error) {
      if (failureKind(error).code === 'NoSuchKey' || failureKind(error).status === 404) throw notFound(key, this.location)
      throw this.#failure(`lecture de « ${key} »`, error)
    }
  }

  async head(key: string): Promise<ObjectHead | undefined> {
    try {
      const { s3, client } = await this.#connect()
      const response = await client.send(new s3.HeadObjectCommand({ Bucket: this.#bucket, Key: this.#key(key) }))
      return { key, size: response.ContentLength ?? 0, lastModified: response.LastModified ?? new Date(0), sha256: response.Metadata?.sha256 }
    } catch (error) {
      if (failureKind(error).status === 404 && failureKind(error).code !== 'NoSuchBucket') return undefined
      throw this.#failure(`lecture des propriétés de « ${key} »`, error)
    }
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    let token: string | undefined
    do {
      let response
      try {
        const { s3, client } = await this.#connect()
        response = await client.send(new s3.ListObjectsV2Command({ Bucket: this.#bucket, Prefix: `${this.#prefix}${prefix}`, ContinuationToken: token }))
      } catch (error) {
        throw this.#failure('liste des objets', error)
      }
      for (const object of response.Contents ?? []) {
        yield { key: object.Key!.slice(this.#prefix.length), size: object.Size ?? 0, lastModified: object.LastModified ?? new Date(0) }
      }
      token = response.IsTruncated ? response.NextContinuationToken : undefined
    } while (token !== undefined)
  }

  async delete(key: string): Promise<void> {
    try {
      const { s3, client } = await this.#connect()
      await client.send(new s3.DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#key(key) }))
    } catch (error) {
      if (failureKind(error).status === 404 && failureKind(error).code !== 'NoSuchBucket') return
      throw this.#failure(`suppression de « ${key} »`, error)
    }
  }

  async sweepIncompleteUploads(prefix: string, options: SweepOptions): Promise<{ removed: string[] }> {
    const removed: string[] = []
    const { s3, client } = await this.#connect()
    let keyMarker: string | undefined
    let uploadIdMarker: string | undefined
    do {
      let response
      try {
        response = await client.send(new s3.ListMultipartUploadsCommand({ Bucket: this.#bucket, Prefix: `${this.#prefix}${prefix}`, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }))
      } catch (error) {
        const { status } = failureKind(error)
        if (status === 501 || status === 405) throw new ToolkitError(`le service S3 de ${this.location} ne sait pas lister les envois inachevés`, { hint: 'configurez sur le bucket une règle de cycle de vie AbortIncompleteMultipartUpload (1 jour)', cause: new Error(`HTTP ${status}`) })
        throw this.#failure('liste des envois inachevés', error)
      }
      for (const upload of response.Uploads ?? []) {
        if (!shouldSweep(upload.Key!.slice(this.#prefix.length), upload.Initiated, options)) continue
        try {
          await client.send(new s3.AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: upload.Key!, UploadId: upload.UploadId! }))
        } catch (error) {
          if (failureKind(error).status !== 404) throw this.#failure(`abandon de l’envoi inachevé de « ${upload.Key!.slice(this.#prefix.length)} »`, error)
        }
        removed.push(upload.Key!.slice(this.#prefix.length))
      }
      keyMarker = response.IsTruncated ? response.NextKeyMarker : undefined
      uploadIdMarker = response.IsTruncated ? response.NextUploadIdMarker : undefined
    } while (keyMarker !== undefined)
    return { removed: removed.sort() }
  }
}
