import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configFromText } from '../../src/config/config.js';
import { queueSettingsFromConfig } from '../../src/queue/queue-settings.js';

test('queue settings: Postfix parameters in ms, queue_directory relative to the config', () => {
  const config = configFromText(
    ['myhostname = mx1.example.org', 'queue_directory = spool', 'relayhost = [smart.example]:587', 'minimal_backoff_time = 10s', 'maximal_backoff_time = 1h', 'queue_run_delay = 30s', 'maximal_queue_lifetime = 2d', 'smtp_connect_timeout = 5s'].join('\n') + '\n',
    { file: '/etc/mxscreen/main.cf', directory: '/etc/mxscreen' },
  );
  const settings = queueSettingsFromConfig(config);
  assert.deepEqual(
    {
      directory: settings.directory,
      myhostname: settings.myhostname,
      relayhost: settings.relayhost,
      minimal: settings.minimalBackoffTime,
      maximal: settings.maximalBackoffTime,
      run: settings.queueRunDelay,
      lifetime: settings.maximalQueueLifetime,
      connect: settings.connectTimeout,
    },
    { directory: '/etc/mxscreen/spool', myhostname: 'mx1.example.org', relayhost: '[smart.example]:587', minimal: 10_000, maximal: 3_600_000, run: 30_000, lifetime: 172_800_000, connect: 5_000 },
  );
});
