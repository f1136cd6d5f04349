/**
 * The only reader of process.env and the .env file. Everything else receives a
 * ToolkitEnvironment, so tests can drive any code path without touching the real environment.
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { AlertEnvironment } from './alerts/config.ts'

/**
 * The project's root folder, found from this module's own location whatever the current directory:
 * the nearest folder above it that holds package.json (scripts/lib/ from source, dist/ when built).
 */
export const PROJECT_ROOT = projectRootAbove(dirname(fileURLToPath(import.meta.url)))

function projectRootAbove(dir: string): string {
  for (let at = dir; ; at = dirname(at)) {
    if (existsSync(join(at, 'package.json'))) return at
    if (dirname(at) === at) throw new Error(`no package.json above ${dir}`)
  }
}

export interface ToolkitEnvironment {
  /** The folder the user ran the command from: paths the user gives resolve against it. */
  cwd: string
  /** The project's root: the defaults (`./backups`, `prisma/dev.db`, the report, `.env`) resolve against it. */
  projectRoot: string
  /** The app database; the project's prisma/dev.db when nothing is set. */
  databaseUrl: string
  /** DATABASE_URL is not set: `databaseUrl` is the project's default. */
  databaseUrlIsDefault: boolean
  /** A PostgreSQL database to test or migrate from; unset means "not configured". */
  postgresUrl: string | undefined
  /** Where `d1://local` keeps Miniflare's D1 state. */
  d1PersistDir: string
  /** Credentials of Cloudflare's HTTP API for remote D1 (`d1://<account>/<database>`). */
  cloudflareD1Token: string | undefined
  /** The D1 database `test-all-databases` checks (`d1://local[/<dir>]` or `d1://<account>/<database>`); unset means `d1://local`. */
  d1Url: string | undefined
  /** The alert channels' variables (SLACK_WEBHOOK_URL, ALERT_WEBHOOK_URL, SMTP_URL + ALERT_EMAIL_TO, ALERT_EMAIL_FROM), passed to alertChannelsFromEnvironment. */
  alerts: AlertEnvironment
  /** ALERT_STATE_FILE: the alert state file; unset, each source keeps it beside its files (backups folder, metrics file). */
  alertStateFile: string | undefined
  /** DASHBOARD_TOKEN: the token of the live dashboard (`--serve`), required when it listens beyond 127.0.0.1. */
  dashboardToken: string | undefined
  /** DASHBOARD_PORT: the port of the live dashboard when `--port` is not given (another one than 4319, e.g. for the menu's option). */
  dashboardPort: string | undefined
  /**
   * The standard OpenTelemetry variables: OTEL_EXPORTER_OTLP_ENDPOINT (`/v1/traces` appended) or
   * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is) set turns tracing on, as `--otel` does, unless
   * OTEL_SDK_DISABLED=true; OTEL_EXPORTER_OTLP_(TRACES_)HEADERS, OTEL_SERVICE_NAME. See telemetry/tracing.ts `tracingOptions`.
   */
  otel: {
    endpoint: string | undefined
    tracesEndpoint?: string | undefined
    headers: string | undefined
    tracesHeaders?: string | undefined
    serviceName: string | undefined
    sdkDisabled?: boolean
  }
  /** The variables that say whether there is a graphical session to open a document in. */
  display: { DISPLAY?: string; WAYLAND_DISPLAY?: string }
  /** Print stack traces. */
  debug: boolean
  /** NO_COLOR is set (https://no-color.org): no ANSI colours, whatever FORCE_COLOR says. chalk 5 does not read it. */
  noColor: boolean
  /** Credentials and endpoints of the object storages (`--dir`/`--offsite` URLs of every verb), each ecosystem's standard variables; passed to `openStorage`. */
  storage: { AWS_ACCESS_KEY_ID?: string; AWS_SECRET_ACCESS_KEY?: string; AWS_SESSION_TOKEN?: string; AWS_REGION?: string; AWS_ENDPOINT_URL_S3?: string; AZURE_STORAGE_CONNECTION_STRING?: string }
  /** PATH, where external tools (pgbackrest) are looked for. */
  searchPath: string
  /** CLOUDFLARE_API_BASE: another address for Cloudflare's API (a local stand-in in tests); unset means the real one. */
  cloudflareApiBase: string | undefined
  /** IPM_BACKUP_KILL_AT: a backup step at which the process SIGKILLs itself (crash-safety tests only; see backup/kill-points.ts). */
  backupKillAt?: string | undefined
  /** BACKUP_OFFSITE_URL: where `create` copies each backup once verified (same as `--offsite`). */
  backupOffsiteUrl?: string | undefined
  /** BACKUP_ENCRYPTION_KEY (base64 key) and BACKUP_PASSPHRASE: key sources of `--encrypt`, restore and verify. Never printed. */
  backupEncryptionKey?: string | undefined
  backupPassphrase?: string | undefined
  /** BACKUP_HISTORY_DIR: where history.jsonl goes when --dir is a storage URL (default backups/ of the project). */
  backupHistoryDir?: string | undefined
}

