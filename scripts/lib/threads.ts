/**
 * Worker threads whose entry is a TypeScript file. Node 20 does not run --import loaders in worker
 * threads: the thread registers tsx itself, then loads its entry (resolved here, so the working
 * directory does not matter). The entry reads `workerData.data`.
 */
import { Worker, type ResourceLimits } from 'node:worker_threads'

const THREAD_BOOT = `
const { workerData } = require('node:worker_threads')
;(async () => {
  const { register } = await import(workerData.boot.tsx)
  register()
  await import(workerData.boot.entry)
})().catch((error) => setImmediate(() => { throw error }))
`

/** @example const worker = startTypeScriptThread(new URL('./_thread.ts', import.meta.url), { path }) */
export function startTypeScriptThread(entry: URL, data: unknown, options: { resourceLimits?: ResourceLimits } = {}): Worker {
  return new Worker(THREAD_BOOT, {
    eval: true,
    workerData: { data, boot: { tsx: import.meta.resolve('tsx/esm/api'), entry: entry.href } },
    ...(options.resourceLimits ? { resourceLimits: options.resourceLimits } : {}),
  })
}
