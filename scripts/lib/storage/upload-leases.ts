/**
 * Who is uploading what under a storage prefix, without a database: each process that uploads
 * first writes a small lease object `uploads-in-progress/<host>-<pid>-<random>.json` naming its
 * host, pid, process start and the keys it is about to put, refreshes it every 5 minutes, and
 * deletes it when done. A sweep of incomplete uploads (killed runs) spares the keys of live leases.
 *
 * When is a lease's owner dead? As restic judges its locks:
 * - same host name and same pid space (Linux: the kernel's boot id and the pid namespace, so two
 *   cloned containers with one host name are not taken for one machine): when its pid no longer
 *   exists, or exists but started at another time (a reused pid; Linux's /proc tells it);
 * - another host, or another pid space (a clone, or this machine before a reboot): only once the
 *   lease has not been refreshed for `staleAfterMs` (24 h by default, measured on the storage's own
 *   clock: our lease's date against theirs, so host clocks do not matter). A machine that died
 *   mid-upload therefore keeps its leftovers a day at most, unless it runs again before rebooting
 *   (then its dead pid frees them at once).
 * An incomplete upload that no lease names (older versions, foreign tools) is removed when it
 * started before our own lease was written (the storage's clock, minus `LEASE_CLOCK_MARGIN_MS`):
 * an uploader writes its lease before it starts, and we list the leases after writing ours, so
 * an upload started earlier than ours has a lease we see.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, readlinkSync } from 'node:fs'
import { hostname } from 'node:os'
import { Readable } from 'node:stream'
import { ToolkitError } from '../errors.ts'
import { processIsAlive } from '../fs/leftovers.ts'
import type { ObjectStorage } from './storage.ts'

/** Where leases live under the storage's root; never a backup name. */
export const LEASE_PREFIX = 'uploads-in-progress/'
/** How often a live uploader rewrites its lease (restic refreshes its locks every 5 minutes). */
export const LEASE_REFRESH_MS = 5 * 60_000
/** A lease of another host is stale once not refreshed for this long (generous: a paused VM, a slow link). */
export const FOREIGN_LEASE_STALE_MS = 24 * 3_600_000
/** Uploads no lease names are swept only when started this long before our lease (clocks of a distributed service). */
export const LEASE_CLOCK_MARGIN_MS = 1_000
/** No live lease write lasts this long: an incomplete upload of a lease older than that was killed. */
export const LEASE_WRITE_GRACE_MS = 10 * 60_000
/** A lease larger than this is not ours (and is not read into memory). */
const MAX_LEASE_BYTES = 64 * 1024

export interface UploadOwner {
  host: string
  pid: number
  /** The process's start on its host (Linux: boot id + start time in clock ticks); undefined elsewhere. */
  processStart?: string | undefined
  /** Where its pid means something (Linux: boot id + pid namespace); undefined elsewhere. */
  pidSpace?: string | undefined
}

export interface LeaseRecord extends UploadOwner {
  version: 1
  /** When the lease was first written (the owner's clock, for people reading it). */
  startedAt: string
  /** Keys (relative to the storage's root) this owner is putting. */
  keys: string[]
}

/** The Linux start of process `pid` (boot id + start time), or undefined when unknown. */
export function processStartOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Field 22 (starttime) counts from the field after the command name, which may hold spaces or ")".
    const ticks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    return ticks === undefined ? undefined : `${boot}:${ticks}`
  } catch {
    return undefined
  }
}

/** The pid space of this process: the kernel's boot id and the pid namespace (`pid:[4026531836]`), or undefined off Linux. */
export function currentPidSpace(): string | undefined {
  try {
    return `${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}:${readlinkSync('/proc/self/ns/pid')}`
  } catch {
    return undefined
  }
}

/** This process as an uploader. */
export function currentOwner(): UploadOwner {
  return { host: hostname(), pid: process.pid, processStart: processStartOf(process.pid), pidSpace: currentPidSpace() }
}

