/**
 * SHA-256 of every file of a backup, and the manifest that ties them together.
 *
 * The manifest is the text `sha256sum` prints and `sha256sum -c` reads: one line
 * `<sha256>  <path>\n` per content file, sorted by path (byte order). A backup's top-level
 * `hash` is the SHA-256 of that text, so it covers the name and every byte of every content file.
 */
import { createHash } from 'node:crypto'
import { open } from 'node:fs/promises'

export interface FileDigest {
  /** Path inside the backup, `/`-separated: `database.db`, `exports/Plan.csv`. */
  path: string
  size: number
  sha256: string
}

export function sortDigests(files: readonly FileDigest[]): FileDigest[] {
  return [...files].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)))
}

/**
 * The `sha256sum` text of the files.
 * @example manifestText([{ path: 'database.db', size: 3, sha256: 'ab…' }]) // 'ab…  database.db\n'
 */
export function manifestText(files: readonly FileDigest[]): string {
  return sortDigests(files)
    .map((file) => `${file.sha256}  ${file.path}\n`)
    .join('')
}

/** The SHA-256 of the manifest: what metadata's `hash` holds. */
export function manifestHash(files: readonly FileDigest[]): string {
  return sha256Hex(manifestText(files))
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

const READ_CHUNK = 1 << 20

/**
 * Streams a file through SHA-256; `copy` gets each chunk read, in order, before the next read
 * (restore's one pass writes the file elsewhere as it is hashed).
 * @example const { size, sha256 } = await hashFile('backups/b/database.db')
 */
export async function hashFile(path: string, onBytes?: (bytes: number) => void, copy?: (chunk: Buffer) => Promise<void>): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256')
  const handle = await open(path, 'r')
  let size = 0
  try {
    const buffer = Buffer.allocUnsafe(READ_CHUNK)
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null)
      if (bytesRead === 0) break
      hash.update(buffer.subarray(0, bytesRead))
      await copy?.(buffer.subarray(0, bytesRead))
      size += bytesRead
      onBytes?.(bytesRead)
    }
  } finally {
    await handle.close()
  }
  return { size, sha256: hash.digest('hex') }
}
