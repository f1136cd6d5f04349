/**
 * Restoring into a database server (PostgreSQL, D1): the target must be empty; a non-empty one
 * only with `force`, and then a full backup of it is taken into the backup folder first (the
 * safety export). When the restored database fails its check (step 4), the target is put back as
 * it was: the safety export loaded again by the same one-step replace, or, when the target was
 * empty, everything dropped again in one transaction. The engine brings how to list its objects,
 * how to drop them, how to load the artefact, and the command that runs a script by hand.
 */
import { join } from 'node:path'
import type { DatabaseHandle } from '../db/connection.ts'
import { ToolkitError, describeError } from '../errors.ts'
import type { RestoreTarget, SafetyExport } from './engine.ts'
import { checkRowCounts } from './_row-counts.ts'

export interface ServerRestoreParts {
  db: DatabaseHandle
  artefact: string
  /** The objects of the target that a restore would collide with. */
  existingObjects(db: DatabaseHandle): Promise<string[]>
  /** The statements that drop every object of the target, run as one script (one transaction). */
  dropStatements(db: DatabaseHandle): Promise<string[]>
  /** The exact command that runs `script` in the target by hand (no password in it). */
  runByHand(script: string): string
  /**
   * Loads the artefact into the target, replacing what is there (`replace`) in one step that cannot
   * be seen half done; calls `midway` once, when part of it is written and before it takes effect.
   */
  load(db: DatabaseHandle, artefact: string, replace: boolean, midway: () => void): Promise<void>
}

export async function serverRestoreTarget({ db, artefact, existingObjects, dropStatements, runByHand, load }: ServerRestoreParts): Promise<RestoreTarget> {
  let existing: string[]
  try {
    existing = await existingObjects(db)
  } catch (error) {
    await db.close()
    throw error
  }
  // Taken in step 2, loaded back by undo.
  let safety: SafetyExport | undefined
  return {
    display: db.redactedUrl,
    noun: 'une base',
    exists: existing.length > 0,
    plannedSafetyCopy: null,
    scratchName: artefact,
    rehearsal: {
      safetyDetail: existing.length > 0 ? `simulation: un export de sécurité complet de la cible (${existing.length} objets) serait fait dans le dossier des backups` : 'simulation: cible vide, rien à sauvegarder',
      replaceDetail: `simulation: ${artefact} extrait et vérifié, serait chargé dans la cible${existing.length > 0 ? ` à la place de ses ${existing.length} objets` : ''} ; cible intacte`,
      checks: false,
    },
    // The artefact is loaded from the restore's scratch folder.
    stagingPath: () => null,
    async assertReplaceable(context) {
      const expected = context.prismaSchemaSha256
      const m = context.metadata
      if (!context.force && m.schema.prismaSchemaSha256 !== null && expected !== null && m.schema.prismaSchemaSha256 !== expected) {
        throw new ToolkitError(`le backup ${m.id} a été fait avec un autre schéma Prisma (${m.schema.prismaSchemaSha256.slice(0, 12)}…) que celui de cet outil (${expected.slice(0, 12)}…)`, {
          hint: 'Restaurez un backup de la même version du schéma, ou --force.',
        })
      }
      if (existing.length > 0 && !context.force) {
        throw new ToolkitError(`la cible ${db.redactedUrl} n’est pas vide (${existing.slice(0, 5).join(', ')}${existing.length > 5 ? ', …' : ''}) : restore charge dans une base vide`, {
          hint: '--force (un backup complet de la cible est d’abord fait dans le dossier des backups), ou restaurez dans une nouvelle base vide.',
        })
      }
    },
    async safetyCopy(context) {
      if (existing.length === 0) return { path: null, detail: 'cible vide: rien à sauvegarder' }
      safety = await context.exportDatabase(db)
      return { path: safety.path, detail: `export de sécurité de la cible: ${safety.id}` }
    },
    async replace(materialize, context) {
      const local = join(context.scratchDir, artefact)
      await materialize(local)
      await load(db, local, existing.length > 0, context.midReplace)
      return `${artefact} chargé dans ${db.redactedUrl}`
    },
    async check(_path, context) {
      const reader = await db.openTableReader()
      try {
        const tables = await reader.tables()
        const counts = await checkRowCounts(context.metadata.tables, async (name) => {
          const table = tables.find((x) => x.name === name)
          return table ? reader.count(table) : null
        })
        return {
          value: { counts, integrity: 'ok', foreignKeyViolations: 0 },
          detail: `${counts.length} tables / ${counts.reduce((n, c) => n + c.expected, 0).toLocaleString('fr-FR')} lignes = métadonnées`,
        }
      } finally {
        await reader.close()
      }
    },
    async undo(_safetyCopy, context) {
      if (safety !== undefined) {
        const kept = safety
        try {
          const local = join(context.scratchDir, `undo-${artefact}`)
          await kept.materialize(local)
          await load(db, local, true, () => {})
          return `l’export de sécurité ${kept.id} a été rechargé : ${db.redactedUrl} est revenue à son état d’avant la restauration`
        } catch (error) {
          return `le rechargement de l’export de sécurité ${kept.id} a ÉCHOUÉ (${describeError(error)}) : rechargez-le à la main : ${kept.restoreCommand}`
        }
      }
      // The target was empty: what is there now is what this restore created.
      let script: string | undefined
      try {
        const statements = await dropStatements(db)
        script = statements.join('\n')
        await db.sql.executeScript(script)
        return `${db.redactedUrl} a été vidée à nouveau : ce que la restauration y avait créé est supprimé, elle était vide avant`
      } catch (error) {
        const byHand = script === undefined ? `supprimez-y les tables ${context.metadata.tables.map((t) => t.name).join(', ')}` : runByHand(script)
        return `la remise à vide de ${db.redactedUrl} (vide avant la restauration) a ÉCHOUÉ (${describeError(error)}) : videz-la à la main : ${byHand}`
      }
    },
    async size(path, context) {
      return path === null ? context.metadata.contentSize : 0
    },
    close: () => db.close(),
  }
}
