/**
 * Rows out of `COPY … TO STDOUT` in PostgreSQL's text format: one row per line, columns separated
 * by tabs, `\N` for NULL, and backslash escapes for backslash, tab, newline, carriage return, etc.
 * Chunks may end in the middle of a row or of a UTF-8 character: only whole lines are decoded.
 */
const NEWLINE = 0x0a

/** A batch of whole rows: their text values (null for NULL) and the raw bytes they came from. */
export interface CopyTextBatch {
  rows: (string | null)[][]
  /** The batch's lines exactly as COPY sent them, each with its newline. */
  raw: Buffer
}

/** Splits a stream of COPY chunks into batches of whole rows, about one per chunk. */
export async function* copyTextRows(chunks: AsyncIterable<Buffer>): AsyncGenerator<CopyTextBatch> {
  let pending: Buffer | undefined
  for await (const chunk of chunks) {
    const last = chunk.lastIndexOf(NEWLINE)
    if (last === -1) {
      pending = pending === undefined ? chunk : Buffer.concat([pending, chunk])
      continue
    }
    const raw = pending === undefined ? chunk.subarray(0, last + 1) : Buffer.concat([pending, chunk.subarray(0, last + 1)])
    pending = last + 1 < chunk.length ? chunk.subarray(last + 1) : undefined
    yield { rows: parseLines(raw.toString('utf8', 0, raw.length - 1)), raw }
  }
  if (pending !== undefined && pending.length > 0) throw new Error('la sortie de COPY s’arrête au milieu d’une ligne')
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
