/**
 * The workerd process behind a local D1: Miniflare starts it and `dispose()` stops it, but a
 * toolkit process killed by SIGKILL never disposes — its workerd lives on, orphaned (~120 MB, the
 * D1's files open, answering no one), and Miniflare's temporary folder stays in TMPDIR. So each
 * local D1 notes in its state folder `.ipm-workerd-<pid>` (the toolkit's pid in the name: the rule
 * of fs/leftovers.ts) with its workerd's pid, start time and temporary folder; the next open of that
 * D1 kills the workerd of a note whose process is gone, removes its folder, then the note.
 * Found through /proc (Linux): elsewhere nothing is noted, nor reaped.
 */
import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from '../../fs/atomic.ts'
import { processIsAlive, removeDeadLeftovers } from '../../fs/leftovers.ts'

const NOTE_PREFIX = '.ipm-workerd-'

interface WorkerdNote {
  pid: number
  /** /proc's start time (clock ticks since boot): a pid reused by another process does not match. */
  startTime: string
  /** Miniflare's temporary folder, removed by `dispose()`. */
  tmpDir: string | null
}

function processStat(pid: number): { comm: string; state: string; ppid: number; startTime: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const close = text.lastIndexOf(')')
    const fields = text.slice(close + 2).split(' ')
    return { comm: text.slice(text.indexOf('(') + 1, close), state: fields[0]!, ppid: Number(fields[1]), startTime: fields[19]! }
  } catch {
    return undefined
  }
}

function openPaths(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
      try {
        return [readlinkSync(`/proc/${pid}/fd/${fd}`)]
      } catch {
        return []
      }
    })
  } catch {
    return []
  }
}

/** The pid a note's name (or its temporary name while written) carries. */
const noteOwner = (name: string) => (name.startsWith(NOTE_PREFIX) ? Number(/^\d+/.exec(name.slice(NOTE_PREFIX.length))?.[0]) || undefined : undefined)

/**
 * Kills the workerd of each note in `persistDir` whose process is gone and removes its temporary
 * folder and the note; returns the workerd pids killed. Call before starting a Miniflare on `persistDir`.
 * @example reapDeadWorkerds('/srv/d1-state') // [48211] after a run killed by SIGKILL
 */
export async function reapDeadWorkerds(persistDir: string): Promise<number[]> {
  if (!existsSync('/proc/self/stat') || !existsSync(persistDir)) return []
  const killed: number[] = []
  for (const name of readdirSync(persistDir)) {
    const owner = noteOwner(name)
    if (owner === undefined || owner === process.pid || processIsAlive(owner)) continue
    let note: WorkerdNote
    try {
      note = JSON.parse(readFileSync(join(persistDir, name), 'utf8')) as WorkerdNote
    } catch {
      continue
    }
    const stat = processStat(note.pid)
    if (stat?.comm === 'workerd' && stat.startTime === note.startTime && stat.state !== 'Z') {
      process.kill(note.pid, 'SIGKILL')
      killed.push(note.pid)
    }
    if (note.tmpDir !== null && /\/miniflare-[0-9a-f]{32}$/.test(note.tmpDir)) rmSync(note.tmpDir, { recursive: true, force: true })
  }
  // Its files closed before a new workerd opens them: gone, or a zombie (which holds no file).
  for (const pid of killed) {
    for (let i = 0; i < 200; i++) {
      const state = processStat(pid)?.state
      if (state === undefined || state === 'Z' || state === 'X') break
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
  removeDeadLeftovers(persistDir, noteOwner)
  return killed
}

/**
 * Notes this process's workerd serving `persistDir` (its child holding a file there); `remove`
 * deletes the note once the workerd is stopped. Nothing is noted when none is found.
 */
export function noteWorkerd(persistDir: string): { remove(): void } {
  const none = { remove() {} }
  if (!existsSync('/proc/self/stat')) return none
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const pid = Number(entry)
    const stat = processStat(pid)
    if (stat === undefined || stat.ppid !== process.pid || stat.comm !== 'workerd') continue
    const paths = openPaths(pid)
    if (!paths.some((path) => path === persistDir || path.startsWith(`${persistDir}/`))) continue
    const tmpDir = paths.map((path) => /^(.*\/miniflare-[0-9a-f]{32})(\/|$)/.exec(path)?.[1]).find((dir) => dir !== undefined) ?? null
    const file = join(persistDir, `${NOTE_PREFIX}${process.pid}`)
    writeFileAtomic(file, JSON.stringify({ pid, startTime: stat.startTime, tmpDir } satisfies WorkerdNote))
    return { remove: () => rmSync(file, { force: true }) }
  }
  return none
}
