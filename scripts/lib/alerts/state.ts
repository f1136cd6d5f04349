/**
 * The alert state file: what each channel was last told about each alert, and when, so that
 * deduplication, the hold-down and "résolu" messages work across cron runs.
 * Invariant: the file is replaced whole (temp + fsync + rename + fsync dir), under a lock file, so
 * two sources running at once (backup check and dashboard) never lose each other's updates.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { writeFileAtomic } from '../fs/atomic.ts'
import type { AlertSeverity, AlertStatus } from './alert.ts'
import { realSleep } from './_http.ts'

export const ALERT_STATE_VERSION = 1

export interface ChannelState {
  /** The last status this channel received for the alert; null before the first message. */
  notified: AlertStatus | null
  /** When messages were sent (ISO), pruned to the hold-down window. */
  sentAt: string[]
  /** The last delivery failure, secrets masked. */
  lastError?: string
}

export interface AlertRecord {
  source: string
  severity: AlertSeverity
  title: string
  details: string[]
  status: AlertStatus
  since: string
  resolvedAt?: string
  channels: Record<string, ChannelState>
}

export interface AlertState {
  version: typeof ALERT_STATE_VERSION
  alerts: Record<string, AlertRecord>
}

export function emptyAlertState(): AlertState {
  return { version: ALERT_STATE_VERSION, alerts: {} }
}

/** Reads the state; a missing file is an empty state, an unreadable one throws (the caller decides). */
export function readAlertState(path: string): AlertState {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return emptyAlertState()
    throw error
  }
  const value = JSON.parse(text) as Partial<AlertState>
  if (value.version !== ALERT_STATE_VERSION || typeof value.alerts !== 'object' || value.alerts === null) {
    throw new Error(`version ${JSON.stringify(value.version)} inconnue ou contenu invalide`)
  }
  return value as AlertState
}

export function writeAlertState(path: string, state: AlertState): void {
  mkdirSync(dirname(path), { recursive: true })
  writeFileAtomic(path, `${JSON.stringify(state, null, 2)}\n`)
}

/**
 * Runs `fn` holding `<path>.lock` (created exclusively). A lock older than `staleMs` belongs to a
 * killed run and is taken over. Waits on real timers: an injected test clock must not spin here.
 */
export async function withStateLock<T>(path: string, fn: () => Promise<T>, options: { timeoutMs?: number; staleMs?: number } = {}): Promise<T> {
  const lockPath = `${path}.lock`
  const staleMs = options.staleMs ?? 120_000
  const deadline = Date.now() + (options.timeoutMs ?? 30_000)
  mkdirSync(dirname(path), { recursive: true })
  for (;;) {
    try {
      const fd = openSync(lockPath, 'wx')
      writeSync(fd, `${process.pid}\n`)
      closeSync(fd)
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      const age = lockAge(lockPath)
      if (age !== undefined && age > staleMs) rmSync(lockPath, { force: true })
      else if (Date.now() > deadline) throw new Error(`verrou ${lockPath} tenu par un autre processus`)
      else await realSleep(50)
    }
  }
  try {
    return await fn()
  } finally {
    rmSync(lockPath, { force: true })
  }
}

function lockAge(lockPath: string): number | undefined {
  try {
    return Date.now() - statSync(lockPath).mtimeMs
  } catch {
    return undefined
  }
}
