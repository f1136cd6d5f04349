/**
 * A machine without an external judge (here promtool): its tests are skipped with the reason and
 * the install command, and fail naming the tool when TEST_REQUIRE_ALL=1 (what .ci/run sets).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT } from './helpers/cli.ts'
import { tempDir } from './helpers/databases.ts'
import { judge, requireJudge } from './helpers/judges.ts'

/** A PATH with node alone: no promtool, no sqlite3, nothing else. */
function nodeOnlyPath(t: Parameters<typeof tempDir>[0]): string {
  const bin = tempDir(t, 'ipm-bin-')
  symlinkSync(process.execPath, join(bin, 'node'))
  return bin
}

/** Runs one test file with node:test as `npm test` does, under the given environment. */
function runTestFile(file: string, env: NodeJS.ProcessEnv): Promise<{ status: number | null; output: string }> {
  const childEnv = { ...process.env, ...env }
  delete childEnv.NODE_TEST_CONTEXT // set by the runner of this file; with it the child would not run its tests
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', file], { cwd: REPO_ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
    child.on('error', reject)
    child.on('close', (status) => resolve({ status, output }))
  })
}

test('requireJudge gives the reason and the apt command when a judge is missing, and nothing when it is there or TEST_REQUIRE_ALL=1', (t) => {
  const saved = { PATH: process.env.PATH, TEST_REQUIRE_ALL: process.env.TEST_REQUIRE_ALL }
  t.after(() => Object.assign(process.env, saved))
  delete process.env.TEST_REQUIRE_ALL
  process.env.PATH = nodeOnlyPath(t)
  assert.equal(requireJudge('promtool', 'sqlite3'), 'promtool is not installed (apt-get install --no-install-recommends prometheus); sqlite3 is not installed (apt-get install --no-install-recommends sqlite3)')
  process.env.TEST_REQUIRE_ALL = '1'
  assert.equal(requireJudge('promtool'), false)
})

test('a judge that cannot start fails naming the tool and its install command, never "null !== 0"', () => {
  assert.throws(() => judge('promtool', ['check', 'metrics'], { env: { PATH: '/nonexistent' } }), {
    message: /^promtool could not start: spawnSync promtool ENOENT \(apt-get install --no-install-recommends prometheus\)$/,
  })
  assert.throws(() => judge('ipm-no-such-tool', []), { message: /^ipm-no-such-tool could not start: spawnSync ipm-no-such-tool ENOENT$/ })
})

test('without promtool on PATH, the promtool tests are skipped with the reason; with TEST_REQUIRE_ALL=1 they fail naming promtool', async (t) => {
  const PATH = nodeOnlyPath(t)
  const file = 'test/dashboard-report.test.ts'
  const [lenient, strict] = await Promise.all([
    runTestFile(file, { PATH, TEST_ENGINES: 'sqlite', TEST_REQUIRE_ALL: '' }),
    runTestFile(file, { PATH, TEST_ENGINES: 'sqlite', TEST_REQUIRE_ALL: '1' }),
  ])
  assert.equal(lenient.status, 0, lenient.output)
  assert.match(lenient.output, /^# skipped 2$/m)
  assert.match(lenient.output, /^# fail 0$/m)
  assert.match(lenient.output, /# SKIP promtool is not installed \(apt-get install --no-install-recommends prometheus\)$/m)
  assert.equal(strict.status, 1, strict.output)
  assert.match(strict.output, /^# skipped 0$/m)
  assert.match(strict.output, /^# fail 2$/m)
  assert.match(strict.output, /promtool could not start: spawnSync promtool ENOENT \(apt-get install --no-install-recommends prometheus\)/)
  assert.doesNotMatch(strict.output, /null !== 0/)
})
