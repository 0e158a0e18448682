/*
 * system-binary — finds a system program a test runs for real (promtool, prometheus, …).
 *
 * Decides: a test that needs a binary runs it when it is installed; when it is absent the
 * test is skipped with a message saying which package brings it, and only outside CI:
 * with CI set in the environment an absent binary is a failure (.ci/run installs it).
 * Leaves to others: running the binary (each test, with bounded waits).
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface SystemBinary {
  /** Absolute path of the program, or undefined when it is absent (outside CI only). */
  readonly path: string | undefined;
  /** For node:test's `skip` option: false when the program is there, else why the test is skipped. */
  readonly skip: string | false;
}

/**
 * Looks `name` up in /usr/bin, /usr/local/bin and PATH. Throws when it is absent and
 * process.env.CI is set, so that a CI run never skips what it promises to run.
 */
export function systemBinary(name: string, debianPackage: string): SystemBinary {
  const directories = ['/usr/bin', '/usr/local/bin', ...(process.env['PATH'] ?? '').split(delimiter).filter(Boolean)];
  for (const directory of directories) {
    const path = join(directory, name);
    try {
      accessSync(path, constants.X_OK);
      return { path, skip: false };
    } catch {
      // not in this directory
    }
  }
  if (process.env['CI']) throw new Error(`${name} is not installed but CI is set: apt-get install -y ${debianPackage} (.ci/run does)`);
  return { path: undefined, skip: `${name} is not installed (apt-get install -y ${debianPackage}); skipped outside CI` };
}
