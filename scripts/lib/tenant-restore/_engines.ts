/** The tenant-restore part of each engine (engines/<engine>/tenant-restore.ts), by the handle's engine. */
import type { DatabaseHandle } from '../db/connection.ts'
import type { EngineName } from '../db/url.ts'
import * as d1 from '../engines/d1/tenant-restore.ts'
import * as postgres from '../engines/postgres/tenant-restore.ts'
import * as sqlite from '../engines/sqlite/tenant-restore.ts'
import type { TenantSession, TenantSessionEngine } from './session.ts'

const ENGINES: Record<EngineName, TenantSessionEngine> = { sqlite, postgres, d1 }

export function openTenantSession(db: DatabaseHandle): Promise<TenantSession> {
  return ENGINES[db.engine].openTenantSession(db)
}
