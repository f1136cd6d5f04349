/**
 * The `.tar.gz` of a backup: a ustar archive (pax headers for long names, as GNU tar reads them)
 * of the backup folder, gzip-compressed on every core (see gzip-blocks.ts).
 *
 * Writing: files are added one after the other while other work goes on, each one read once from
 * disk — that read also hashes it — and the archive's own SHA-256 is computed as it is written.
 * Reading: `readArchive` checks the archive the way `sha256sum` + `tar -tvzf` would, in one pass:
 * the archive's SHA-256, every entry's type, path, size and SHA-256, and whether the archive ends
 * where a tar archive ends (a truncated or corrupted archive is reported, never half-read silently).
 * The same pass can write chosen entries to files (`extract`, restore's one pass: copies.ts).
 */
import { createHash, type Hash } from 'node:crypto'
import { createReadStream, statSync } from 'node:fs'
import { open, stat, type FileHandle } from 'node:fs/promises'
import { Header, Pax } from 'tar'
import { BLOCK_SIZE, BufferPool, GzipPool, inflateFile, memberHeader, type BlockResult, type GzipDamage, type InflatedFile } from './gzip-blocks.ts'
import type { WrittenFile } from '../../fs/hashed-file.ts'
import { VerifiedCopies } from './copies.ts'

const RECORD = 512

export interface ArchiveWriterOptions {
  pool: GzipPool
  /**
   * Called with the input bytes read so far and the input handed over so far (the sizes of the
   * files added): a progress bar over the input, which grows as files are added, never stuck at 100 %.
   */
  onBytes?: (done: number, total: number) => void
}

/** A file's place in the archive: where its data starts in the uncompressed tar stream. */
export interface ArchivedFile extends WrittenFile {
  offset: number
}

/**
 * The gzip members holding a range of the uncompressed tar stream: the members are numbered from 0
 * and each holds BLOCK_SIZE uncompressed bytes (the last one fewer), so byte `x` of the tar stream
 * is in member `floor(x / BLOCK_SIZE)`; `offset` is where member `first` starts in the archive file.
 */
export interface MemberSpan {
  first: number
  offset: number
  /** Compressed length and SHA-256 of each member from `first` on. */
  members: [length: number, sha256: string][]
}

/**
 * Builds a .tar.gz incrementally.
 * @example
 * const archive = await ArchiveWriter.create('b.tar.gz.tmp', { pool })
 * await archive.addFile('backup-x/database.db', '/staging/database.db', new Date())
 * const { size, sha256 } = await archive.finish()
 */
export class ArchiveWriter {
  #handle: FileHandle
  #pool: GzipPool
  #hash: Hash = createHash('sha256')
  #size = 0
  #blocks: BufferPool
  #block: Buffer
  #fill = 0
  #inflight: Promise<BlockResult>[] = []
  #maxInflight: number
  #queue: Promise<unknown> = Promise.resolve()
  #added = 0
  #input = 0
  #failure: Error | undefined
  #onBytes: ((done: number, total: number) => void) | undefined
  /** Blocks handed to the pool so far (all full but the last one `finish` hands over). */
  #blocksFlushed = 0
  /** Compressed length of each member written, in order, and the SHA-256 of those in a `#hashed` range. */
  #memberLengths: number[] = []
  #memberHashes = new Map<number, string>()
  #hashed: [start: number, end: number][] = []

  private constructor(handle: FileHandle, options: ArchiveWriterOptions) {
    this.#handle = handle
    this.#pool = options.pool
    this.#maxInflight = options.pool.size * 2 + 1
    this.#blocks = new BufferPool(BLOCK_SIZE, this.#maxInflight + 2)
    this.#block = this.#blocks.take()
    this.#onBytes = options.onBytes
  }

  static async create(path: string, options: ArchiveWriterOptions): Promise<ArchiveWriter> {
    return new ArchiveWriter(await open(path, 'wx'), options)
  }

