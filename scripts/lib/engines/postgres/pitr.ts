/**
 * Point-in-time recovery of a PostgreSQL cluster by orchestrating pgBackRest (Debian's `pgbackrest`):
 *   pitrSetup        checks archive_mode / archive_command / wal_level, returns (or writes) the lines to set
 *   pitrBackup       stanza-create (idempotent), then a full backup, or an incremental one once a full exists
 *   readPitrRange    the instants a restore can reach: [oldest backup's end, newest archived commit)
 *   restoreClusterAt restores the cluster as of T into a NEW data directory under a scratch dir, on its own
 *                    port and a private Unix socket, waits for recovery to stop at T and promote, verifies it.
 * Invariant: nothing here writes into the running server's data directory; the restored cluster lives
 * only under `scratchDir` and is stopped and removed on every failure or abort, or by the next restore
 * when a kill left it running (unless it was kept on purpose).
 */
import { spawn } from 'node:child_process'
import { accessSync, chmodSync, chownSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { delimiter, dirname, join } from 'node:path'
import pg from 'pg'
import { ToolkitError } from '../../errors.ts'
import { shellWord } from '../../format.ts'
import { commitRename, fsyncPath, temporaryPathFor } from '../../fs/atomic.ts'
import { processIsAlive } from '../../fs/leftovers.ts'
import { redactUrl } from '../../db/url.ts'
import { formatInstant, formatRange } from '../../replication/instant.ts'
import type { DatabaseLocation } from '../../db/url.ts'
import type { PitrSettings, PointInTimeRecovery } from '../engine.ts'

export const PGBACKREST_INSTALL_HINT = 'Installez pgBackRest : apt-get install pgbackrest'

/** How pgBackRest and the PostgreSQL binaries are run. */
export interface PgBackRestTools {
  /** Absolute path of `pgbackrest` (see findPgBackRest). */
  pgbackrestPath: string
  /** pgbackrest.conf holding the stanza (passed as --config, so archive-get in recovery finds it too). */
  configPath: string
  stanza: string
  /** OS user owning the cluster's files; commands run through `runuser -u <user> --` (we are root). */
  runAs?: string
  /** Absolute path of `runuser`, when runAs is set (default /usr/sbin/runuser). */
  runuserPath?: string
  signal?: AbortSignal
}

/**
 * Finds `pgbackrest` in the directories of `searchPath` (a PATH value).
 * @example findPgBackRest({ searchPath: env.PATH }) // '/usr/bin/pgbackrest'
 */
export function findPgBackRest(options: { searchPath: string }): string {
  for (const dir of options.searchPath.split(delimiter)) {
    if (dir === '') continue
    const candidate = join(dir, 'pgbackrest')
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not in this directory
    }
  }
  throw new ToolkitError('pgBackRest est introuvable dans le PATH.', { hint: PGBACKREST_INSTALL_HINT })
}

// ---------------------------------------------------------------------------------------------
// Setup

export interface SettingChange {
  name: 'archive_mode' | 'archive_command' | 'wal_level'
  current: string
  wanted: string
}

export interface PitrSetupPlan {
  /** Settings that differ from what archiving to pgBackRest needs (empty when all is in place). */
  changes: SettingChange[]
  /** The exact postgresql.conf lines for those changes. */
  postgresqlConfLines: string[]
  /** The pgbackrest.conf text (global section + stanza) for this server. */
  pgbackrestConf: string
  pgbackrestPath: string | undefined
  /** Set when pgbackrest is missing: how to install it. */
  installHint: string | undefined
  /** archive_mode or wal_level change: only a restart applies them (archive_command needs a reload). */
  restartNeeded: boolean
  /** Files written by `apply` (empty without it). */
  written: string[]
  /** The commands to run next, in order (French text with the commands). */
  nextSteps: string[]
}

/**
 * Compares the server's archiving settings with what pgBackRest needs; with `apply`, writes a managed
 * block at the end of postgresql.conf and the stanza into pgbackrest.conf (atomically, keeping owner and mode).
 * @example const plan = await pitrSetup({ databaseUrl, repoPath: '/var/lib/pgbackrest', stanza: 'main', configPath: '/etc/pgbackrest.conf', searchPath: env.PATH, apply: false })
 */
