/**
 * Which tenant a Prisma operation concerns, read from its own arguments: `where.tenantId` (also
 * under `AND`), `data.tenantId`, or the id of a Tenant. Reading the arguments (or a tenant bound to
 * the client, see Instrumentation.forTenant) survives any concurrency, unlike an async context,
 * which a lazy Prisma query only picks up where it is awaited.
 */

/** @example tenantFromArgs('Dossier', { where: { tenantId: 'tenant-demo', statut: 'CLOS' } }) // 'tenant-demo' */
export function tenantFromArgs(model: string | undefined, args: unknown): string | undefined {
  if (!isObject(args)) return undefined
  const key = model === 'Tenant' ? 'id' : 'tenantId'
  return fromFilter(args.where, key) ?? fromData(args.data, key) ?? fromData(args.create, key)
}

function fromFilter(where: unknown, key: string): string | undefined {
  if (!isObject(where)) return undefined
  const direct = single(where[key])
  if (direct !== undefined) return direct
  const and = where.AND
  for (const part of Array.isArray(and) ? and : [and]) {
    const found = fromFilter(part, key)
    if (found !== undefined) return found
  }
  return undefined
}

function fromData(data: unknown, key: string): string | undefined {
  if (Array.isArray(data)) {
    const ids = new Set(data.map((row) => (isObject(row) ? single(row[key]) : undefined)))
    return ids.size === 1 ? [...ids][0] : undefined
  }
  return isObject(data) ? single(data[key]) : undefined
}

/** A tenant id given as `'id'`, `{ equals: 'id' }` or `{ in: ['id'] }`. */
function single(value: unknown): string | undefined {
  if (typeof value === 'string') return value
  if (!isObject(value)) return undefined
  if (typeof value.equals === 'string') return value.equals
  if (Array.isArray(value.in) && value.in.length === 1 && typeof value.in[0] === 'string') return value.in[0]
  return undefined
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}
