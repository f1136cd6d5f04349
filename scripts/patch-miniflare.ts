/**
 * Run by `npm ci` (postinstall): fixes a race in miniflare@4.20260426.0, the newest Miniflare for
 * Node 20 (DESIGN.md), that makes local D1 fail now and then under load with `AssertionError: false
 * == true` in SynchronousFetcher.fetch (fetch-sync.ts:147), then "poisoned stub" errors.
 *
 * The race (fixed upstream in cloudflare/workers-sdk#15552, in a Miniflare that needs Node 22): the
 * helper thread answers call k, stores the flag, and is preempted before its notify; the caller reads
 * reply k, starts call k+1, and the late notify of k wakes it before reply k+1 exists. The fix is the
 * same as upstream's: wait again until the reply is there.
 *
 * The edit is made once, on the exact text of this version; any other text is left alone and said.
 */
import './lib/node-floor.ts'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { Command, runCommand, warn } from './lib/cli.ts'
import { writeFileAtomic } from './lib/fs/atomic.ts'

const UNPATCHED = `    const message = (0, import_node_worker_threads.receiveMessageOnPort)(
      this.#channel.port1
    )?.message;
    (0, import_node_assert13.default)(message?.id === id);`

const PATCHED = `    // ia-poste-manager (scripts/patch-miniflare.ts, workers-sdk#15552): a late notify of the previous
    // call may wake this wait before its own reply exists: wait again until it is there.
    let received = (0, import_node_worker_threads.receiveMessageOnPort)(this.#channel.port1);
    while (received === void 0) {
      Atomics.wait(this.#notifyHandle, 0, 0);
      received = (0, import_node_worker_threads.receiveMessageOnPort)(this.#channel.port1);
    }
    const message = received.message;
    (0, import_node_assert13.default)(message?.id === id);`

runCommand(new Command('patch-miniflare').description('Corrige la course de SynchronousFetcher de miniflare (workers-sdk#15552)'), async () => {
  const file = createRequire(import.meta.url).resolve('miniflare')
  const source = readFileSync(file, 'utf8')
  if (source.includes(PATCHED)) return 0
  if (!source.includes(UNPATCHED)) {
    warn(`miniflare (${file}) n’a pas le texte attendu : correctif de SynchronousFetcher non appliqué (une autre version ?)`)
    return 0
  }
  writeFileAtomic(file, source.replace(UNPATCHED, PATCHED))
  return 0
})
