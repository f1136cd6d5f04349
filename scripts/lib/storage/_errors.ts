/**
 * Storage failures as one French line with a hint. Service errors can echo request details, so the
 * text kept from them is masked: every secret the storage was built with is replaced by "****",
 * and only a masked copy of the cause is attached (never the SDK's error object with its request).
 */
import { Readable } from 'node:stream'
import { ToolkitError } from '../errors.ts'

/** Replaces each secret (and its URL-encoded form) in `text` by "****". */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let masked = text
  for (const secret of secrets) {
    if (secret.length < 4) continue
    for (const form of new Set([secret, encodeURIComponent(secret)])) masked = masked.split(form).join('****')
  }
  // Connection-string and query-string shapes, in case a secret reached the text in another form.
  return masked.replace(/(AccountKey|SharedAccessSignature|sig|X-Amz-Signature|X-Amz-Credential|Credential)=([^;&\s,]+)/gi, '$1=****')
}

/** The failure's name and first line, masked: what is kept of a service error. */
export function describeServiceError(error: unknown, secrets: readonly string[]): string {
  const e = error as { name?: string; code?: string; message?: string }
  const first = String(e?.message ?? error).split('\n').find((line) => line.trim() !== '') ?? ''
  const name = e?.code ?? e?.name
  const text = name && !first.includes(name) ? `${name}: ${first}` : first
  return maskSecrets(text.trim().slice(0, 300), secrets)
}

/**
 * A ToolkitError for a failed storage call: `action` (French, e.g. "lecture de « x »") on `location`.
 * Passes an existing ToolkitError through unchanged (its text is already ours).
 */
export function storageFailure(action: string, location: string, error: unknown, secrets: readonly string[], hint: string): ToolkitError {
  if (error instanceof ToolkitError) return error
  const reason = describeServiceError(error, secrets)
  return new ToolkitError(`${action} sur ${location} a échoué : ${reason}`, { hint, cause: new Error(reason) })
}

/** The error's HTTP status or network code, to choose a hint. */
export function failureKind(error: unknown): { status: number | undefined; code: string | undefined } {
  const e = error as { $metadata?: { httpStatusCode?: number }; statusCode?: number; code?: string; name?: string; cause?: { code?: string } }
  return { status: e?.$metadata?.httpStatusCode ?? e?.statusCode, code: e?.code ?? e?.cause?.code ?? e?.name }
}

/**
 * The body of a download, whose errors (a connection cut mid-body surfaces as the stream's error)
 * are given our wording by `reword`.
 */
export function rewordStreamErrors(body: Readable, reword: (error: unknown) => Error): Readable {
  return Readable.from(
    (async function* () {
      try {
        for await (const chunk of body) yield chunk as Buffer
      } catch (error) {
        throw reword(error)
      }
    })(),
  )
}
