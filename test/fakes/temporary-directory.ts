// Temporary directories for tests that are removed when the test process exits, even when
// a test fails before its own cleanup: table and config tests write many small files.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const created: string[] = [];
process.once('exit', () => {
  for (const directory of created) rmSync(directory, { recursive: true, force: true });
});

/** A new directory under the system temp directory, named `<prefix>XXXXXX`, removed at exit. */
export function temporaryDirectory(prefix: string): string {
  const directory = mkdtempSync(join(tmpdir(), prefix));
  created.push(directory);
  return directory;
}
