/**
 * The Node.js floor, checked before anything else loads: imported FIRST by every script, so an
 * older Node gets one French line instead of a syntax error from a dependency (@inquirer/prompts
 * needs 20.17; package.json `engines` says the same).
 */
export const NODE_FLOOR = '20.17.0'

/** The French line refusing `version` (e.g. `20.11.1`), or undefined when it is recent enough. */
export function nodeTooOld(version: string, floor: string = NODE_FLOOR): string | undefined {
  const have = version.replace(/^v/, '').split('.').map(Number)
  const need = floor.split('.').map(Number)
  for (let i = 0; i < need.length; i++) {
    if ((have[i] ?? 0) > need[i]!) return undefined
    if ((have[i] ?? 0) < need[i]!) return `Node.js ${version.replace(/^v/, '')} est trop ancien : ce projet demande Node.js ${floor} ou plus récent (https://nodejs.org).`
  }
  return undefined
}

const refusal = nodeTooOld(process.versions.node)
if (refusal !== undefined) {
  // Before runCommand exists: the other imports of the script would fail on this Node.
  process.stderr.write(`Erreur : ${refusal}\n`)
  process.exit(1)
}
