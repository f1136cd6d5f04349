/**
 * External judges (promtool, prometheus, chromium): a test that needs one skips with the reason and
 * the install command when it is missing, and fails instead under TEST_REQUIRE_ALL=1 (what .ci/run sets).
 */
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import type { TestContext } from 'node:test'

/** The binary's path, or undefined after skipping the test (or throwing under TEST_REQUIRE_ALL=1). */
export function requireJudge(t: TestContext, binary: string, aptPackage: string): string | undefined {
  const path = findBinary(binary)
  if (path !== undefined) return path
  const reason = `${binary} est introuvable: apt-get install --no-install-recommends ${aptPackage}`
  if (process.env.TEST_REQUIRE_ALL === '1') throw new Error(`${reason} (TEST_REQUIRE_ALL=1)`)
  t.skip(reason)
  return undefined
}

function findBinary(binary: string): string | undefined {
  const candidates = binary.includes('/') ? [binary] : (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, binary))
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}
