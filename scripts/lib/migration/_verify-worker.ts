/**
 * The verification worker (see verify.ts): opens the temporary target read-only and follows the
 * copy, table by table, answering each `finish` with the table's count and checksum.
 */
import { parentPort, workerData } from 'node:worker_threads'
import Database from 'better-sqlite3'
import { TableVerifier, type VerifierMessage, type VerifierReply } from './verify.ts'

const db = new Database((workerData as { path: string }).path, { readonly: true, fileMustExist: true })
const verifiers = new Map<number, TableVerifier>()
const reply = (message: VerifierReply) => parentPort!.postMessage(message)

parentPort!.on('message', (message: VerifierMessage) => {
  if (message.type === 'close') {
    db.close()
    parentPort!.close()
    return
  }
  try {
    if (message.type === 'table') verifiers.set(message.index, new TableVerifier(db, message.spec))
    else if (message.type === 'committed') verifiers.get(message.index)?.readUpTo(message.rows)
    else {
      const verifier = verifiers.get(message.index)
      if (verifier === undefined) throw new Error(`pas de table ${message.index}`)
      verifiers.delete(message.index)
      reply({ type: 'verified', index: message.index, ...verifier.result() })
    }
  } catch (error) {
    reply({ type: 'error', index: message.index, message: error instanceof Error ? error.message : String(error) })
  }
})
