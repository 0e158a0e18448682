// The exact version a dependency is pinned to, for the tests that pin the internals of
// smtp-server and nodemailer (smtpd-connection.test.ts, dsn-delivery.test.ts): an upgrade
// changes package.json, and these tests say what to check before it goes in.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repositoryRoot } from './repository-root.js';

/**
 * Asserts that package.json pins `name` to one exact version (no range) and that this
 * version is the one installed; returns it. `why` names the code that needs the pin.
 */
export function pinnedVersion(name: string, why: string): string {
  const root = repositoryRoot();
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  const wanted = manifest.dependencies?.[name] ?? '(missing)';
  assert.match(wanted, /^\d+\.\d+\.\d+$/, `package.json must pin ${name} to an exact version, not "${wanted}": ${why}`);
  const installed = (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  assert.equal(installed, wanted, `${name} ${installed} is installed, package.json pins ${wanted}: run npm ci`);
  return installed;
}
