// mxscreen_listen_backlog reaches listen(2): the kernel's Send-Q of a listening socket
// (`ss -ltn`) is its backlog, so these tests read the backlog the kernel actually holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SmtpListener } from '../../src/screen/listener.js';
import { FALLBACK_BACKLOG, listenBacklog, SOMAXCONN_PATH } from '../../src/screen/listen-backlog.js';
import { startMxscreen } from '../../src/main.js';
import { LogCapture } from '../integration/harness.js';

/** `ss` from iproute2, or undefined when absent (then the kernel tests skip, outside CI). */
function ssBinary(): string | undefined {
  for (const path of ['/usr/bin/ss', '/bin/ss', '/usr/sbin/ss', '/sbin/ss']) {
    try {
      execFileSync(path, ['-V'], { stdio: 'ignore' });
      return path;
    } catch {
      // try the next
    }
  }
  return undefined;
}
const ss = ssBinary();
const skip = ss === undefined && !process.env.CI ? 'ss (iproute2) is not installed' : false;

/** The backlog the kernel holds for the TCP socket listening on 127.0.0.1:`port` (ss Send-Q). */
function kernelBacklog(port: number): number {
  const out = execFileSync(ss!, ['-ltnH', `sport = :${port}`], { encoding: 'utf8' });
  const fields = out.trim().split(/\s+/);
  assert.equal(fields[0], 'LISTEN', `ss output: ${out}`);
  return Number(fields[2]);
}

/** The system's somaxconn, the cap the kernel puts on every backlog. */
function somaxconn(): number {
  return Number(readFileSync(SOMAXCONN_PATH, 'latin1').trim());
}

test('a configured backlog is passed as it is; 0 means net.core.somaxconn, 4096 when unreadable', () => {
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-backlog-'));
  try {
    writeFileSync(join(directory, 'somaxconn'), '32768\n');
    const table = [
      { name: 'configured', configured: 37, path: join(directory, 'somaxconn'), want: 37 },
      { name: 'system value', configured: 0, path: join(directory, 'somaxconn'), want: 32768 },
      { name: 'unreadable', configured: 0, path: join(directory, 'missing'), want: FALLBACK_BACKLOG },
    ];
    for (const row of table) assert.equal(listenBacklog(row.configured, row.path), row.want, row.name);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('the listener passes its backlog to listen(2); without one the kernel holds Node\'s 511', { skip }, async () => {
  const listener = new SmtpListener(['127.0.0.1:0'], (socket) => socket.destroy(), { backlog: 37 });
  const plain = new SmtpListener(['127.0.0.1:0'], (socket) => socket.destroy());
  try {
    const [bound] = await listener.listen();
    const [plainBound] = await plain.listen();
    assert.equal(kernelBacklog(bound!.port), 37);
    assert.equal(kernelBacklog(plainBound!.port), Math.min(511, somaxconn()));
  } finally {
    await listener.close();
    await plain.close();
  }
});

test('mxscreen start binds mxscreen_listen with mxscreen_listen_backlog, and by default with somaxconn', { skip }, async () => {
  const directory = mkdtempSync(join(tmpdir(), 'mxscreen-backlog-'));
  const start = async (lines: readonly string[]) => {
    writeFileSync(
      join(directory, 'main.cf'),
      ['myhostname = mx1.example.net', 'mxscreen_listen = 127.0.0.1:0', 'mxscreen_metrics_listen =', 'queue_directory = queue', ...lines, ''].join('\n'),
    );
    return startMxscreen({ configFile: join(directory, 'main.cf'), logDestination: new LogCapture(), processMetrics: false });
  };
  try {
    const configured = await start(['mxscreen_listen_backlog = 37']);
    try {
      assert.equal(kernelBacklog(configured.smtp[0]!.port), 37);
    } finally {
      await configured.stop();
    }
    const byDefault = await start([]);
    try {
      assert.equal(kernelBacklog(byDefault.smtp[0]!.port), somaxconn());
    } finally {
      await byDefault.stop();
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});
