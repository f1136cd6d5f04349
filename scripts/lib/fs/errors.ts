/**
 * Filesystem failures a user can act on, as one French line naming the path and what to do:
 * a read-only filesystem, no permission, a missing folder, a full disk. Everything else is left alone.
 */
import { accessSync, constants, existsSync } from 'node:fs'
import { dirname } from 'node:path'
import { ToolkitError } from '../errors.ts'

const DISK_FULL = ['ENOSPC', 'EDQUOT', 'EFBIG', 'SQLITE_FULL']

function errnoOf(error: unknown): { code: string; path?: string } | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const { code, path } = e as NodeJS.ErrnoException
    if (typeof code === 'string' && (DISK_FULL.includes(code) || ['EROFS', 'EACCES', 'EPERM', 'ENOENT', 'ENOTDIR'].includes(code))) return { code, ...(path === undefined ? {} : { path }) }
  }
  return undefined
}

/** Whether the disk (or the quota) is full, anywhere in the cause chain. */
export function isDiskFull(error: unknown): boolean {
  const errno = errnoOf(error)
  return errno !== undefined && DISK_FULL.includes(errno.code)
}

/**
 * The ToolkitError for a filesystem failure while writing `what` (the error's own path, else `where`),
 * or undefined when the error is something else.
 * @example throw mapFilesystemError(error, 'le dossier des backups', backupDir) ?? error
 */
export function mapFilesystemError(error: unknown, what: string, where?: string): ToolkitError | undefined {
  if (error instanceof ToolkitError) return undefined
  const errno = errnoOf(error)
  if (errno === undefined) return undefined
  const path = where ?? errno.path ?? '(inconnu)'
  // `mkdir -p` under a read-only or forbidden folder says ENOENT: ask the nearest folder that exists.
  if (errno.code === 'ENOENT' && path !== '(inconnu)') errno.code = writeProblemOf(nearestExisting(path)) ?? errno.code
  // No `cause`: the raw errno text (and its temporary file names) is what this line replaces.
  const exact = (message: string, hint: string) => new ToolkitError(message, { hint })
  switch (errno.code) {
    case 'EROFS':
      return exact(`impossible d’écrire ${what}: ${path} est sur un système de fichiers en lecture seule`, 'Choisissez un dossier inscriptible (--dir, --output) ou remontez le disque en lecture-écriture.')
    case 'EACCES':
    case 'EPERM':
      return exact(`impossible d’écrire ${what}: permission refusée sur ${path}`, 'Donnez les droits d’écriture à l’utilisateur qui lance la commande, ou choisissez un autre dossier.')
    case 'ENOENT':
    case 'ENOTDIR':
      return exact(`impossible d’écrire ${what}: le dossier parent de ${path} n’existe pas`, 'Créez d’abord le dossier parent (mkdir -p), ou corrigez le chemin.')
    default:
      return exact(`plus d’espace disque pour ${what} (${path}): rien n’a été remplacé`, 'Libérez de la place sur ce disque, puis relancez la commande.')
  }
}

function nearestExisting(path: string): string {
  let current = dirname(path)
  while (!existsSync(current) && dirname(current) !== current) current = dirname(current)
  return current
}

function writeProblemOf(dir: string): string | undefined {
  try {
    accessSync(dir, constants.W_OK)
    return undefined
  } catch (error) {
    return (error as NodeJS.ErrnoException).code
  }
}
