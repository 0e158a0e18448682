// Which worker a connection goes to: the hash for a client with per-client state, the
// least loaded for one without (allowlisted and exempt from smtpd's anvil limits).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.js';
import { screenStageSettingsFromConfig } from '../../src/screen/screen-settings.js';
import { smtpdClientLimitSettingsFromConfig } from '../../src/policy/smtpd-client-limits.js';
import { chooseWorker, type WorkerChoiceSettings } from '../../src/workers/worker-choice.js';
import { workerForAddress } from '../../src/workers/client-hash.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';

function choiceOf(lines: readonly string[]): WorkerChoiceSettings {
  const directory = temporaryDirectory('mxscreen-choice-');
  const file = join(directory, 'main.cf');
  writeFileSync(file, ['queue_directory = queue', ...lines, ''].join('\n'));
  const config = loadConfig(file);
  const { screener } = screenStageSettingsFromConfig(config);
  return { accessList: screener.accessList, mynetworks: screener.mynetworks, limitExceptions: smtpdClientLimitSettingsFromConfig(config).exceptions, proxyProtocol: screener.proxyProtocol, proxyTimeoutMs: screener.proxyTimeoutMs };
}

test('worker choice: spread only a client that is allowlisted and exempt from anvil; everyone else by the hash', () => {
  const defaults = choiceOf(['mynetworks = 192.0.2.0/24']);
  assert.deepEqual(chooseWorker(defaults, '192.0.2.7', 4), { kind: 'spread' }, 'mynetworks: permit_mynetworks and $mynetworks exceptions');
  assert.deepEqual(chooseWorker(defaults, '::ffff:192.0.2.7', 4), { kind: 'spread' });
  assert.deepEqual(chooseWorker(defaults, '198.51.100.9', 4), { kind: 'hash', worker: workerForAddress('198.51.100.9', 4) });
  const counted = choiceOf(['mynetworks = 192.0.2.0/24', 'smtpd_client_event_limit_exceptions =']);
  assert.deepEqual(chooseWorker(counted, '192.0.2.7', 4), { kind: 'hash', worker: workerForAddress('192.0.2.7', 4) }, 'anvil counts it: one worker');
  const screened = choiceOf(['mynetworks = 192.0.2.0/24', 'postscreen_access_list =']);
  assert.deepEqual(chooseWorker(screened, '192.0.2.7', 4), { kind: 'hash', worker: workerForAddress('192.0.2.7', 4) }, 'screened: its cache record lives in one worker');
});
