import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PassThrough, Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { runAssistant } from '../scripts/lib/migration/assistant.ts'
import { migratePostgresToSqlite } from '../scripts/lib/migration/migrate.ts'
import { renderPlan } from '../scripts/lib/migration/report.ts'
import { openTestDatabase, tempDir } from './helpers/databases.ts'
import { resolveEnvironment } from '../scripts/lib/environment.ts'

/** A fake terminal: what the assistant wrote so far, and a way to type once a text shows up. */
function terminal() {
  const input = new PassThrough()
  let screen = ''
  const output = new Writable({
    write(chunk, _encoding, done) {
      screen += String(chunk)
      done()
    },
  })
  // Each prompt pipes into the output and ends the pipe when done; a terminal (process.stdout) ignores that end.
  output.end = () => output
  let seen = 0
  return {
    input,
    output,
    screen: () => screen,
    /** Waits for `text` after what earlier answers already waited for, then types `keys`. */
    async answer(text: string | RegExp, keys: string) {
      const deadline = Date.now() + 15_000
      for (;;) {
        const rest = screen.slice(seen)
        const match = typeof text === 'string' ? rest.indexOf(text) : rest.search(text)
        if (match !== -1) {
          seen += match + 1
          break
        }
        assert.ok(Date.now() < deadline, `waited for ${text} on:\n${screen}`)
        await sleep(10)
      }
      await sleep(20)
      input.write(keys)
    },
  }
}

test('the assistant with injected streams: a source it cannot reach is asked again, an existing target needs a yes, nothing runs before consent', async (t) => {
  const source = await openTestDatabase(t, 'postgres')
  const dir = tempDir(t)
  const existing = join(dir, 'existing.db')
  writeFileSync(existing, 'keep me')
  const fresh = join(dir, 'fresh.db')
  const term = terminal()
  const previews: string[] = []
  const answers = runAssistant({
    defaultSource: 'postgresql://nobody_here:hunter2@127.0.0.1:5432/postgres',
    defaultTarget: 'prisma/from-postgres.db',
    cwd: dir,
    input: term.input,
    output: term.output,
    preview: async ({ from, to, force }) => {
      previews.push(`${from} ${to} ${force}`)
      const { plan } = await migratePostgresToSqlite({ environment: resolveEnvironment(), from, to, force, dryRun: true })
      return { text: renderPlan(plan), problems: plan.problems, rows: plan.totalRows, tables: plan.tables.length }
    },
  })
  // The default is shown after the question (the terminal may wrap it).
  await term.answer('URL PostgreSQL de la source : (postgresql://nobody_here:****@', '\r')
  await term.answer('Fichier SQLite cible', `${fresh}\r`)
  await term.answer(/✗ PostgreSQL postgresql:\/\/nobody_here:\*\*\*\*@.*connexion impossible/, '')
  await term.answer('URL PostgreSQL de la source :', `\x15${source.url}\r`)
  await term.answer('Fichier SQLite cible', `${existing}\r`)
  await term.answer('existe. Le remplacer', 'n\r')
  await term.answer('Fichier SQLite cible', `${fresh}\r`)
  await term.answer('Copier 32 lignes de 5 tables dans', 'y\r')
  assert.deepEqual(await answers, { from: source.url, to: fresh, force: false })
  assert.match(term.screen(), /Dossier +9 +app +toutes/)
  assert.doesNotMatch(term.screen(), /hunter2/)
  assert.deepEqual(previews, [`postgresql://nobody_here:hunter2@127.0.0.1:5432/postgres ${fresh} false`, `${source.url} ${fresh} false`])
})