export async function pitrSetup(options: {
  databaseUrl: string
  repoPath: string
  stanza: string
  configPath: string
  searchPath: string
  apply: boolean
  /** Extra `key=value` lines for the [global] section (log-path, lock-path, retention…). */
  globalOptions?: string[]
  /** Overrides the search (tests). */
  pgbackrestPath?: string
}): Promise<PitrSetupPlan> {
  checkStanzaName(options.stanza)
  let pgbackrestPath = options.pgbackrestPath
  if (pgbackrestPath === undefined) {
    try {
      pgbackrestPath = findPgBackRest({ searchPath: options.searchPath })
    } catch {
      pgbackrestPath = undefined
    }
  }
  const settings = await readServerSettings(options.databaseUrl)
  const archiveCommand = `${pgbackrestPath ?? 'pgbackrest'} --config=${options.configPath} --stanza=${options.stanza} archive-push %p`
  const changes: SettingChange[] = []
  if (settings.archive_mode !== 'on' && settings.archive_mode !== 'always') changes.push({ name: 'archive_mode', current: settings.archive_mode, wanted: 'on' })
  if (settings.archive_command !== archiveCommand) changes.push({ name: 'archive_command', current: settings.archive_command, wanted: archiveCommand })
  if (settings.wal_level !== 'replica' && settings.wal_level !== 'logical') changes.push({ name: 'wal_level', current: settings.wal_level, wanted: 'replica' })
  const postgresqlConfLines = changes.map((c) => `${c.name} = '${c.wanted.replaceAll("'", "''")}'`)
  const socketDir = settings.unix_socket_directories.split(',')[0]?.trim() ?? ''
  const stanzaLines = [`[${options.stanza}]`, `pg1-path=${settings.data_directory}`, `pg1-port=${settings.port}`, ...(socketDir === '' ? [] : [`pg1-socket-path=${socketDir}`])]
  const globalLines = ['[global]', `repo1-path=${options.repoPath}`, 'repo1-retention-full=2', 'start-fast=y', ...(options.globalOptions ?? [])]
  const pgbackrestConf = `${globalLines.join('\n')}\n\n${stanzaLines.join('\n')}\n`
  const restartNeeded = changes.some((c) => c.name !== 'archive_command')
  const run = `${pgbackrestPath ?? 'pgbackrest'} --config=${options.configPath} --stanza=${options.stanza}`
  const nextSteps = [
    ...(restartNeeded ? ['Redémarrez PostgreSQL (archive_mode et wal_level ne changent qu\'au redémarrage).'] : changes.length > 0 ? ['Rechargez la configuration : SELECT pg_reload_conf();'] : []),
    `Créez le dépôt : ${run} stanza-create`,
    `Vérifiez l'archivage : ${run} check`,
    `Première sauvegarde complète : ${run} backup --type=full`,
  ]
  const plan: PitrSetupPlan = { changes, postgresqlConfLines, pgbackrestConf, pgbackrestPath, installHint: pgbackrestPath === undefined ? PGBACKREST_INSTALL_HINT : undefined, restartNeeded, written: [], nextSteps }
  if (!options.apply) return plan
  if (pgbackrestPath === undefined) {
    throw new ToolkitError('pgBackRest est introuvable : activer l\'archivage ferait échouer archive_command et remplirait pg_wal.', { hint: PGBACKREST_INSTALL_HINT })
  }
  if (settings.config_file === '' || !isWritable(settings.config_file)) {
    throw new ToolkitError(`Le fichier de configuration du serveur n'est pas modifiable ici (${settings.config_file || 'caché : il faut un superutilisateur'}).`, {
      hint: 'Lancez --apply sur la machine du serveur, en tant que son propriétaire (ou avec sudo), ou ajoutez vous-même les lignes affichées.',
    })
  }
  if (changes.length > 0) {
    writeManagedBlock(settings.config_file, postgresqlConfLines)
    plan.written.push(settings.config_file)
  }
  writePgBackRestConf(options.configPath, pgbackrestConf, options.stanza, stanzaLines)
  plan.written.push(options.configPath)
  return plan
}

const MANAGED_BEGIN = '# BEGIN ia-poste-manager pitr (géré par advanced-backup pitr setup)'
const MANAGED_END = '# END ia-poste-manager pitr'

/** Replaces (or appends) our block at the end of postgresql.conf, where later lines win. */
function writeManagedBlock(configFile: string, lines: string[]): void {
  const text = readFileSync(configFile, 'utf8')
  const start = text.indexOf(MANAGED_BEGIN)
  const end = text.indexOf(MANAGED_END)
  const previousLines = start >= 0 && end > start ? text.slice(start + MANAGED_BEGIN.length, end).split('\n').filter((l) => l.trim() !== '') : []
  const merged = new Map(previousLines.map((l) => [l.split('=')[0]!.trim(), l]))
  for (const line of lines) merged.set(line.split('=')[0]!.trim(), line)
  const block = `${MANAGED_BEGIN}\n${[...merged.values()].join('\n')}\n${MANAGED_END}\n`
  const rest = start >= 0 && end > start ? text.slice(0, start) + text.slice(end + MANAGED_END.length).replace(/^\n/, '') : text
  writeKeepingOwner(configFile, `${rest.replace(/\n*$/, '\n')}${block}`)
}

/** Writes the whole file when absent; otherwise replaces (or appends) only our stanza's section. */
function writePgBackRestConf(path: string, fullText: string, stanza: string, stanzaLines: string[]): void {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true })
    writeKeepingOwner(path, fullText)
    return
  }
  const lines = readFileSync(path, 'utf8').split('\n')
  const header = lines.findIndex((l) => l.trim() === `[${stanza}]`)
  if (header < 0) {
    writeKeepingOwner(path, `${lines.join('\n').replace(/\n*$/, '\n')}\n${stanzaLines.join('\n')}\n`)
    return
  }
  let next = lines.findIndex((l, i) => i > header && /^\s*\[/.test(l))
  if (next < 0) next = lines.length
  writeKeepingOwner(path, [...lines.slice(0, header), ...stanzaLines, '', ...lines.slice(next)].join('\n').replace(/\n*$/, '\n'))
}

