/**
 * PowerShell cannot be installed here, so .ps1 files are checked with PowerShell's tree-sitter
 * grammar: any ERROR or MISSING node is a syntax error PowerShell would reject.
 */
import { createRequire } from 'node:module'
import { Language, Parser, type Node } from 'web-tree-sitter'

const require = createRequire(import.meta.url)
let parser: Parser | undefined

export interface SyntaxProblem {
  line: number
  column: number
  kind: 'ERROR' | 'MISSING'
  text: string
}

export async function powershellSyntaxProblems(source: string): Promise<SyntaxProblem[]> {
  if (parser === undefined) {
    await Parser.init()
    const language = await Language.load(require.resolve('tree-sitter-powershell/tree-sitter-powershell.wasm'))
    parser = new Parser()
    parser.setLanguage(language)
  }
  const tree = parser.parse(source)
  if (tree === null) throw new Error('tree-sitter could not parse the file')
  const problems: SyntaxProblem[] = []
  const visit = (node: Node) => {
    if (node.isError || node.isMissing) {
      problems.push({ line: node.startPosition.row + 1, column: node.startPosition.column + 1, kind: node.isMissing ? 'MISSING' : 'ERROR', text: node.text.slice(0, 60) })
    }
    for (const child of node.children) if (child !== null) visit(child)
  }
  visit(tree.rootNode)
  return problems
}