export interface LeaseJudgement {
  /** Keys of live leases other than ours: never swept. */
  live: Set<string>
  /** Keys of dead owners' leases: swept whatever their age (unless a live lease names them too). */
  dead: Set<string>
  /** Owners of live leases, by key (for messages). */
  owners: Map<string, UploadOwner>
  /** Lease objects of dead owners, removed by the sweep after their uploads. */
  staleLeases: string[]
}

export interface UploadLeaseOptions {
  /** Defaults to this process (tests play another host). */
  owner?: UploadOwner
  refreshMs?: number
  staleAfterMs?: number
  /** Defaults to processIsAlive; tests inject their own. */
  isAlive?: (pid: number) => boolean
  /** Defaults to processStartOf. */
  startOf?: (pid: number) => string | undefined
}

export interface UploadLease {
  /** This lease's object key. */
  readonly key: string
  /** The storage's date of our lease, minus the margin: incomplete uploads no lease names are swept only if started before it. */
  readonly startedBefore: Date
  /** What the other leases said when ours was written. */
  readonly others: LeaseJudgement
  /** Stops refreshing and deletes the lease (best effort: a lease left behind is judged dead later). */
  release(): Promise<void>
}

function leaseKeyFor(owner: UploadOwner): string {
  return `${LEASE_PREFIX}${owner.host.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100) || 'host'}-${owner.pid}-${randomBytes(4).toString('hex')}.json`
}

function parseLease(text: string): LeaseRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<LeaseRecord>
    if (value.version !== 1 || typeof value.host !== 'string' || !Number.isSafeInteger(value.pid) || !Array.isArray(value.keys) || !value.keys.every((key) => typeof key === 'string')) return undefined
    return value as LeaseRecord
  } catch {
    return undefined
  }
}

async function readLease(storage: ObjectStorage, key: string, size: number): Promise<LeaseRecord | undefined> {
  if (size > MAX_LEASE_BYTES) return undefined
  const parts: Buffer[] = []
  try {
    for await (const chunk of await storage.get(key)) parts.push(chunk as Buffer)
  } catch {
    // Released meanwhile: its owner is done.
    return undefined
  }
  return parseLease(Buffer.concat(parts).toString('utf8'))
}

/**
 * Is the owner of a lease alive? `age` is how long ago (storage clock) the lease was last written.
 * @example ownerIsAlive(lease, currentOwner(), 3_600_000)
 */
export function ownerIsAlive(owner: UploadOwner, here: UploadOwner, age: number, options: Pick<UploadLeaseOptions, 'staleAfterMs' | 'isAlive' | 'startOf'> = {}): boolean {
  // A pid is judged only in the pid space it belongs to; a lease without one (another system, an older version) by its host name.
  const samePidSpace = owner.host === here.host && (owner.pidSpace === undefined || owner.pidSpace === here.pidSpace)
  if (!samePidSpace) return age <= (options.staleAfterMs ?? FOREIGN_LEASE_STALE_MS)
  if (!(options.isAlive ?? processIsAlive)(owner.pid)) return false
  if (owner.processStart === undefined) return true
  const start = (options.startOf ?? processStartOf)(owner.pid)
  return start === undefined || start === owner.processStart
}

/**
 * Reads every lease but `except` and judges its owner. `now` is the storage's date of a fresh write.
 * @example const { live } = await judgeLeases(storage, now)
 */
export async function judgeLeases(storage: ObjectStorage, now: Date, options: UploadLeaseOptions & { except?: string } = {}): Promise<LeaseJudgement> {
  const here = options.owner ?? currentOwner()
  const judgement: LeaseJudgement = { live: new Set(), dead: new Set(), owners: new Map(), staleLeases: [] }
  const found: { key: string; size: number; lastModified: Date }[] = []
  for await (const object of storage.list(LEASE_PREFIX)) if (object.key !== options.except && object.key.endsWith('.json')) found.push(object)
  for (const object of found) {
    const age = now.getTime() - object.lastModified.getTime()
    const lease = await readLease(storage, object.key, object.size)
    if (lease === undefined) {
      // Not a lease we can read (foreign, damaged): it protects nothing, and goes once old.
      if (age > (options.staleAfterMs ?? FOREIGN_LEASE_STALE_MS)) judgement.staleLeases.push(object.key)
      continue
    }
    if (ownerIsAlive(lease, here, age, options)) {
      for (const key of lease.keys) {
        judgement.live.add(key)
        judgement.owners.set(key, lease)
      }
    } else {
      for (const key of lease.keys) judgement.dead.add(key)
      judgement.staleLeases.push(object.key)
    }
  }
  for (const key of judgement.live) judgement.dead.delete(key)
  return judgement
}