/** Atomic write (temp + fsync + rename + fsync dir) that keeps an existing file's owner and mode. */
function writeKeepingOwner(path: string, text: string): void {
  const before = existsSync(path) ? statSync(path) : undefined
  const temporary = temporaryPathFor(path)
  try {
    writeFileSync(temporary, text, { mode: before?.mode ?? 0o640 })
    if (before !== undefined) {
      chmodSync(temporary, before.mode & 0o7777)
      chownSync(temporary, before.uid, before.gid)
    }
    fsyncPath(temporary)
    commitRename(temporary, path)
  } catch (error) {
    rmSync(temporary, { force: true })
    throw new ToolkitError(`Écriture de ${path} impossible.`, { hint: 'Vérifiez les droits sur ce fichier et son dossier.', cause: error })
  }
}

function isWritable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK | constants.W_OK)
    accessSync(dirname(path), constants.W_OK)
    return true
  } catch {
    return false
  }
}

type ServerSettings = Record<'archive_mode' | 'archive_command' | 'wal_level' | 'data_directory' | 'config_file' | 'port' | 'unix_socket_directories', string>

async function readServerSettings(databaseUrl: string): Promise<ServerSettings> {
  const client = new pg.Client({ connectionString: databaseUrl })
  try {
    await client.connect()
    const names = ['archive_mode', 'archive_command', 'wal_level', 'data_directory', 'config_file', 'port', 'unix_socket_directories']
    const result = await client.query<{ name: string; setting: string | null }>('SELECT name, setting FROM pg_settings WHERE name = ANY($1)', [names])
    const settings = Object.fromEntries(names.map((n) => [n, ''])) as ServerSettings
    for (const row of result.rows) settings[row.name as keyof ServerSettings] = row.setting ?? ''
    return settings
  } catch (error) {
    throw new ToolkitError(`Lecture de la configuration de ${redactUrl(databaseUrl)} impossible.`, { hint: 'Vérifiez l\'URL et que le serveur répond (psql "<url>").', cause: error })
  } finally {
    await client.end().catch(() => undefined)
  }
}

function checkStanzaName(stanza: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(stanza)) {
    throw new ToolkitError(`Nom de stanza invalide : "${stanza}".`, { hint: 'Lettres, chiffres, tiret, point ou souligné, par exemple --stanza main.', exitCode: 2 })
  }
}

// ---------------------------------------------------------------------------------------------
// Backup

export interface PitrBackupResult {
  label: string
  type: 'full' | 'incr' | 'diff'
  /** Size of the cluster the backup describes, and what this backup added to the repository. */
  databaseSizeBytes: number
  repositorySizeBytes: number
  startedAt: Date
  stoppedAt: Date
}

/**
 * Creates the stanza if needed, then takes a full backup when the repository holds none, else an incremental one.
 * @example const backup = await pitrBackup({ pgbackrestPath, configPath, stanza: 'main' }) // { label: '20260301-020000F', type: 'full', … }
 */
export async function pitrBackup(tools: PgBackRestTools & { type?: 'full' | 'incr' }): Promise<PitrBackupResult> {
  checkStanzaName(tools.stanza)
  await runPgBackRest(tools, ['stanza-create'])
  const before = await readInfo(tools)
  const type = tools.type ?? (before.backup.some((b) => b.type === 'full') ? 'incr' : 'full')
  await runPgBackRest(tools, ['backup', `--type=${type}`])
  const newest = (await readInfo(tools)).backup.at(-1)
  if (newest === undefined) throw new ToolkitError('pgBackRest n\'a enregistré aucune sauvegarde.', { hint: `Consultez : pgbackrest --stanza=${tools.stanza} info` })
  return {
    label: newest.label,
    type: newest.type,
    databaseSizeBytes: newest.info.size,
    repositorySizeBytes: newest.info.repository.delta,
    startedAt: new Date(newest.timestamp.start * 1000),
    stoppedAt: new Date(newest.timestamp.stop * 1000),
  }
}

interface InfoBackup {
  label: string
  type: 'full' | 'incr' | 'diff'
  error?: boolean
  info: { size: number; repository: { size: number; delta: number } }
  timestamp: { start: number; stop: number }
}
interface StanzaInfo {
  archive: { id: string; database: { id: number }; min: string | null; max: string | null }[]
  backup: InfoBackup[]
  status: { code: number; message: string }
}

async function readInfo(tools: PgBackRestTools): Promise<StanzaInfo> {
  const { stdout } = await runPgBackRest(tools, ['info', '--output=json'])
  const parsed = JSON.parse(stdout) as StanzaInfo[]
  const stanza = parsed[0]
  if (stanza === undefined) throw new ToolkitError(`Stanza "${tools.stanza}" inconnue de pgBackRest.`, { hint: `Créez-la : pgbackrest --stanza=${tools.stanza} stanza-create` })
  return stanza
}

