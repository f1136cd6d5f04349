/**
 * Which tenant a Prisma operation concerns, read from its own arguments: `where.tenantId` (also
 * under `AND`, or in every branch of an `OR`), relation filters (`where: { client: { tenantId } }`,
 * `some`/`every`/`is`), nested writes (`data: { tenant: { connect: { id } } }`, a `create` under a
 * tenant), `data.tenantId`, or the id of a Tenant. When the arguments name two tenants (or none),
 * the operation is left unattributed rather than guessed: 0 wrong beats 100 % attributed.
 * Reading the arguments (or a tenant bound to the client, see Instrumentation.forTenant) survives
 * any concurrency, unlike an async context, which a lazy Prisma query only picks up where it is awaited.
 */

/** @example tenantFromArgs('Dossier', { where: { tenantId: 'tenant-demo', statut: 'CLOS' } }) // 'tenant-demo' */
export function tenantFromArgs(model: string | undefined, args: unknown): string | undefined {
  if (!isObject(args)) return undefined
  const tenantContext = model === 'Tenant'
  const found = new Set<string>()
  for (const part of ['where', 'data', 'create', 'update'] as const) for (const id of required(args[part], tenantContext, 0)) found.add(id)
  return found.size === 1 ? [...found][0] : undefined
}

/** Keys whose values never hold a tenant condition: negations, and what the query returns or how it sorts. */
const IGNORED = new Set(['NOT', 'select', 'include', 'orderBy', 'distinct', '_count', 'cursor', 'take', 'skip'])

/**
 * The tenants a filter or write tree requires. In the Tenant model's context (`tenant: { … }`, or
 * the Tenant model itself) `id` is the tenant; elsewhere `tenantId` is.
 */
function required(node: unknown, tenantContext: boolean, depth: number): string[] {
  if (depth > 6) return []
  if (Array.isArray(node)) return node.flatMap((item) => required(item, tenantContext, depth + 1))
  if (!isObject(node)) return []
  const found: string[] = []
  for (const [key, value] of Object.entries(node)) {
    if (IGNORED.has(key)) continue
    if (key === (tenantContext ? 'id' : 'tenantId')) {
      const id = single(value)
      if (id !== undefined) found.push(id)
      else if (isObject(value) && !('in' in value) && !('equals' in value)) found.push(...required(value, tenantContext, depth + 1))
      continue
    }
    if (key === 'OR') {
      const branches = (Array.isArray(value) ? value : [value]).map((branch) => required(branch, tenantContext, depth + 1))
      // An OR restricts to a tenant only when every branch does.
      if (branches.length > 0 && branches.every((b) => b.length > 0)) found.push(...branches.flat())
      continue
    }
    if (key === 'tenant') {
      found.push(...required(value, true, depth + 1))
      continue
    }
    if (isObject(value) || Array.isArray(value)) {
      // AND, relation filters (is/some/every), nested writes (connect/create/connectOrCreate/upsert): the same context,
      // except a relation of the Tenant model, whose rows carry `tenantId`.
      const nested = ['AND', 'is', 'some', 'every', 'connect', 'connectOrCreate', 'where', 'create', 'createMany', 'data', 'upsert', 'update', 'set']
      found.push(...required(value, tenantContext && nested.includes(key), depth + 1))
    }
  }
  return found
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
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)
}
