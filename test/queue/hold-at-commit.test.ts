/*
 * A header_checks HOLD goes into hold/ at commit: the queue manager, scanning incoming/
 * at the same time, never sees it (the race of a hold applied after commit).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { receiveMessage } from '../../src/policy/cleanup.js';
import { parseRegexpTable } from '../../src/tables/regexp-table.js';
import type { Envelope } from '../../src/queue/envelope.js';
import { delivered, withWorld } from './queue-world.js';

const envelope: Envelope = {
  sender: 'alice@example.org',
  recipients: [{ address: 'bob@example.com' }],
  arrivalTime: 0,
  client: { address: '127.0.0.9', port: 40000 },
  sessionId: 'S1',
};

test('header_checks HOLD: the message is committed into hold/, never delivered from incoming/, and release delivers it', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    const rules = parseRegexpTable('pcre:header_checks', 'pcre', '/^Subject: hold me/ HOLD held for review\n', 'header_checks');
    assert.deepEqual(rules.problems, []);
    const outcome = await receiveMessage(Readable.from([Buffer.from('Subject: hold me\r\n\r\nbody\r\n')]), {
      queue: world.spool,
      envelope,
      sizeLimit: 0,
      receivedHeader: (id) => `Received: by mx1.test id ${id}\r\n`,
      content: { settings: { tables: { header_checks: [rules.table], mime_header_checks: [], nested_header_checks: [] }, blockedTypes: [] }, log: world.capture.log },
    });
    assert.equal(outcome.kind, 'queued');
    const id = outcome.kind === 'queued' ? outcome.id : '';
    assert.ok(outcome.kind === 'queued' && outcome.hold, 'the outcome says hold');
    assert.deepEqual(await world.files('hold'), [id]);
    assert.deepEqual(await world.files('incoming'), []);
    world.manager.kick();
    await world.manager.whenIdle();
    assert.deepEqual(delivered(world), [], 'a held message is not delivered');
    assert.deepEqual(await world.files('hold'), [id]);

    const reply = await world.manager.control({ command: 'release', target: id });
    assert.equal(reply.ok, true);
    await world.manager.whenIdle();
    assert.deepEqual(delivered(world).map((m) => m.recipients), [['bob@example.com']]);
  });
});