// ---------------------------------------------------------------------------------------------
// Reachable range

export interface PitrRange {
  /** End of the oldest backup (rounded up to the second pgBackRest records): recovery is consistent from there. */
  earliest: Date
  /** The newest commit (or abort) in the archived WAL: a target must come strictly before it, so recovery can prove it stopped at T. */
  latest: Date
  oldestBackupLabel: string
  newestArchivedSegment: string
}

/**
 * The instants restoreClusterAt can reach. Reads `pgbackrest info`, then the newest archived WAL
 * segments (fetched with archive-get into `workDir`, read with pg_waldump) for the last commit time.
 */
export async function readPitrRange(tools: PgBackRestTools & { pgBinDir: string; workDir: string; maxSegmentsScanned?: number }): Promise<PitrRange> {
  const info = await readInfo(tools)
  const backups = info.backup.filter((b) => b.error !== true)
  const oldest = backups[0]
  if (oldest === undefined) throw new ToolkitError(`Aucune sauvegarde pgBackRest pour la stanza "${tools.stanza}".`, { hint: 'Faites d\'abord une sauvegarde : advanced-backup pitr backup' })
  const archive = [...info.archive].sort((a, b) => a.database.id - b.database.id).at(-1)
  if (archive?.max == null || archive.min == null) throw new ToolkitError('Aucun segment WAL archivé.', { hint: `Vérifiez l'archivage : pgbackrest --stanza=${tools.stanza} check` })
  const walDir = join(tools.workDir, 'range-wal')
  mkdirSync(walDir, { recursive: true })
  giveTo(tools.runAs, walDir)
  try {
    let segment: string | undefined = archive.max
    for (let scanned = 0; segment !== undefined && segment >= archive.min && scanned < (tools.maxSegmentsScanned ?? 16); scanned++) {
      const file = join(walDir, segment)
      await runPgBackRest(tools, ['archive-get', segment, file])
      const waldump = await runAs(tools, join(tools.pgBinDir, 'pg_waldump'), ['--rmgr=Transaction', file], { allowFailure: true })
      rmSync(file, { force: true })
      const times = [...waldump.stdout.matchAll(/desc: (?:COMMIT|ABORT)(?:_PREPARED)? (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) UTC/g)].map((m) => parsePgUtc(m[1]!))
      const last = times.at(-1)
      if (last !== undefined) {
        return { earliest: new Date((oldest.timestamp.stop + 1) * 1000), latest: last, oldestBackupLabel: oldest.label, newestArchivedSegment: archive.max }
      }
      segment = previousSegment(segment)
    }
  } finally {
    rmSync(walDir, { recursive: true, force: true })
  }
  throw new ToolkitError('Aucune transaction dans les derniers segments WAL archivés : la fin de la plage restaurable est inconnue.', {
    hint: 'Écrivez dans la base puis forcez l\'archivage du segment courant : SELECT pg_switch_wal();',
  })
}

/** The segment before `name` (16 MiB segments: 256 per log id). */
function previousSegment(name: string): string | undefined {
  const timeline = name.slice(0, 8)
  const log = Number.parseInt(name.slice(8, 16), 16)
  const seg = Number.parseInt(name.slice(16, 24), 16)
  if (seg > 0) return `${timeline}${hex8(log)}${hex8(seg - 1)}`
  if (log > 0) return `${timeline}${hex8(log - 1)}${hex8(0xff)}`
  return undefined
}

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0')

/** "2026-03-01 13:05:00.123456" in UTC (microseconds dropped to milliseconds, rounding down). */
function parsePgUtc(text: string): Date {
  const [date, time] = text.split(' ')
  const [hms, fraction = ''] = time!.split('.')
  return new Date(`${date}T${hms}.${fraction.padEnd(3, '0').slice(0, 3)}Z`)
}

// ---------------------------------------------------------------------------------------------
// Restore into a scratch cluster

export interface ScratchCluster {
  /** postgresql://<user>@localhost:<port>/postgres?host=<socket dir> (Unix socket only, trust in a 0700 dir). */
  url: string
  port: number
  socketDir: string
  dataDir: string
  scratchDir: string
  logFile: string
  target: Date
  range: PitrRange
  /** The first transaction recovery did not apply (its commit time is after T): proof the target was reached. */
  stoppedBefore: { xid: number; time: Date }
  /** The last transaction applied, as PostgreSQL reports it ("last completed transaction was at log time"). */
  lastAppliedCommit: Date | undefined
  /** pgbackrest restore + recovery + checks. */
  durationMs: number
  /** True when close() leaves the cluster running for inspection. */
  kept: boolean
  /** The command that stops and removes a kept cluster. */
  stopCommand: string
  /** Stops the cluster and removes the scratch dir; does nothing when `keepScratch` was set. */
  close(): Promise<void>
}

