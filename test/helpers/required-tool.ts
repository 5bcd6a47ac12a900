// Tests that need something the setup script installs (a browser, HAProxy, Prometheus, kubeconform,
// the client toolchains): where it is missing on a developer's machine they skip, saying how to get
// it; in CI, which runs the setup, its absence is a failure, never a silent skip.
import assert from 'node:assert/strict';
import { test } from 'node:test';

/**
 * The `skip` option for tests that need something: `missing` says what is absent (undefined or
 * false: nothing), `howToGet` what installs it. In CI a test failing with that message is added
 * and false is returned, so the tests run (and fail) rather than skip.
 */
export function skipUnlessInstalled(missing: string | false | undefined, howToGet: string): string | false {
  if (!missing) return false;
  if (process.env.CI) {
    test(`installed: ${missing}`, () => assert.fail(`${missing}: ${howToGet}`));
    return false;
  }
  return `${missing}: ${howToGet}`;
}