export const DEFAULT_D1_PERSIST_DIR = '.wrangler/state/d1'

/** Reads the environment once; `.env` fills what the shell did not set. */
export function resolveEnvironment(
  env: NodeJS.ProcessEnv = loadProcessEnvironment(),
  where: { cwd?: string; projectRoot?: string } = {},
): ToolkitEnvironment {
  const projectRoot = where.projectRoot ?? PROJECT_ROOT
  const nonEmpty = (value: string | undefined) => (value === undefined || value.trim() === '' ? undefined : value.trim())
  return {
    cwd: where.cwd ?? process.cwd(),
    projectRoot,
    databaseUrl: nonEmpty(env.DATABASE_URL) ?? `file:${join(projectRoot, 'prisma', 'dev.db')}`,
    databaseUrlIsDefault: nonEmpty(env.DATABASE_URL) === undefined,
    postgresUrl: nonEmpty(env.POSTGRES_URL),
    d1PersistDir: nonEmpty(env.D1_PERSIST_DIR) ?? join(projectRoot, DEFAULT_D1_PERSIST_DIR),
    cloudflareD1Token: nonEmpty(env.CLOUDFLARE_D1_TOKEN),
    d1Url: nonEmpty(env.D1_URL),
    alerts: {
      SLACK_WEBHOOK_URL: nonEmpty(env.SLACK_WEBHOOK_URL),
      ALERT_WEBHOOK_URL: nonEmpty(env.ALERT_WEBHOOK_URL),
      SMTP_URL: nonEmpty(env.SMTP_URL),
      ALERT_EMAIL_TO: nonEmpty(env.ALERT_EMAIL_TO),
      ALERT_EMAIL_FROM: nonEmpty(env.ALERT_EMAIL_FROM),
    },
    alertStateFile: nonEmpty(env.ALERT_STATE_FILE),
    dashboardToken: nonEmpty(env.DASHBOARD_TOKEN),
    dashboardPort: nonEmpty(env.DASHBOARD_PORT),
    otel: {
      endpoint: nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT),
      tracesEndpoint: nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
      headers: nonEmpty(env.OTEL_EXPORTER_OTLP_HEADERS),
      tracesHeaders: nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS),
      serviceName: nonEmpty(env.OTEL_SERVICE_NAME),
      sdkDisabled: nonEmpty(env.OTEL_SDK_DISABLED)?.toLowerCase() === 'true',
    },
    display: { ...(nonEmpty(env.DISPLAY) ? { DISPLAY: env.DISPLAY } : {}), ...(nonEmpty(env.WAYLAND_DISPLAY) ? { WAYLAND_DISPLAY: env.WAYLAND_DISPLAY } : {}) },
    debug: nonEmpty(env.DEBUG) !== undefined,
    noColor: nonEmpty(env.NO_COLOR) !== undefined,
    backupKillAt: nonEmpty(env.IPM_BACKUP_KILL_AT),
    storage: Object.fromEntries((['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_REGION', 'AWS_ENDPOINT_URL_S3', 'AZURE_STORAGE_CONNECTION_STRING'] as const).flatMap((name) => (nonEmpty(env[name]) === undefined ? [] : [[name, env[name]!.trim()]]))),
    searchPath: env.PATH ?? '',
    cloudflareApiBase: nonEmpty(env.CLOUDFLARE_API_BASE),
    backupOffsiteUrl: nonEmpty(env.BACKUP_OFFSITE_URL),
    backupHistoryDir: nonEmpty(env.BACKUP_HISTORY_DIR),
    backupEncryptionKey: nonEmpty(env.BACKUP_ENCRYPTION_KEY),
    // A passphrase is taken as typed: spaces may be part of it.
    backupPassphrase: env.BACKUP_PASSPHRASE === undefined || env.BACKUP_PASSPHRASE === '' ? undefined : env.BACKUP_PASSPHRASE,
  }
}

function loadProcessEnvironment(): NodeJS.ProcessEnv {
  // process.loadEnvFile never overrides a variable the shell already set.
  const file = join(PROJECT_ROOT, '.env')
  if (existsSync(file)) process.loadEnvFile(file)
  return process.env
}