  /** Adds a directory entry (mode 0755). Entries are written in the order they are added. */
  addDirectory(name: string, mtime: Date): Promise<void> {
    return this.#enqueue(async () => {
      await this.#header({ path: name.endsWith('/') ? name : `${name}/`, type: 'Directory', mode: 0o755, size: 0, mtime })
    })
  }

  /**
   * Adds a regular file (mode 0644) read from `source`; resolves with the size and SHA-256 of what
   * was read (`sha256` is '' with `hash: false`, for a file hashed when it was written).
   */
  addFile(name: string, source: string, mtime: Date, options: { hash?: boolean; onBytes?: (bytes: number) => void; members?: boolean } = {}): Promise<ArchivedFile> {
    const hashing = options.hash ?? true
    // A file is handed over complete: its size joins the input total now, before it is read.
    this.#input += statSync(source, { throwIfNoEntry: false })?.size ?? 0
    return this.#enqueue(async () => {
      const handle = await open(source, 'r')
      try {
        const { size } = await handle.stat()
        await this.#header({ path: name, type: 'File', mode: 0o644, size, mtime })
        const offset = this.#blocksFlushed * BLOCK_SIZE + this.#fill
        // `members`: this file's members are hashed as they are written (see `membersOf`).
        if (options.members) this.#hashed.push([offset, offset + size])
        const hash = createHash('sha256')
        let done = 0
        while (done < size) {
          if (this.#fill === BLOCK_SIZE) await this.#flushBlock()
          const want = Math.min(size - done, BLOCK_SIZE - this.#fill)
          const { bytesRead } = await handle.read(this.#block, this.#fill, want, null)
          if (bytesRead === 0) throw new Error(`${source} a rétréci pendant son archivage`)
          if (hashing) hash.update(this.#block.subarray(this.#fill, this.#fill + bytesRead))
          this.#fill += bytesRead
          done += bytesRead
          options.onBytes?.(done)
          this.#progress(bytesRead)
        }
        if ((await handle.stat()).size !== size) throw new Error(`${source} a changé pendant son archivage`)
        await this.#append(Buffer.alloc((RECORD - (size % RECORD)) % RECORD))
        return { size, sha256: hashing ? hash.digest('hex') : '', offset }
      } finally {
        await handle.close()
      }
    })
  }

  /** Ends the archive (two zero records), writes the last block, fsyncs and closes the file. */
  async finish(): Promise<WrittenFile> {
    await this.#enqueue(async () => {
      await this.#append(Buffer.alloc(2 * RECORD))
      if (this.#fill > 0) await this.#flushBlock()
      while (this.#inflight.length > 0) await this.#writeOldest()
      await this.#handle.sync()
    })
    await this.#handle.close()
    return { size: this.#size, sha256: this.#hash.digest('hex') }
  }

  /**
   * After `finish`: the members holding bytes [start, end) of the tar stream of a file added with
   * `members: true` (a range of a tenant-restore index, see tenant-restore/sections.ts).
   */
  membersOf(start: number, end: number): MemberSpan {
    const first = Math.floor(start / BLOCK_SIZE)
    const last = Math.floor((Math.max(end, start + 1) - 1) / BLOCK_SIZE)
    let offset = 0
    for (let i = 0; i < first; i++) offset += this.#memberLengths[i]!
    const members: MemberSpan['members'] = []
    for (let i = first; i <= last; i++) {
      const sha256 = this.#memberHashes.get(i)
      if (sha256 === undefined || this.#memberLengths[i] === undefined) throw new Error(`membre gzip n° ${i} non haché`)
      members.push([this.#memberLengths[i]!, sha256])
    }
    return { first, offset, members }
  }

  /** Stops after a failure; the caller removes the file. */
  async abort(): Promise<void> {
    await this.#queue.catch(() => {})
    await Promise.allSettled(this.#inflight)
    await this.#handle.close().catch(() => {})
  }

  #enqueue<T>(work: () => Promise<T>): Promise<T> {
    // The first failure sticks: every later entry, and finish(), fail with it.
    const result = this.#queue.then(() => {
      if (this.#failure) throw this.#failure
      return work()
    })
    this.#queue = result.catch((error: unknown) => {
      this.#failure ??= error instanceof Error ? error : new Error(String(error))
    })
    return result
  }

  #progress(bytes: number): void {
    this.#added += bytes
    this.#onBytes?.(this.#added, Math.max(this.#input, this.#added))
  }

  async #header(data: { path: string; type: 'File' | 'Directory'; mode: number; size: number; mtime: Date }): Promise<void> {
    const header = new Header({ ...data, uid: 0, gid: 0, uname: 'root', gname: 'root' })
    header.encode()
    if (header.needPax) await this.#append(new Pax({ path: data.path, size: data.size, mtime: data.mtime }).encode())
    await this.#append(header.block!)
  }

  async #append(bytes: Buffer): Promise<void> {
    let offset = 0
    while (offset < bytes.length) {
      if (this.#fill === BLOCK_SIZE) await this.#flushBlock()
      const n = bytes.copy(this.#block, this.#fill, offset)
      this.#fill += n
      offset += n
    }
  }

  async #flushBlock(): Promise<void> {
    const block = this.#fill === BLOCK_SIZE ? this.#block : this.#block.subarray(0, this.#fill)
    const member = this.#pool.gzip(block)
    member.catch(() => {})
    this.#inflight.push(member)
    this.#blocksFlushed += 1
    this.#block = this.#blocks.take()
    this.#fill = 0
    while (this.#inflight.length > this.#maxInflight) await this.#writeOldest()
  }

  async #writeOldest(): Promise<void> {
    const { data: z, input } = await this.#inflight.shift()!
    this.#blocks.give(input)
    const parts = [memberHeader(z), z.subarray(10)]
    for (const part of parts) this.#hash.update(part)
    const total = parts[0]!.length + parts[1]!.length
    const index = this.#memberLengths.length
    this.#memberLengths.push(total)
    const [from, to] = [index * BLOCK_SIZE, (index + 1) * BLOCK_SIZE]
    if (this.#hashed.some(([start, end]) => start < to && end > from)) this.#memberHashes.set(index, createHash('sha256').update(parts[0]!).update(parts[1]!).digest('hex'))
    let written = (await this.#handle.writev(parts)).bytesWritten
    while (written < total) {
      const rest = Buffer.concat(parts).subarray(written)
      written += (await this.#handle.write(rest, 0, rest.length, null)).bytesWritten
    }
    this.#size += total
  }
}

export type ArchiveEntryType = 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'Other'

export interface ArchiveEntry {
  path: string
  type: ArchiveEntryType
  size: number
  mode: number
  linkpath?: string
  sha256: string
  /** The content, for the entries `keepContent` asked for (small files such as metadata.json). */
  content?: Buffer
  /** Where its bytes were written (`extract`): whole when the archive was read without problems. */
  copiedTo?: string
}

export interface ArchiveReport {
  /** Size and SHA-256 of the archive file as read. */
  size: number
  sha256: string
  entries: ArchiveEntry[]
  /** Why the archive could not be read to its end: truncated, not gzip, corrupted data, not tar. */
  problems: string[]
  /** Where the archive itself is damaged (its bytes, not an entry): a gzip member that does not inflate, or a cut. */
  damage?: ArchiveDamage
  /** `onlyExtract` stopped inflating after the copies: `entries` are those read until then (the archive's size and SHA-256 still cover every byte). */
  partial?: boolean
}

export interface ArchiveDamage {
  /** Byte offset in the archive file where the damaged part starts. */
  offset: number
  /** 1-based number of the gzip member (block) that is damaged, when the archive is made of ours. */
  member?: number
}

export interface ReadArchiveOptions {
  pool?: GzipPool
  keepContent?: (path: string) => boolean
  /**
   * Entries written to a file while they are hashed: archive path → destination (created; it must
   * not exist). Only the first regular-file entry of a path; any other entry is only hashed.
   * A write that fails throws a CopyWriteError (copies.ts).
   */
  extract?: ReadonlyMap<string, string>
  /** Called with the archive bytes read so far. */
  onBytes?: (bytes: number) => void
  /** Called once an `extract` entry's copy is whole and closed, with its size and SHA-256, while the rest of the archive is still being read. */
  onCopied?: (entry: ArchiveEntry) => void
  /**
   * Once every `extract` entry is copied, the rest of an archive made of our members is only hashed,
   * not inflated (restore: the archive's SHA-256 proves the rest; see catalog/verify.ts). The report
   * then says `partial`, and lists only the entries read until then.
   */
  onlyExtract?: boolean
}

/**
 * Reads a .tar.gz through to its end and reports what it holds, with a SHA-256 per entry.
 * Never extracts anything to disk but the `extract` copies; `onlyExtract` inflates no further than them.
 * @example const report = await readArchive('backups/backup-x.tar.gz', { keepContent: (p) => p.endsWith('metadata.json') })
 */
export async function readArchive(path: string, options: ReadArchiveOptions = {}): Promise<ArchiveReport> {
  const pool = options.pool ?? new GzipPool()
  const tar = new TarReader(options.keepContent ?? (() => false), options.extract ?? new Map())
  const copies = new VerifiedCopies()
  const archiveHash = createHash('sha256')
  const problems: string[] = []
  let announced = 0
  let copied = 0
  const wanted = options.onlyExtract ? (options.extract?.size ?? 0) : Infinity
  let inflated: InflatedFile
  try {
    inflated = await inflateFile(path, {
      pool,
      enough: () => copied >= wanted,
      onRead: (chunk, position) => {
        archiveHash.update(chunk)
        options.onBytes?.(position)
      },
      onData: async (data) => {
        tar.write(data)
        // Written before the next block is handed over: the parts are views of this one.
        for (const { dest, data: part, name } of tar.takeCopies()) await copies.write(dest, part, name)
        for (; announced < tar.entries.length; announced++) {
          const entry = tar.entries[announced]!
          if (entry.copiedTo === undefined) continue
          await copies.finish(entry.copiedTo)
          copied += 1
          options.onCopied?.(entry)
        }
      },
    })
  } finally {
    await copies.close()
    if (options.pool === undefined) await pool.close()
  }
  const { damage } = inflated
  if (damage?.kind === 'truncated') problems.push(`archive tronquée : le membre gzip n° ${damage.member} (à l’octet ${damage.offset}) s’arrête après ${damage.got} octets sur ${damage.length}`)
  if (damage?.kind === 'member') problems.push(`archive endommagée : le membre gzip n° ${damage.member} (à l’octet ${damage.offset}) ne se décompresse pas (${gzipMessage(damage.error)})`)
  if (damage?.kind === 'stream') problems.push(`archive endommagée ${damage.start === 0 ? '' : `après l’octet ${damage.start} `}: le flux gzip ne se décompresse plus vers l’octet ${damage.offset} (${gzipMessage(damage.error)})`)
  if (inflated.size === 0) problems.push('archive vide (0 octet)')
  // Whatever was not read yet still counts in the archive's hash.
  if (problems.length > 0) await hashRest(path, inflated.end, (chunk) => archiveHash.update(chunk))
  const partial = inflated.partial === true
  // A partial read stops inside the tar stream: only the problems found in what was read count.
  if (problems.length === 0) problems.push(...tar.end({ partial }))
  else tar.end({ partial })
  return { size: (await stat(path)).size, sha256: archiveHash.digest('hex'), entries: tar.entries, problems, ...(damage ? { damage: damageWhere(damage) } : {}), ...(partial ? { partial } : {}) }
}

/** Where the archive is damaged, as the verification report says it. */
function damageWhere(damage: GzipDamage): ArchiveDamage {
  return damage.kind === 'stream' ? { offset: damage.offset } : { offset: damage.offset, member: damage.member }
}

async function hashRest(path: string, start: number, onRead: (chunk: Buffer) => void): Promise<void> {
  if (start >= (await stat(path)).size) return
  for await (const chunk of createReadStream(path, { start, highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) onRead(chunk)
}

function gzipMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  // zlib's own words (and libdeflate's), in French: what a person reads.
  const known: Record<string, string> = {
    'unexpected end of file': 'fin de fichier inattendue : archive tronquée',
    'incorrect header check': 'en-tête gzip invalide',
    'incorrect data check': 'somme de contrôle des données fausse',
    'invalid block type': 'type de bloc invalide',
    'invalid distance too far back': 'distance invalide dans les données',
    'invalid stored block lengths': 'longueurs de bloc invalides',
    // libdeflate's (libdeflate.c), which does not tell a wrong CRC from bad data.
    'libdeflate: bad data': 'données compressées invalides ou somme de contrôle fausse',
    'libdeflate: size mismatch': 'taille décompressée différente de celle que le membre annonce',
    'libdeflate: trailing bytes': 'octets en trop après les données compressées du membre',
  }
  return known[message] ?? `erreur zlib : ${message}`
}

const TYPES: Record<string, ArchiveEntryType> = { File: 'File', OldFile: 'File', ContiguousFile: 'File', Directory: 'Directory', SymbolicLink: 'SymbolicLink', Link: 'Link' }

/** A strict streaming tar parser: ustar and pax headers; everything else is reported as is. */
class TarReader {
  readonly entries: ArchiveEntry[] = []
  #problems: string[] = []
  #pending: Buffer[] = []
  #pendingLength = 0
  #state: 'header' | 'data' | 'pax' | 'padding' | 'end' | 'failed' = 'header'
  #remaining = 0
  #padding = 0
  #current: (ArchiveEntry & { hash: Hash; parts?: Buffer[] }) | undefined
  #extract: ReadonlyMap<string, string>
  #copied = new Set<string>()
  #copies: { dest: string; data: Buffer; name: string }[] = []
  #pax: { parts: Buffer[]; global: boolean } | undefined
  #extended: Record<string, unknown> | undefined
  #zeroBlocks = 0
  #keep: (path: string) => boolean

  constructor(keep: (path: string) => boolean, extract: ReadonlyMap<string, string>) {
    this.#keep = keep
    this.#extract = extract
  }

  /** The bytes to write to the `extract` files since the last call (views of the data written in). */
  takeCopies(): { dest: string; data: Buffer; name: string }[] {
    return this.#copies.splice(0)
  }

  write(data: Buffer): void {
    let offset = 0
    while (offset < data.length && this.#state !== 'failed') {
      if (this.#state === 'end') {
        // Only zero padding may follow the end of the archive.
        if (data.subarray(offset).some((byte) => byte !== 0)) this.#fail('des données suivent la fin de l’archive tar')
        return
      }
      if (this.#state === 'data' || this.#state === 'pax') {
        const n = Math.min(this.#remaining, data.length - offset)
        const part = data.subarray(offset, offset + n)
        if (this.#state === 'data') {
          this.#current!.hash.update(part)
          this.#current!.parts?.push(Buffer.from(part))
          if (this.#current!.copiedTo !== undefined) this.#copies.push({ dest: this.#current!.copiedTo, data: part, name: this.#current!.path })
        } else {
          this.#pax!.parts.push(Buffer.from(part))
        }
        this.#remaining -= n
        offset += n
        if (this.#remaining === 0) this.#endData()
        continue
      }
      if (this.#state === 'padding') {
        const n = Math.min(this.#padding, data.length - offset)
        this.#padding -= n
        offset += n
        if (this.#padding === 0) this.#state = 'header'
        continue
      }
      // header: gather one 512-byte record
      const n = Math.min(RECORD - this.#pendingLength, data.length - offset)
      this.#pending.push(data.subarray(offset, offset + n))
      this.#pendingLength += n
      offset += n
      if (this.#pendingLength === RECORD) {
        const record = Buffer.concat(this.#pending)
        this.#pending = []
        this.#pendingLength = 0
        this.#header(record)
      }
    }
  }

  #header(record: Buffer): void {
    if (record.every((byte) => byte === 0)) {
      if (++this.#zeroBlocks === 2) this.#state = 'end'
      return
    }
    if (this.#zeroBlocks > 0) return this.#fail('un enregistrement nul au milieu de l’archive tar')
    const header = new Header(record, 0, this.#extended as never)
    this.#extended = undefined
    if (!header.cksumValid) return this.#fail('un en-tête tar a une somme de contrôle fausse')
    const size = header.size ?? 0
    const typeName = String(header.type)
    if (typeName === 'ExtendedHeader' || typeName === 'GlobalExtendedHeader') {
      if (size > 1 << 20) return this.#fail('un en-tête pax dépasse 1 Mio')
      this.#pax = { parts: [], global: typeName === 'GlobalExtendedHeader' }
      this.#remaining = size
      this.#padding = (RECORD - (size % RECORD)) % RECORD
      this.#state = 'pax'
      if (size === 0) this.#endData()
      return
    }
    const type = TYPES[typeName] ?? 'Other'
    const dataSize = type === 'File' || type === 'Other' ? size : 0
    const path = header.path ?? ''
    const copyTo = type === 'File' && !this.#copied.has(path) ? this.#extract.get(path) : undefined
    if (copyTo !== undefined) {
      this.#copied.add(path)
      // Created now, so that an empty entry has its (empty) file too.
      this.#copies.push({ dest: copyTo, data: Buffer.alloc(0), name: path })
    }
    this.#current = {
      path,
      type,
      size: dataSize,
      mode: header.mode ?? 0,
      ...(header.linkpath ? { linkpath: header.linkpath } : {}),
      sha256: '',
      hash: createHash('sha256'),
      ...(type === 'File' && this.#keep(path) && dataSize <= 16 << 20 ? { parts: [] } : {}),
      ...(copyTo !== undefined ? { copiedTo: copyTo } : {}),
    }
    this.#remaining = dataSize
    this.#padding = (RECORD - (dataSize % RECORD)) % RECORD
    this.#state = 'data'
    if (dataSize === 0) this.#endData()
  }

  #endData(): void {
    if (this.#state === 'pax') {
      const body = Buffer.concat(this.#pax!.parts).toString('utf8')
      if (!this.#pax!.global) this.#extended = { ...Pax.parse(body) }
      this.#pax = undefined
    } else {
      const { hash, parts, ...entry } = this.#current!
      this.entries.push({ ...entry, sha256: hash.digest('hex'), ...(parts ? { content: Buffer.concat(parts) } : {}) })
      this.#current = undefined
    }
    this.#state = this.#padding > 0 ? 'padding' : 'header'
  }

  #fail(problem: string): void {
    this.#problems.push(problem)
    this.#state = 'failed'
  }

  /** The problems found, including an archive that stops before its end (unless only its start was read: `partial`). */
  end(options: { partial: boolean }): string[] {
    if (options.partial) return this.#problems
    if (this.#state === 'data' || this.#state === 'pax' || this.#state === 'padding' || this.#pendingLength > 0) {
      this.#problems.push(`archive tronquée : elle s’arrête dans ${this.#current ? `"${this.#current.path}"` : 'un en-tête'}`)
    } else if (this.#state === 'header') {
      this.#problems.push('archive tronquée : les enregistrements de fin d’archive manquent')
    }
    return this.#problems
  }
}