/**
 * Restores the cluster as it was at `at` into `<scratchDir>/…/data`, starts it on `port` (a free one
 * when absent) with a Unix socket only, waits for recovery to stop at `at` and promote, and checks it
 * (not in recovery, stopped before the first commit after `at`). The running server is never touched.
 * On failure or abort the scratch cluster is stopped and removed. `at` outside readPitrRange → refused.
 * @example
 * const scratch = await restoreClusterAt({ at, pgbackrestPath, configPath, stanza: 'main', pgBinDir: '/usr/lib/postgresql/15/bin', scratchDir: '/var/tmp' })
 * try { await copyWhatYouNeed(scratch.url) } finally { await scratch.close() }
 */
export async function restoreClusterAt(options: PgBackRestTools & {
  at: Date
  pgBinDir: string
  /** A directory on a disk with room for the whole cluster; a private subfolder is created inside. */
  scratchDir: string
  port?: number
  keepScratch?: boolean
  /** Role to connect as (the cluster's superuser). */
  user?: string
  /** How long recovery may take (replaying a day of WAL can take long). Default 1 h. */
  recoveryTimeoutMs?: number
  pollIntervalMs?: number
  now?: () => number
}): Promise<ScratchCluster> {
  checkStanzaName(options.stanza)
  const now = options.now ?? Date.now
  const startedAt = now()
  if (!existsSync(options.scratchDir)) throw new ToolkitError(`Le dossier de travail ${options.scratchDir} n'existe pas.`, { hint: 'Créez-le ou choisissez-en un autre (--scratch-dir).', exitCode: 2 })
  await removeDeadScratchClusters(options)
  const scratch = mkdtempSync(join(options.scratchDir, `pitr-${process.pid}-`))
  chmodSync(scratch, 0o700)
  giveTo(options.runAs, scratch)
  const dataDir = join(scratch, 'data')
  const socketDir = join(scratch, 'socket')
  const logFile = join(scratch, 'server.log')
  const pgCtl = join(options.pgBinDir, 'pg_ctl')
  let started = false
  const stopAndRemove = async () => {
    // immediate: the cluster is thrown away, nothing of it needs to reach the disk.
    if (started) await runAs(options, pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], { allowFailure: true, ignoreSignal: true })
    rmSync(scratch, { recursive: true, force: true })
  }
  try {
    if (Buffer.byteLength(join(socketDir, '.s.PGSQL.65535')) > 107) {
      throw new ToolkitError(`Chemin de socket trop long sous ${options.scratchDir}.`, { hint: 'Choisissez un dossier de travail au chemin plus court (--scratch-dir /var/tmp).', exitCode: 2 })
    }
    const range = await readPitrRange({ ...options, workDir: scratch })
    if (options.at.getTime() < range.earliest.getTime() || options.at.getTime() >= range.latest.getTime()) throw outOfRange(options.at, range)
    for (const dir of [dataDir, socketDir]) {
      mkdirSync(dir, { mode: 0o700 })
      giveTo(options.runAs, dir)
    }
    await runPgBackRest(options, [
      'restore',
      `--pg1-path=${dataDir}`,
      '--type=time',
      `--target=${toPgBackRestTime(options.at)}`,
      '--target-action=promote',
      // The restored cluster must not push its new timeline into the production repository.
      '--archive-mode=off',
      `--tablespace-map-all=${join(scratch, 'tablespaces')}`,
    ])
    const port = options.port ?? (await freePort())
    const configFile = join(scratch, 'postgresql.conf')
    writeScratchConfig(scratch, configFile, port, socketDir, options.runAs)
    started = true
    // -w returns once the postmaster runs recovery (hot_standby is off, so nobody can connect yet).
    const start = await runAs(options, pgCtl, ['-D', dataDir, '-o', `-c config_file=${configFile}`, '-l', logFile, '-w', '-t', '600', 'start'], { allowFailure: true })
    if (start.code !== 0) throw recoveryFailure(logFile, range, options.at)
    await waitForPromotion({ url: scratchUrl(options.user ?? 'postgres', port, socketDir), dataDir, logFile, signal: options.signal, timeoutMs: options.recoveryTimeoutMs ?? 3_600_000, pollMs: options.pollIntervalMs ?? 200, now, range, at: options.at })
    const log = readFileSync(logFile, 'utf8')
    const stop = /recovery stopping before (?:commit|abort) of transaction (\d+), time (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?)\+00/.exec(log)
    if (stop === null) throw new ToolkitError('La restauration n\'a pas prouvé qu\'elle s\'est arrêtée à l\'instant demandé (aucun « recovery stopping before » dans le journal).', { hint: `Journal du serveur : ${logFile}` })
    const stoppedBefore = { xid: Number(stop[1]), time: parsePgUtc(stop[2]!) }
    if (stoppedBefore.time.getTime() < options.at.getTime()) throw new ToolkitError(`La restauration s'est arrêtée avant l'instant demandé (${formatInstant(stoppedBefore.time)}).`, { hint: `Journal du serveur : ${logFile}` })
    const applied = /last completed transaction was at log time (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?)\+00/.exec(log)
    const url = scratchUrl(options.user ?? 'postgres', port, socketDir)
    const kept = options.keepScratch === true
    const stopCommand = `${options.runAs === undefined ? '' : `runuser -u ${shellWord(options.runAs)} -- `}${shellWord(pgCtl)} -D ${shellWord(dataDir)} -m fast stop && rm -rf ${shellWord(scratch)}`
    // A kept cluster outlives this process: the marker keeps the next run's sweep away from it.
    if (kept) writeFileSync(join(scratch, KEPT_MARKER), `${stopCommand}\n`)
    return {
      url,
      port,
      socketDir,
      dataDir,
      scratchDir: scratch,
      logFile,
      target: options.at,
      range,
      stoppedBefore,
      lastAppliedCommit: applied === null ? undefined : parsePgUtc(applied[1]!),
      durationMs: now() - startedAt,
      kept,
      stopCommand,
      close: async () => {
        if (!kept) await stopAndRemove()
      },
    }
  } catch (error) {
    await stopAndRemove()
    if (options.signal?.aborted === true) throw new ToolkitError('Restauration interrompue : le cluster temporaire a été arrêté et supprimé.', { exitCode: 130, cause: error })
    throw error
  }
}

