/**
 * Why an engine's `engine.ts` imports almost nothing: its drivers, Prisma client, Miniflare and WAL
 * replication cost up to ~0.6 s of CPU and ~100 MB to load, and every script start (`--help`, a
 * SQLite backup) would pay for all three engines. Each member loads its module on its first call.
 */

import type { Engine } from './engine.ts'

type AsyncMethods<T> = { [K in keyof T]: (...args: never[]) => Promise<unknown> }

/**
 * An object standing for the one `load` resolves to: each of its (async) methods loads it on the
 * first call and forwards. `methods` names every member, which the compiler checks.
 * @example metrics: loadedOnCall(() => import('./metrics.ts').then((m) => m.sqliteMetrics), METRICS_METHODS)
 */
export function loadedOnCall<T extends AsyncMethods<T>>(load: () => Promise<T>, methods: { readonly [K in keyof T]-?: true }): T {
  const forwarding: Partial<Record<keyof T, unknown>> = {}
  for (const name of Object.keys(methods) as (keyof T)[]) {
    forwarding[name] = async (...args: never[]) => {
      const target = await load()
      return target[name].apply(target, args)
    }
  }
  return forwarding as T
}

/** The members of the engine objects that engine.ts files load on call. */
export const METRICS_METHODS: { readonly [K in keyof Engine['metrics']]-?: true } = {
  listTables: true,
  listColumns: true,
  listIndexes: true,
  explain: true,
  tryIndex: true,
  cacheStatistics: true,
  connectionStatistics: true,
  tenantStorage: true,
}
export const SCRATCH_METHODS: { readonly [K in keyof Engine['scratch']]-?: true } = { create: true, cleanLeftovers: true, integrity: true }
export const PITR_METHODS: { readonly [K in keyof Engine['pitr']]-?: true } = { replicate: true, setup: true, backup: true, stateAt: true }
