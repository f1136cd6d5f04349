/**
 * The files a verification writes while it hashes (restore's one pass): the backup's files that the
 * restore needs are streamed to paths of the restore's own choosing as their bytes are read for
 * their hash, so the archive is read once. A copy is only a candidate: the caller uses it after
 * the whole backup has been verified, and throws it away otherwise.
 */
import { open, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { ToolkitError, describeError } from '../../errors.ts'
import { isDiskFull, mapFilesystemError } from '../../fs/errors.ts'

/** Writing a copy failed (a full disk, a forbidden folder): the machine's fault, not the backup's. */
export class CopyWriteError extends ToolkitError {}

/**
 * Destination files written in order, each created on its first write (it must not exist).
 * @example const copies = new VerifiedCopies(); await copies.write('/tmp/x/database.db', chunk); await copies.close()
 */
export class VerifiedCopies {
  #handles = new Map<string, FileHandle>()

  /** Appends `data` (of the backup's file `name`) to `dest`; an empty `data` only creates the file (an empty entry). */
  async write(dest: string, data: Buffer, name: string): Promise<void> {
    try {
      let handle = this.#handles.get(dest)
      if (handle === undefined) {
        // The default mode, as any file restore writes: the private scratch folder (0700) is what keeps it private.
        handle = await open(dest, 'wx')
        this.#handles.set(dest, handle)
      }
      let offset = 0
      while (offset < data.length) offset += (await handle.write(data, offset, data.length - offset, null)).bytesWritten
    } catch (error) {
      const what = `la copie vérifiée de ${name}`
      if (isDiskFull(error)) {
        throw new CopyWriteError(`plus de place dans ${dirname(dest)} pour ${what} : rien n’a été remplacé`, {
          hint: 'Libérez de la place sur ce disque (près d’une base SQLite, il faut la base restaurée et sa copie de sécurité ; ailleurs, le dossier temporaire : TMPDIR), puis relancez.',
          cause: error,
        })
      }
      const mapped = mapFilesystemError(error, what, dest)
      throw new CopyWriteError(mapped?.message ?? `écriture de ${what} impossible (${dest}) : ${describeError(error)}`, { hint: mapped?.hint ?? 'Vérifiez ce dossier, puis relancez.', cause: error })
    }
  }

  /** Closes one copy, now whole (it stays on disk for the caller). */
  async finish(dest: string): Promise<void> {
    const handle = this.#handles.get(dest)
    this.#handles.delete(dest)
    await handle?.close()
  }

  /** Closes every file (the copies stay on disk for the caller). */
  async close(): Promise<void> {
    const handles = [...this.#handles.values()]
    this.#handles.clear()
    await Promise.allSettled(handles.map((handle) => handle.close()))
  }
}
