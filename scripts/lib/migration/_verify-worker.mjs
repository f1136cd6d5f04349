// Entry of the verification worker thread. A worker does not inherit the TypeScript loader of the
// thread that starts it (tsx registers itself in the main thread only on Node 20), so it registers it here.
import { register } from 'tsx/esm/api'

register()
await import('./_verify-worker.ts')
