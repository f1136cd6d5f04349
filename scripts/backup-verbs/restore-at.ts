/**
 * `restore --at <instant>`: the options of a restore to a point in time and its run, kept apart from
 * restore.ts (which restores a backup by id) so both evolve without touching each other.
 */
import { rm } from 'node:fs/promises'
import type { Command } from 'commander'
import { print } from '../lib/cli.ts'
import type { ToolkitEnvironment } from '../lib/environment.ts'
import type { PitrSettings } from '../lib/engines/engine.ts'
import { renderRestore } from '../lib/backup/restore/render.ts'
import type { RestoreAtTimeResult } from '../lib/backup/restore/at-time.ts'
import { privateScratchDir } from '../lib/fs/leftovers.ts'
import { parseInstant } from '../lib/replication/instant.ts'
import { openReplicaStore } from '../lib/replication/object-store.ts'
import type { BackupCli, GlobalOptions } from './_cli.ts'

export interface PgBackRestOptions {
  stanza?: string
  pgbackrestConfig?: string
  pgBinDir?: string
  runAs?: string
  scratchDir?: string
}

export interface RestoreAtOptions extends PgBackRestOptions {
  at?: string
  replica?: string
  tenant?: string
  keepScratch?: boolean
}

/** pgBackRest's options, shared by `pitr setup|backup` and `restore --at`. */
export function addPgBackRestOptions(command: Command): Command {
  return command
    .option('--stanza <nom>', 'stanza pgBackRest (défaut main)')
    .option('--pgbackrest-config <fichier>', 'pgbackrest.conf (défaut /etc/pgbackrest.conf)')
    .option('--pg-bin-dir <dossier>', 'binaires PostgreSQL (défaut /usr/lib/postgresql/15/bin)')
    .option('--run-as <utilisateur>', 'utilisateur système propriétaire du cluster (pgBackRest et pg_ctl via runuser)')
    .option('--scratch-dir <dossier>', 'dossier de travail pour le cluster ou la base temporaire (défaut /var/tmp ou le dossier temporaire)')
}

/** The options `restore` gains for a point in time. */
export function addRestoreAtOptions(command: Command): Command {
  command
    .option('--at <instant>', 'restaurer l’état à cet instant, ISO 8601 avec fuseau (2026-03-01T14:05:00+01:00)')
    .option('--replica <dossier|url>', 'SQLite : le réplica écrit par replicate (dossier, s3://…, azure://…)')
    .option('--keep-scratch', 'avec --at : garder la base ou le cluster temporaire pour inspection, sans rien remplacer')
  // The restore of one cabinet from a backup declares --tenant too: one option serves both.
  if (!command.options.some((option) => option.long === '--tenant')) command.option('--tenant <id|nom>', 'ne restaurer que ce cabinet (avec --at : tel qu’il était à cet instant)')
  return addPgBackRestOptions(command)
}

export function pitrSettings(command: PgBackRestOptions, environment: ToolkitEnvironment): PitrSettings {
  return {
    environment,
    ...(command.stanza !== undefined ? { stanza: command.stanza } : {}),
    ...(command.pgbackrestConfig !== undefined ? { pgbackrestConfig: command.pgbackrestConfig } : {}),
    ...(command.pgBinDir !== undefined ? { pgBinDir: command.pgBinDir } : {}),
    ...(command.runAs !== undefined ? { runAs: command.runAs } : {}),
    ...(command.scratchDir !== undefined ? { scratchDir: command.scratchDir } : {}),
  }
}

export function renderRestoreAt(result: RestoreAtTimeResult): string {
  const lines = [`⏱  Restauration à l’instant ${result.at}`, ...result.pointInTime.lines]
  if (result.restore !== undefined) lines.push('', renderRestore(result.restore).trimEnd())
  if (result.tenant !== undefined) lines.push('', `Cabinet « ${result.tenant.tenant} » restauré : ${result.tenant.deleted} ligne(s) retirée(s), ${result.tenant.inserted} insérée(s)${result.tenant.safetyExport !== undefined ? ` ; ses lignes d’avant sont gardées dans ${result.tenant.safetyExport.path}` : ''}.`)
  lines.push(`État restauré : dernière transaction à ${result.reachedAt ?? '(aucune connue)'}.`)
  return `${lines.join('\n')}\n`
}

/** Runs `restore --at`; the instant is parsed first (without offset: exit 2, nothing touched). */
export async function runRestoreAt(cli: BackupCli, options: GlobalOptions, command: RestoreAtOptions & { to?: string; yes?: boolean; force?: boolean }): Promise<number> {
  const at = parseInstant(command.at!)
  const { environment } = cli
  // Remote replica objects are staged in a folder of this process (see `replicate`), never in the project.
  const stagingDir = await privateScratchDir('ipm-replica-staging-')
  try {
    const replica = command.replica === undefined ? undefined : openReplicaStore(command.replica, { env: environment.storage, cwd: environment.cwd, stagingDir })
    const result = await cli.system(options).restoreAt({
      ...pitrSettings(command, environment),
      at,
      ...(replica !== undefined ? { replica } : {}),
      ...(command.to !== undefined ? { to: command.to } : {}),
      ...(command.tenant !== undefined ? { tenant: command.tenant } : {}),
      keepScratch: command.keepScratch === true,
      yes: command.yes === true,
      force: command.force === true,
      signal: cli.interruptible(),
    })
    print(result, () => renderRestoreAt(result), options)
    return 0
  } finally {
    await rm(stagingDir, { recursive: true, force: true })
  }
}