/** The ids (from the keys) that leases claim, live or not: an id to avoid for a new backup. */
export async function keysInLeases(storage: ObjectStorage): Promise<string[]> {
  const keys: string[] = []
  for await (const object of storage.list(LEASE_PREFIX)) {
    if (!object.key.endsWith('.json')) continue
    keys.push(...((await readLease(storage, object.key, object.size))?.keys ?? []))
  }
  return keys
}

/**
 * Writes our lease for `keys`, refreshed until released, and judges the others. Refuses (and writes
 * nothing more) when a live lease already names one of our keys: two uploads to one key would
 * destroy each other.
 * @example const lease = await takeUploadLease(storage, ['backup-x.tar.gz', 'backup-x.metadata.json']); try { … } finally { await lease.release() }
 */
export async function takeUploadLease(storage: ObjectStorage, keys: string[], options: UploadLeaseOptions = {}): Promise<UploadLease> {
  const owner = options.owner ?? currentOwner()
  const key = leaseKeyFor(owner)
  const record: LeaseRecord = {
    version: 1,
    host: owner.host,
    pid: owner.pid,
    ...(owner.processStart !== undefined ? { processStart: owner.processStart } : {}),
    ...(owner.pidSpace !== undefined ? { pidSpace: owner.pidSpace } : {}),
    startedAt: new Date().toISOString(),
    keys,
  }
  const text = Buffer.from(`${JSON.stringify(record, null, 2)}\n`, 'utf8')
  // The hash announced up front: S3 then stores it at creation instead of a self-copy after the upload.
  const sha256 = createHash('sha256').update(text).digest('hex')
  const write = async () => {
    await storage.put(key, Readable.from([text]), { size: text.length, sha256 })
    return (await storage.head(key))?.lastModified
  }
  const written = await write()
  let released = false
  let refreshing: Promise<unknown> = Promise.resolve()
  const release = async () => {
    if (released) return
    released = true
    clearInterval(timer)
    // A refresh still on its way would bring the lease back after the delete (waited for 30 s at most:
    // a lease left behind is only judged dead later).
    await Promise.race([refreshing, new Promise((resolve) => setTimeout(resolve, 30_000).unref())])
    await storage.delete(key).catch(() => {})
  }
  // One refresh at a time; one that fails is tried again at the next tick (the upload itself reports a storage that is gone).
  const timer = setInterval(() => {
    refreshing = refreshing.then(() => (released ? undefined : write().catch(() => undefined)))
  }, options.refreshMs ?? LEASE_REFRESH_MS)
  timer.unref()
  try {
    if (written === undefined) throw new ToolkitError(`le bail d’envoi « ${key} » n’apparaît pas sur ${storage.location}`, { hint: 'relancez la commande ; si cela se répète, vérifiez le service de stockage' })
    const others = await judgeLeases(storage, written, { ...options, owner, except: key })
    const taken = keys.find((wanted) => others.live.has(wanted))
    if (taken !== undefined) {
      const holder = others.owners.get(taken)!
      throw new ToolkitError(`« ${taken} » est déjà en cours d’envoi vers ${storage.location} par un autre processus (${holder.host}, pid ${holder.pid}) : rien n’a été envoyé`, { hint: 'deux sauvegardes de la même seconde vers le même préfixe : relancez la commande, la nouvelle sauvegarde aura un autre identifiant' })
    }
    return { key, startedBefore: new Date(written.getTime() - LEASE_CLOCK_MARGIN_MS), others, release }
  } catch (error) {
    await release()
    throw error
  }
}
