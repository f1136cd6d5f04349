/**
 * Splits a SQL script into statements, for engines whose API runs one statement at a time (D1).
 * Semicolons inside quotes, identifiers and comments do not split.
 */
export function splitSqlStatements(script: string): string[] {
  const statements: string[] = []
  let current = ''
  let i = 0
  while (i < script.length) {
    const ch = script[i]!
    const next = script[i + 1]
    if (ch === '-' && next === '-') {
      const end = script.indexOf('\n', i)
      i = end === -1 ? script.length : end + 1
      continue
    }
    if (ch === '/' && next === '*') {
      const end = script.indexOf('*/', i + 2)
      i = end === -1 ? script.length : end + 2
      continue
    }
    if (ch === "'" || ch === '"' || ch === '`') {
      let j = i + 1
      while (j < script.length) {
        if (script[j] === ch) {
          if (script[j + 1] === ch) j += 2
          else break
        } else j++
      }
      current += script.slice(i, j + 1)
      i = j + 1
      continue
    }
    if (ch === ';') {
      if (current.trim() !== '') statements.push(current.trim())
      current = ''
      i++
      continue
    }
    current += ch
    i++
  }
  if (current.trim() !== '') statements.push(current.trim())
  return statements
}