/** The file that marks a scratch cluster kept on purpose (`--keep-scratch`); it holds the command that removes it. */
const KEPT_MARKER = 'KEPT-stop-command.txt'

/**
 * Scratch clusters (`<scratchDir>/pitr-<pid>-…`) of restores that were killed before their cleanup:
 * the owner is gone and the cluster was not kept, so its postmaster (still running, on a port of its
 * own) is stopped and its folder removed. Clusters of live restores and kept ones are left alone.
 */
async function removeDeadScratchClusters(options: Pick<PgBackRestTools, 'runAs' | 'runuserPath'> & { scratchDir: string; pgBinDir: string }): Promise<void> {
  for (const name of readdirSync(options.scratchDir)) {
    const owner = Number(/^pitr-(\d+)-/.exec(name)?.[1])
    if (!Number.isSafeInteger(owner) || owner === process.pid || processIsAlive(owner)) continue
    const scratch = join(options.scratchDir, name)
    if (existsSync(join(scratch, KEPT_MARKER))) continue
    const dataDir = join(scratch, 'data')
    if (existsSync(join(dataDir, 'postmaster.pid'))) await runAs(options, join(options.pgBinDir, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], { allowFailure: true, ignoreSignal: true })
    rmSync(scratch, { recursive: true, force: true })
  }
}

function outOfRange(at: Date, range: PitrRange): ToolkitError {
  return new ToolkitError(`Instant ${formatInstant(at)} hors de la plage restaurable (${formatRange(range.earliest, range.latest)}, fin exclue).`, {
    hint: 'Choisissez un instant dans cette plage ; la fin avance à chaque segment WAL archivé (SELECT pg_switch_wal(); pour forcer).',
    exitCode: 2,
  })
}

/** pgBackRest's --target for type=time: "YYYY-MM-DD HH:MM:SS.mmm+00". */
function toPgBackRestTime(at: Date): string {
  return at.toISOString().replace('T', ' ').replace('Z', '+00')
}

function scratchUrl(user: string, port: number, socketDir: string): string {
  return `postgresql://${encodeURIComponent(user)}@localhost:${port}/postgres?host=${encodeURIComponent(socketDir)}`
}

/**
 * Our own config file, hba and ident for the scratch cluster: the restored postgresql.conf may point at
 * the production port, certificates or preload libraries (and a Debian cluster keeps it outside the
 * data directory). Unix socket only, in a 0700 directory, so `trust` lets in only the owner.
 */
function writeScratchConfig(scratch: string, configFile: string, port: number, socketDir: string, owner: string | undefined): void {
  const hbaFile = join(scratch, 'pg_hba.conf')
  const identFile = join(scratch, 'pg_ident.conf')
  const files: [string, string][] = [
    [configFile, [
      `port = ${port}`,
      "listen_addresses = ''",
      `unix_socket_directories = '${socketDir}'`,
      `hba_file = '${hbaFile}'`,
      `ident_file = '${identFile}'`,
      // Connections wait for the end of recovery: a query during recovery would see a state before T.
      'hot_standby = off',
      'archive_mode = off',
      // A scratch copy is rebuilt from the repository after a crash, never trusted: skip the flushes
      // (the end-of-recovery checkpoint is most of the restore time on a small cluster).
      'fsync = off',
      'full_page_writes = off',
      // English messages and UTC times: the log is read to prove where recovery stopped.
      "lc_messages = 'C'",
      "log_timezone = 'UTC'",
      'logging_collector = off',
      '',
    ].join('\n')],
    [hbaFile, 'local all all trust\n'],
    [identFile, ''],
  ]
  for (const [path, text] of files) {
    writeFileSync(path, text, { mode: 0o600 })
    giveTo(owner, path)
  }
}

