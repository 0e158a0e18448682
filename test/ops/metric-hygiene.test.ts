// Metric hygiene: after a load of 200 clients from distinct 127.0.90-91.x addresses (clean
// with mail, DNSBL-listed, pregreet talkers, hang-ups), GET /metrics holds no label value that
// is a client address, no label with more than a small bound of values, and `promtool check
// metrics` (the real binary, Debian package prometheus) finds no problem in it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startChain, waitForMessages, type Chain } from '../integration/harness.js';
import { cleanClient, hangupClient, listedClient, message, pregreetClient } from '../integration/traffic.js';
import { systemBinary } from '../fakes/system-binary.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';

const CLIENTS = 200;
const AT_A_TIME = 20;
/** Most values one label of one metric may take (reply codes, histogram buckets, queue names, …). */
const MAX_LABEL_VALUES = 16;
const promtool = systemBinary('promtool', 'prometheus');

/** The i-th client's source address: 127.0.90.1 … 127.0.90.250, then 127.0.91.x. */
function clientAddress(index: number): string {
  return `127.0.${90 + Math.floor(index / 250)}.${(index % 250) + 1}`;
}

async function scrape(chain: Chain): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${chain.mx.metricsEndpoint!.port}/metrics`, { signal: AbortSignal.timeout(5000) });
  assert.equal(response.status, 200);
  return response.text();
}

/** For each sample name (name{…}), each label name → the set of values seen. */
function labelValues(text: string): Map<string, Map<string, Set<string>>> {
  const families = new Map<string, Map<string, Set<string>>>();
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (!match) continue;
    const labels = families.get(match[1]!) ?? new Map<string, Set<string>>();
    families.set(match[1]!, labels);
    for (const [, name, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      const values = labels.get(name!) ?? new Set<string>();
      labels.set(name!, values);
      values.add(value!);
    }
  }
  return families;
}

let loaded: { text: string } | undefined;

/** Runs the 200-client load once and keeps the /metrics text it leaves. */
async function metricsAfterLoad(): Promise<string> {
  if (loaded) return loaded.text;
  const tables = temporaryDirectory('mxscreen-hygiene-');
  writeFileSync(join(tables, 'header_checks'), '/^Subject: reject me/ REJECT no thanks\n');
  const chain = await startChain(
    [
      'mxscreen_metrics_listen = 127.0.0.1:0',
      `header_checks = regexp:${join(tables, 'header_checks')}`,
      // a DNSBL answer from the in-process server must not miss its deadline under the load: a listed client would pass
      'postscreen_dnsbl_timeout = 4s',
    ],
    { processMetrics: true },
  );
  try {
    const client = (index: number): Promise<void> => {
      const address = clientAddress(index);
      switch (index % 4) {
        case 0:
          return listedClient(chain, address);
        case 1:
          return pregreetClient(chain, address);
        case 2:
          return cleanClient(chain, address, [
            ...message(`user${index}@sender${index}.test`, ['info@example.com']),
            ['MAIL FROM:<spam@sender.test>', 250],
            [`RCPT TO:<nobody${index}@example.com>`, 550],
            [`RCPT TO:<x@relay${index}.test>`, 554],
            ['RSET', 250],
          ]);
        default:
          return hangupClient(chain, address);
      }
    };
    for (let first = 0; first < CLIENTS; first += AT_A_TIME) {
      await Promise.all(Array.from({ length: Math.min(AT_A_TIME, CLIENTS - first) }, (_, offset) => client(first + offset)));
    }
    await waitForMessages(chain.mailbox, CLIENTS / 4, 10_000);
    loaded = { text: await scrape(chain) };
    return loaded.text;
  } finally {
    await chain.close();
  }
}

test('after 200 clients from distinct addresses no label value is a client address and no label has more than 16 values', async () => {
  const text = await metricsAfterLoad();
  const families = labelValues(text);
  assert.ok((families.get('mxscreen_connections_total')?.get('verdict')?.size ?? 0) >= 3, 'the load went through the screen');
  const addresses = new Set(Array.from({ length: CLIENTS }, (_, index) => clientAddress(index)));
  const leaks: string[] = [];
  const unbounded: string[] = [];
  for (const [sample, labels] of families) {
    for (const [label, values] of labels) {
      for (const value of values) {
        if ([...addresses].some((address) => value.includes(address)) || /\b127\.0\.9[01]\.\d+\b/.test(value)) leaks.push(`${sample}{${label}="${value}"}`);
      }
      if (values.size > MAX_LABEL_VALUES) unbounded.push(`${sample}{${label}}: ${values.size} values`);
    }
  }
  assert.deepEqual(leaks, [], 'label values that carry a client address');
  assert.deepEqual(unbounded, [], `labels with more than ${MAX_LABEL_VALUES} values`);
  // The label values of the load's own words stay out too: senders, recipients, HELO names.
  assert.doesNotMatch(text, /sender\d+\.test|nobody\d+@|relay\d+\.test|early\.bird|client\.example/);
});

test('promtool check metrics finds no problem in the /metrics output after the load', { skip: promtool.skip }, async () => {
  const text = await metricsAfterLoad();
  const output = await new Promise<string>((resolve, reject) => {
    const child = execFile(promtool.path!, ['check', 'metrics'], { timeout: 30_000 }, (error, stdout, stderr) => {
      if (error && !stdout && !stderr) reject(error);
      else resolve(`${stdout}${stderr}`);
    });
    child.stdin!.end(text);
  });
  assert.equal(output, '', 'promtool check metrics prints nothing for clean metrics');
  assert.match(text, /^mxscreen_process_cpu_seconds_total /m, "Node's process metrics were checked too");
});
