// postscreen_allowlist_interfaces as postscreen.c: one mxscreen listening on a primary
// (127.0.0.1) and a backup MX address (127.0.0.20, vetoed). A new client that only tries
// the backup address never gets its mail accepted; once it has passed on the primary it
// is PASS OLD on the backup address too and delivers there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startChain, waitForMessages } from './harness.js';
import { command as commandWithin, connectClient, type ScriptedClient } from '../fakes/scripted-client.js';

/** One command line; the last line of its reply within 5000 ms. */
const command = (client: ScriptedClient, line: string): Promise<string> => commandWithin(client, line, 5000);

const BACKUP = '127.0.0.20';
const CLIENT = '127.0.63.1';

/** One delivery attempt: greeting (after the teaser, if any), EHLO, MAIL, RCPT; then DATA only when RCPT got 250. */
async function tryToSend(client: ScriptedClient): Promise<{ greeting: string; rcpt: string; data: string | undefined }> {
  let greeting = await client.readLine(5000);
  if (greeting.startsWith('220-')) greeting = (await client.readReply(5000)).lines.at(-1)!;
  assert.match(await command(client, 'EHLO bot.example'), /^250 /);
  assert.match(await command(client, 'MAIL FROM:<bot@sender.test>'), /^250 /);
  const rcpt = await command(client, 'RCPT TO:<info@example.com>');
  let data: string | undefined;
  if (rcpt.startsWith('250')) {
    assert.match(await command(client, 'DATA'), /^354 /);
    data = await command(client, 'Subject: via the backup MX\r\n\r\nhello\r\n.');
  }
  await command(client, 'QUIT');
  return { greeting, rcpt, data };
}

test('a new client that connects only to the vetoed backup MX address never gets its mail accepted; after it passes on the primary it is PASS OLD on the backup and delivers there', async () => {
  const chain = await startChain(['mxscreen_listen = 127.0.0.1:0, 127.0.0.20:0', 'postscreen_allowlist_interfaces = !127.0.0.20, static:all']);
  try {
    const primary = chain.mx.smtp.find((bound) => bound.address === '127.0.0.1')!;
    const backup = chain.mx.smtp.find((bound) => bound.address === BACKUP)!;
    assert.ok(primary && backup, 'listening on both addresses');

    for (let attempt = 1; attempt <= 2; attempt++) {
      const bot = await connectClient({ host: BACKUP, port: backup.port, localAddress: CLIENT });
      const result = await tryToSend(bot);
      assert.equal(result.greeting, '220 mx1.example.net ESMTP mxscreen', "postscreen's own engine greets");
      assert.equal(result.rcpt, '450 4.3.2 Service currently unavailable', `attempt ${attempt}: RCPT refused`);
      assert.equal(result.data, undefined);
      await bot.closed;
    }
    assert.equal(chain.log.events('ALLOWLIST VETO').length, 2, 'the second attempt is vetoed again: nothing was cached');
    assert.equal(chain.log.events('PASS NEW').length, 0);
    assert.equal(chain.log.events('PASS OLD').length, 0);
    assert.equal(chain.log.events('queued').length, 0);
    const refusals = chain.log.events('NOQUEUE: reject');
    assert.equal(refusals.length, 2);
    assert.match(String(refusals[0]!.msg), /^NOQUEUE: reject: RCPT from \[127\.0\.63\.1\]:\d+: 450 4\.3\.2 Service currently unavailable; from=<bot@sender\.test>, to=<info@example\.com>, proto=ESMTP, helo=<bot\.example>$/);
    assert.equal(chain.log.lines.filter((line) => line.msg?.startsWith('disconnect from')).length, 0, 'no smtpd session ever started');

    // The same client passes on the primary address (no mail needed) ...
    const onPrimary = await connectClient({ port: primary.port, localAddress: CLIENT });
    assert.match(await onPrimary.readLine(5000), /^220-/);
    assert.equal((await onPrimary.readReply(5000)).code, 220);
    await command(onPrimary, 'QUIT');
    await chain.log.waitFor((line) => line.event === 'PASS NEW');

    // ... and is then PASS OLD on the backup address, where its mail is accepted and delivered.
    const again = await connectClient({ host: BACKUP, port: backup.port, localAddress: CLIENT });
    const result = await tryToSend(again);
    assert.match(result.rcpt, /^250 /);
    assert.match(String(result.data), /^250 2\.0\.0 Ok: queued as /);
    assert.equal(chain.log.events('PASS OLD').length, 1);
    assert.equal(chain.log.events('ALLOWLIST VETO').length, 2, 'no veto for a PASS OLD client');
    const [delivered] = await waitForMessages(chain.mailbox, 1, 5000);
    assert.equal(delivered!.sender, 'bot@sender.test');
  } finally {
    await chain.close();
  }
});