async function waitForPromotion(options: { url: string; dataDir: string; logFile: string; signal: AbortSignal | undefined; timeoutMs: number; pollMs: number; now: () => number; range: PitrRange; at: Date }): Promise<void> {
  const deadline = options.now() + options.timeoutMs
  for (;;) {
    if (options.signal?.aborted === true) throw new ToolkitError('Restauration interrompue.', { exitCode: 130 })
    const client = new pg.Client({ connectionString: options.url })
    try {
      await client.connect()
      const { rows } = await client.query<{ in_recovery: boolean }>('SELECT pg_is_in_recovery() AS in_recovery')
      if (rows[0]?.in_recovery === false) return
    } catch (error) {
      const code = (error as { code?: string }).code
      // 57P03: "the database system is starting up / not accepting connections" while recovery runs.
      if (code !== '57P03' && !existsSync(join(options.dataDir, 'postmaster.pid'))) throw recoveryFailure(options.logFile, options.range, options.at)
    } finally {
      await client.end().catch(() => undefined)
    }
    if (options.now() > deadline) throw new ToolkitError('La récupération n\'a pas fini dans le délai imparti.', { hint: `Augmentez le délai, ou suivez le journal : ${options.logFile}` })
    await new Promise((resolve) => setTimeout(resolve, options.pollMs))
  }
}

function recoveryFailure(logFile: string, range: PitrRange, at: Date): ToolkitError {
  const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''
  if (/recovery ended before configured recovery target was reached|requested recovery stop point is before consistent recovery point/.test(log)) return outOfRange(at, range)
  const fatal = log.split('\n').find((l) => /FATAL|PANIC/.test(l))
  return new ToolkitError(`Le cluster restauré n'a pas démarré${fatal === undefined ? '' : ` : ${fatal.replace(/^.*?(FATAL|PANIC):\s*/, '')}`}.`, { hint: `Journal du serveur : ${logFile}` })
}

// ---------------------------------------------------------------------------------------------
// Processes

interface RunResult {
  code: number | null
  stdout: string
  stderr: string
}

async function runPgBackRest(tools: PgBackRestTools, args: string[]): Promise<RunResult> {
  const result = await runAs(tools, tools.pgbackrestPath, [`--config=${tools.configPath}`, `--stanza=${tools.stanza}`, '--log-level-console=warn', ...args], { allowFailure: true })
  if (result.code !== 0) {
    const detail = (result.stderr + result.stdout).split('\n').find((l) => /ERROR/.test(l)) ?? (result.stderr + result.stdout).trim().split('\n')[0] ?? ''
    throw new ToolkitError(`pgbackrest ${args[0]} a échoué : ${detail.trim()}`, { hint: `Vérifiez la configuration : pgbackrest --config=${tools.configPath} --stanza=${tools.stanza} check` })
  }
  return result
}

/** Runs a program (as `runAs` through runuser when set), in UTC and the C locale, killed on abort. */
function runAs(tools: Pick<PgBackRestTools, 'runAs' | 'runuserPath' | 'signal'>, command: string, args: string[], options: { allowFailure?: boolean; ignoreSignal?: boolean } = {}): Promise<RunResult> {
  const [file, fileArgs] = tools.runAs === undefined ? [command, args] : [tools.runuserPath ?? '/usr/sbin/runuser', ['-u', tools.runAs, '--', command, ...args]]
  return new Promise((resolve, reject) => {
    const child = spawn(file, fileArgs, { env: { TZ: 'UTC', LC_ALL: 'C', PATH: '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'], signal: options.ignoreSignal === true ? undefined : tools.signal })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.once('error', (error) => reject(new ToolkitError(`Lancement de ${command} impossible.`, { hint: command.endsWith('pgbackrest') ? PGBACKREST_INSTALL_HINT : 'Vérifiez le chemin des binaires PostgreSQL (apt-get install postgresql-15).', cause: error })))
    child.once('close', (code) => {
      if (code !== 0 && options.allowFailure !== true) reject(new ToolkitError(`${command} ${args[0] ?? ''} a échoué (code ${code}) : ${stderr.trim().split('\n')[0] ?? ''}`))
      else resolve({ code, stdout, stderr })
    })
  })
}

