/**
 * Worker threads whose entry is a TypeScript file. From source, Node 20 does not run --import
 * loaders in worker threads: the thread registers tsx itself, then loads its entry (resolved here,
 * so the working directory does not matter). Built (dist/, scripts/build-dist.ts), this module is
 * JavaScript and each thread entry was built beside it as `<name>.mjs` (DIST_ENTRIES in dist.ts
 * lists them): the thread runs that.
 * The entry reads `workerData.data`.
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

const BUILT = !new URL(import.meta.url).pathname.endsWith('.ts')

/** @example const worker = startTypeScriptThread(new URL('./_thread.ts', import.meta.url), { path }) */
export function startTypeScriptThread(entry: URL, data: unknown, options: { resourceLimits?: ResourceLimits } = {}): Worker {
  const limits = options.resourceLimits ? { resourceLimits: options.resourceLimits } : {}
  if (BUILT) return new Worker(new URL(entry.href.replace(/\.ts$/, '.mjs')), { workerData: { data }, ...limits })
  return new Worker(THREAD_BOOT, {
    eval: true,
    workerData: { data, boot: { tsx: import.meta.resolve('tsx/esm/api'), entry: entry.href } },
    ...limits,
  })
}
