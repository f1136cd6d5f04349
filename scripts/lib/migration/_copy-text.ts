/**
 * Rows out of `COPY … TO STDOUT` in PostgreSQL's text format: one row per line, columns separated
 * by tabs, `\N` for NULL, and backslash escapes for backslash, tab, newline, carriage return, etc.
 * Chunks may end in the middle of a row or of a UTF-8 character: only whole lines are decoded.
 */
const NEWLINE = 0x0a

/**
 * Splits a stream of COPY chunks into buffers of whole lines (each with its newline), about one per
 * chunk: what the SQLite extension inserts as it is, or `parseCopyText` turns into values.
 */
export async function* copyTextLines(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let pending: Buffer | undefined
  for await (const chunk of chunks) {
    const last = chunk.lastIndexOf(NEWLINE)
    if (last === -1) {
      pending = pending === undefined ? chunk : Buffer.concat([pending, chunk])
      continue
    }
    const lines = pending === undefined ? chunk.subarray(0, last + 1) : Buffer.concat([pending, chunk.subarray(0, last + 1)])
    pending = last + 1 < chunk.length ? chunk.subarray(last + 1) : undefined
    yield lines
  }
  if (pending !== undefined && pending.length > 0) throw new Error('la sortie de COPY s’arrête au milieu d’une ligne')
}

/** The rows of whole COPY lines: their text values, null for NULL. */
export function parseCopyText(lines: Buffer): (string | null)[][] {
  return lines.length === 0 ? [] : parseLines(lines.toString('utf8', 0, lines.length - 1))
}

/** Where the line after the first `count` lines of `lines` starts. */
export function lineOffset(lines: Buffer, count: number): number {
  let offset = 0
  for (let i = 0; i < count; i++) offset = lines.indexOf(NEWLINE, offset) + 1
  return offset
}

function parseLines(text: string): (string | null)[][] {
  const lines = text.split('\n')
  const rows: (string | null)[][] = new Array(lines.length)
  for (let r = 0; r < lines.length; r++) {
    const line = lines[r]!
    const fields: (string | null)[] = line.split('\t')
    // Most lines hold no backslash at all: no NULL, nothing escaped.
    if (line.includes('\\')) {
      for (let i = 0; i < fields.length; i++) {
        const field = fields[i] as string
        if (field === '\\N') fields[i] = null
        else if (field.includes('\\')) fields[i] = unescapeField(field)
      }
    }
    rows[r] = fields
  }
  return rows
}

const ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' }

function unescapeField(field: string): string {
  return field.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (_, code: string) => {
    if (code.length > 1 && code[0] === 'x') return String.fromCharCode(parseInt(code.slice(1), 16))
    if (/^[0-7]/.test(code)) return String.fromCharCode(parseInt(code, 8))
    return ESCAPES[code] ?? code
  })
}