/** Hands a path we created to the OS user that runs the restored cluster. */
function giveTo(user: string | undefined, path: string): void {
  if (user === undefined) return
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${user}:`))
  if (passwd === undefined) throw new ToolkitError(`Utilisateur système inconnu : ${user}.`, { hint: 'Donnez le propriétaire du cluster (souvent postgres).', exitCode: 2 })
  const [, , uid, gid] = passwd.split(':')
  chownSync(path, Number(uid), Number(gid))
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no free port'))))
    })
  })
}

// ---------------------------------------------------------------------------------------------
// The engine's face (Engine.pitr): the CLI's options in, a report out.

const DEFAULT_STANZA = 'main'
const DEFAULT_CONFIG = '/etc/pgbackrest.conf'
const DEFAULT_REPO = '/var/lib/pgbackrest'
const DEFAULT_PG_BIN_DIR = '/usr/lib/postgresql/15/bin'

function toolsFrom(options: PitrSettings): PgBackRestTools {
  return {
    pgbackrestPath: findPgBackRest({ searchPath: options.environment.searchPath }),
    configPath: options.pgbackrestConfig ?? DEFAULT_CONFIG,
    stanza: options.stanza ?? DEFAULT_STANZA,
    ...(options.runAs !== undefined ? { runAs: options.runAs } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
  }
}

const connectionOf = (location: DatabaseLocation) => {
  if (location.engine !== 'postgres') throw new Error(`not a PostgreSQL location: ${location.engine}`)
  return location.connectionString
}

export const postgresPitr: PointInTimeRecovery = {
  async replicate() {
    throw new ToolkitError('`replicate` concerne SQLite : PostgreSQL archive son WAL avec pgBackRest.', { hint: 'Lancez `advanced-backup pitr setup --database postgresql://…` puis `pitr backup` chaque nuit.', exitCode: 2 })
  },
  async setup(location, options) {
    const configPath = options.pgbackrestConfig ?? DEFAULT_CONFIG
    const plan = await pitrSetup({
      databaseUrl: connectionOf(location),
      repoPath: options.repoPath ?? DEFAULT_REPO,
      stanza: options.stanza ?? DEFAULT_STANZA,
      configPath,
      searchPath: options.environment.searchPath,
      apply: options.apply,
    })
    const lines = [
      `Archivage continu de ${options.redactedUrl} vers pgBackRest (stanza ${options.stanza ?? DEFAULT_STANZA}) :`,
      plan.changes.length === 0 ? '   postgresql.conf : déjà prêt (archive_mode, archive_command, wal_level).' : `   postgresql.conf : ${plan.changes.length} réglage(s) à changer${plan.restartNeeded ? ' (redémarrage nécessaire)' : ' (rechargement suffisant)'} :`,
      ...plan.postgresqlConfLines.map((line) => `     ${line}`),
      `   ${configPath} :`,
      ...plan.pgbackrestConf.trimEnd().split('\n').map((line) => `     ${line}`),
      ...(plan.installHint !== undefined ? [`   ⚠ pgBackRest est introuvable : ${plan.installHint}`] : []),
      ...(plan.written.length > 0 ? [`   Écrit : ${plan.written.join(', ')}`] : options.apply ? [] : ['   Rien n’a été écrit (ajoutez --apply pour l’écrire, sur un serveur dont vous êtes propriétaire).']),
      'Ensuite :',
      ...plan.nextSteps.map((step, index) => `   ${index + 1}. ${step}`),
    ]
    return { result: { ...plan }, lines }
  },
  async backup(location, options) {
    connectionOf(location)
    const backup = await pitrBackup(toolsFrom(options))
    return {
      result: { ...backup, startedAt: backup.startedAt.toISOString(), stoppedAt: backup.stoppedAt.toISOString() },
      lines: [`Sauvegarde pgBackRest ${backup.type === 'full' ? 'complète' : backup.type === 'incr' ? 'incrémentale' : 'différentielle'} ${backup.label} : base de ${backup.databaseSizeBytes} octets, ${backup.repositorySizeBytes} octets ajoutés au dépôt (${formatInstant(backup.startedAt)} → ${formatInstant(backup.stoppedAt)}).`],
    }
  },
  async stateAt(location, options) {
    const wanted = new URL(connectionOf(location)).pathname.replace(/^\//, '') || 'postgres'
    const cluster = await restoreClusterAt({
      ...toolsFrom(options),
      at: options.at,
      pgBinDir: options.pgBinDir ?? DEFAULT_PG_BIN_DIR,
      scratchDir: options.scratchDir ?? '/var/tmp',
      keepScratch: options.keepScratch,
    })
    const url = new URL(cluster.url)
    url.pathname = `/${encodeURIComponent(decodeURIComponent(wanted))}`
    const reachedAt = cluster.lastAppliedCommit ?? null
    return {
      kind: 'database',
      url: url.toString(),
      reachedAt,
      kept: cluster.kept,
      close: () => cluster.close(),
      report: {
        result: {
          engine: 'postgres', at: options.at.toISOString(), reachedAt: reachedAt?.toISOString() ?? null,
          stoppedBefore: { xid: cluster.stoppedBefore.xid, time: cluster.stoppedBefore.time.toISOString() },
          range: { from: cluster.range.earliest.toISOString(), to: cluster.range.latest.toISOString() },
          scratch: { url: url.toString(), dataDir: cluster.dataDir, kept: cluster.kept, stopCommand: cluster.stopCommand },
          durationMs: cluster.durationMs,
        },
        lines: [
          `Instant demandé : ${formatInstant(options.at)} ; dernière transaction appliquée : ${reachedAt === null ? 'aucune depuis la sauvegarde' : formatInstant(reachedAt)} (arrêt avant la transaction ${cluster.stoppedBefore.xid}, validée à ${formatInstant(cluster.stoppedBefore.time)}).`,
          `   Cluster temporaire restauré par pgBackRest en ${(cluster.durationMs / 1000).toFixed(1)} s ; plage restaurable : ${formatRange(cluster.range.earliest, cluster.range.latest)}, fin exclue.`,
          ...(cluster.kept ? [`   Cluster gardé pour inspection : psql "${url.toString()}"`, `   Pour l’arrêter et le supprimer : ${cluster.stopCommand}`] : []),
        ],
      },
    }
  },
}
