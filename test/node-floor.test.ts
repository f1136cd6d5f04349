/** The Node.js floor: one French line below 20.17, imported first by every script. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { NODE_FLOOR, nodeTooOld } from '../scripts/lib/node-floor.ts'
import { REPO_ROOT } from './helpers/cli.ts'

test('a Node older than the floor is refused in one French line; the floor and newer pass', () => {
  assert.equal(nodeTooOld('20.16.0'), 'Node.js 20.16.0 est trop ancien : ce projet demande Node.js 20.17.0 ou plus récent (https://nodejs.org).')
  assert.equal(nodeTooOld('v18.20.4')?.startsWith('Node.js 18.20.4 est trop ancien'), true)
  assert.equal(nodeTooOld('20.11.1') !== undefined, true)
  for (const ok of ['20.17.0', '20.20.2', '22.1.0', 'v24.0.0']) assert.equal(nodeTooOld(ok), undefined, ok)
  const engines = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node
  assert.equal(engines, `>=${NODE_FLOOR.replace(/\.0$/, "")}`)
})

test('every script imports the floor check first', () => {
  for (const script of ['scripts/advanced-backup.ts', 'scripts/database-performance-dashboard.ts', 'scripts/menu.ts', 'scripts/migrate-postgres-to-sqlite.ts', 'scripts/setup-dev-database.ts', 'scripts/show-docs.ts', 'scripts/test-all-databases.ts', 'prisma/compose-schemas.ts', 'prisma/migrate.ts', 'prisma/seed.ts']) {
    const first = readFileSync(join(REPO_ROOT, script), 'utf8').split('\n').find((line) => line.startsWith('import '))
    assert.match(first ?? '', /^import '\.{1,2}\/(scripts\/)?lib\/node-floor\.ts'$/, script)
  }
})
