// The delivery side of the durability contract: a queue file leaves the queue only after
// the nexthop said 250 to the final dot for every recipient it took, or after the bounce
// for the ones it refused was queued (qmgr(8): a message is removed when every recipient
// is done). The mailbox server holds its 250 while the test looks at the queue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MINUTE, notices, withWorld } from './queue-world.js';

test('delivery durability: the queue file stays in active/ while the nexthop has not answered the final dot; it goes after the 250', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    const held = world.mailbox.holdReplies();
    const id = await world.queue(['bob@example.com', 'carol@example.com']);
    world.manager.kick(id);
    await held.reached(); // the whole message is at the nexthop, its 250 not sent
    assert.deepEqual(await world.files('active'), [id], 'still queued while the 250 is pending');
    assert.equal(world.capture.events('removed').length, 0);
    held.release();
    await world.manager.whenIdle();
    assert.deepEqual(await world.files('active'), []);
    assert.deepEqual(world.capture.events('status=sent').map((line) => line['queueId']), [id, id]);
    assert.deepEqual(world.capture.events('removed').map((line) => line['queueId']), [id]);
  });
});

test('delivery durability: a recipient the nexthop refused is bounced first; the file goes only after the bounce is queued and the other recipient is 250', async () => {
  await withWorld(async (world) => {
    await world.manager.start();
    world.mailbox.setMode('reject', 'carol@example.com');
    const held = world.mailbox.holdReplies();
    const id = await world.queue(['bob@example.com', 'carol@example.com']);
    world.manager.kick(id);
    await held.reached();
    assert.deepEqual(await world.files('active'), [id], 'still queued while the 250 for bob is pending');
    held.release();
    await world.manager.whenIdle();
    const lines = world.capture.lines;
    const bounceQueued = lines.findIndex((line) => line['event'] === 'sender non-delivery notification' && line['queueId'] === id);
    const removed = lines.findIndex((line) => line['event'] === 'removed' && line['queueId'] === id);
    assert.ok(bounceQueued >= 0, 'a bounce was queued for carol');
    assert.ok(removed > bounceQueued, 'the original file goes after its bounce is queued');
    world.clock.advance(MINUTE);
    await world.manager.whenIdle();
    assert.equal(notices(world).length, 1, 'the bounce reaches the sender');
  });
});
