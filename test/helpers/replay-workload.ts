/**
 * A mixed app workload replayed from its own process (the way the app's traffic reaches the server):
 * reads with filters, counts, a groupBy, inserts and updates, through the app's Prisma client.
 *   node --import tsx test/helpers/replay-workload.ts <database url> <rounds>
 */
import { openDatabase } from '../../scripts/lib/db/open.ts'
import { resolveEnvironment } from '../../scripts/lib/environment.ts'

const [url, roundsArg] = process.argv.slice(2)
const rounds = Number(roundsArg ?? 10)
const db = await openDatabase(url!, { environment: resolveEnvironment() })
try {
  const prisma = db.prisma
  for (let round = 0; round < rounds; round++) {
    await prisma.dossier.findMany({ where: { tenantId: 'tenant-demo', statut: 'OUVERT' }, orderBy: { id: 'asc' }, take: 20 })
    await prisma.dossier.count({ where: { tenantId: 'tenant-demo' } })
    await prisma.client.findMany({ where: { tenantId: 'tenant-demo' }, include: { dossiers: { take: 3 } } })
    if (round % 2 === 0) await prisma.dossier.groupBy({ by: ['statut'], _count: { _all: true }, where: { tenantId: 'tenant-demo' } })
    await prisma.client.create({ data: { id: `replay-${process.pid}-${round}`, tenantId: 'tenant-demo', firstName: 'Rejeu', lastName: `N${round}` } })
    await prisma.client.update({ where: { id: `replay-${process.pid}-${round}` }, data: { phone: '0100000000' } })
  }
} finally {
  await db.close()
}
