// The multi-process mode (mxscreen_workers = 2) through the whole chain on loopback: the
// owner accepts paused and hands each socket to the worker of the client's address
// (client-hash.ts), the workers write the queue, the owner delivers. Clients from distinct
// 127.x.y.z addresses are chosen by the hash to land on a known worker; every worker log
// line carries `worker: N` (the owner copies the workers' lines into the captured log; a
// started `mxscreen` process's workers write to the stdout they share with it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { repositoryRoot } from '../fakes/repository-root.js';
import { temporaryDirectory } from '../fakes/temporary-directory.js';
import { startChain, waitForMessages, type Chain, type LogLine } from './harness.js';
import { connectClient, type ScriptedClient } from '../fakes/scripted-client.js';
import { until } from '../fakes/wait-until.js';
import { workerForAddress } from '../../src/workers/client-hash.js';

const WORKERS = 2;

/** `count` addresses 127.0.<block>.n whose connections the hash sends to worker `worker`. */
function addressesOf(worker: number, block: number, count: number): string[] {
  const found: string[] = [];
  for (let n = 1; n < 255 && found.length < count; n++) {
    const address = `127.0.${block}.${n}`;
    if (workerForAddress(address, WORKERS) === worker) found.push(address);
  }
  assert.equal(found.length, count, `addresses in 127.0.${block}.0/24 for worker ${worker}`);
  return found;
}

function startWorkers(extra: readonly string[] = []): Promise<Chain> {
  return startChain([`mxscreen_workers = ${WORKERS}`, ...extra]);
}

/** The lines of `event` about client `address` (the `client` field is `[ip]:port`). */
function linesOf(chain: Chain, event: string, address: string): LogLine[] {
  return chain.log.events(event).filter((line) => String(line.client).startsWith(`[${address}]:`));
}

async function expectCode(client: ScriptedClient, command: string, code: number): Promise<void> {
  client.send(`${command}\r\n`);
  const reply = await client.readReply(5000);
  assert.equal(reply.code, code, `${command}: ${reply.lines.join(' / ')}`);
}

/** A screened session from `address` that sends one message with `subject`; resolves after QUIT. */
async function sendOne(chain: Chain, address: string, subject: string): Promise<void> {
  const client = await connectClient({ port: chain.port, localAddress: address, timeoutMs: 5000 });
  try {
    await client.waitForCode(220, 5000);
    await expectCode(client, 'EHLO client.example', 250);
    await expectCode(client, 'MAIL FROM:<sender@client.example>', 250);
    await expectCode(client, 'RCPT TO:<info@example.com>', 250);
    await expectCode(client, 'DATA', 354);
    await expectCode(client, `Subject: ${subject}\r\n\r\nbody\r\n.`, 250);
    await expectCode(client, 'QUIT', 221);
  } finally {
    await client.close();
  }
}

function subjects(chain: Chain): string[] {
  return chain.mailbox.received.map((message) => /^Subject: (.*)$/m.exec(message.body.toString('latin1'))?.[1] ?? '');
}

/** GET /metrics of the running chain. */
function scrape(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/metrics' }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });
}

/** The value of the series `name{labels}` in a Prometheus text (labels as written there, or none). */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((each) => each.startsWith(labels ? `${name}{${labels}} ` : `${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('mail through two workers: each client is served by the worker of its address, every message is delivered by the owner, queue ids carry the worker\'s slot', async () => {
  const chain = await startWorkers();
  try {
    assert.equal(chain.mx.workerPids.length, WORKERS);
    assert.equal(new Set(chain.mx.workerPids).size, WORKERS, 'two processes');
    assert.ok(chain.mx.workerPids.every((pid) => pid !== undefined && pid !== process.pid));
    const clients = [...addressesOf(0, 70, 3), ...addressesOf(1, 70, 3)];
    await Promise.all(clients.map((address) => sendOne(chain, address, `from ${address}`)));
    await waitForMessages(chain.mailbox, clients.length, 10_000);
    assert.deepEqual(subjects(chain).sort(), clients.map((address) => `from ${address}`).sort());
    // Worker lines reach the owner's log through a pipe: wait for each client's.
    await until('every queued line', () => chain.log.events('queued').length === clients.length);
    for (const address of clients) {
      const worker = workerForAddress(address, WORKERS);
      const [connect] = linesOf(chain, 'CONNECT', address);
      assert.equal(connect?.worker, worker, `${address} screened by worker ${worker}`);
      const queued = chain.log.events('queued').filter((line) => line.worker === worker);
      assert.ok(queued.length >= 3);
    }
    // Slots: 4 for owner + 2 workers; worker i writes ids whose sequence has slot i + 1 in its top 2 bits.
    for (const line of chain.log.events('queued')) {
      const id = String(line.queueId);
      assert.match(id, /^[0-9A-F]{16}$/);
      assert.equal(parseInt(id.slice(11), 16) >> 18, Number(line.worker) + 1, `${id} from worker ${line.worker}`);
    }
    // Delivery happens in the owner only: no worker logs a delivery.
    await until('every status=sent line', () => chain.log.events('status=sent').length === clients.length);
    const sent = chain.log.events('status=sent');
    assert.equal(sent.length, clients.length);
    assert.ok(sent.every((line) => line.worker === undefined), 'the owner delivers');
  } finally {
    await chain.close();
  }
});

test('a trusted host (mynetworks: allowlisted, exempt from anvil) keeps no per-client state, so its sessions are spread over every worker', async () => {
  const chain = await startWorkers();
  try {
    const sessions = await Promise.all(Array.from({ length: 8 }, () => connectClient({ port: chain.port, localAddress: '127.0.0.1', timeoutMs: 5000 })));
    await Promise.all(
      sessions.map(async (client, index) => {
        assert.match(await client.readLine(5000), /^220 /, 'allowlisted: no teaser');
        await expectCode(client, 'EHLO trusted.example', 250);
        await expectCode(client, 'MAIL FROM:<relay@trusted.example>', 250);
        await expectCode(client, 'RCPT TO:<info@example.com>', 250);
        await expectCode(client, 'DATA', 354);
        await expectCode(client, `Subject: trusted ${index}\r\n\r\nbody\r\n.`, 250);
        await expectCode(client, 'QUIT', 221);
        await client.close();
      }),
    );
    await waitForMessages(chain.mailbox, 8, 10_000);
    await until('8 queued lines', () => chain.log.events('queued').length === 8);
    const byWorker = [0, 1].map((worker) => chain.log.events('queued').filter((line) => line.worker === worker).length);
    assert.ok(byWorker.every((count) => count >= 2), `both workers took sessions: ${byWorker.join(' + ')}`);
  } finally {
    await chain.close();
  }
});

test('per-client limits are exact across workers: one address\'s connections all reach one worker, so postscreen\'s and smtpd\'s counts see every one', async () => {
  const chain = await startWorkers(['postscreen_client_connection_count_limit = 3', 'smtpd_client_connection_count_limit = 4']);
  try {
    // postscreen: 8 connections in the greet wait from one address, 3 admitted.
    const [screened] = addressesOf(0, 71, 1);
    const waiting = await Promise.all(Array.from({ length: 8 }, () => connectClient({ port: chain.port, localAddress: screened!, timeoutMs: 5000 })));
    const first = await Promise.all(waiting.map((client) => client.readLine(5000)));
    assert.equal(first.filter((line) => line.startsWith('220-')).length, 3);
    assert.deepEqual([...new Set(first.filter((line) => !line.startsWith('220-')))], ['421 4.7.0 Error: too many connections']);
    await Promise.all(waiting.map((client) => client.close()));

    // smtpd (anvil): a PASS OLD client of the other worker opens 7 sessions, 4 are greeted.
    const [known] = addressesOf(1, 71, 1);
    const pass = await connectClient({ port: chain.port, localAddress: known!, timeoutMs: 5000 });
    await pass.waitForCode(220, 5000);
    await pass.close();
    await chain.log.waitFor((line) => line.event === 'PASS NEW' && String(line.client).startsWith(`[${known}]:`));
    const sessions = await Promise.all(Array.from({ length: 7 }, () => connectClient({ port: chain.port, localAddress: known!, timeoutMs: 5000 })));
    const greetings = await Promise.all(sessions.map((client) => client.readLine(5000)));
    assert.equal(greetings.filter((line) => line.startsWith('220 ')).length, 4);
    assert.deepEqual([...new Set(greetings.filter((line) => !line.startsWith('220 ')))], [`421 4.7.0 mx1.example.net Error: too many connections from ${known}`]);
    await until('3 anvil warnings', () => chain.log.events('Connection concurrency limit exceeded').length >= 3);
    const warnings = chain.log.events('Connection concurrency limit exceeded');
    assert.equal(warnings.length, 3);
    assert.ok(warnings.every((line) => line.worker === 1));
    await Promise.all(sessions.map((client) => client.close()));
  } finally {
    await chain.close();
  }
});

test('global counts across workers: postscreen_pre_queue_limit and stress mode count the connections of every worker', async () => {
  const chain = await startWorkers(['postscreen_greet_wait = 60s', 'postscreen_pre_queue_limit = 4']);
  const clients: ScriptedClient[] = [];
  try {
    // Two connections being screened in each worker: 4 in all, the limit.
    for (const address of [...addressesOf(0, 77, 2), ...addressesOf(1, 77, 2)]) {
      const client = await connectClient({ port: chain.port, localAddress: address, timeoutMs: 5000 });
      clients.push(client);
      assert.match(await client.readLine(5000), /^220-/);
    }
    // Stress from ⌊0.9 × 4⌋ = 3: neither worker reaches it with its own 2.
    await until('STRESS in both workers', () => new Set(chain.log.events('STRESS').map((line) => line.worker)).size === 2);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the owner's last sums reach both workers
    for (const worker of [0, 1]) {
      const [address] = addressesOf(worker, 78, 1);
      const late = await connectClient({ port: chain.port, localAddress: address!, timeoutMs: 5000 });
      assert.equal(await late.readLine(5000), '421 4.3.2 All screening ports are busy', `worker ${worker} counts the other's connections`);
      await late.close();
    }
    const text = await chain.mx.metricsText();
    assert.equal(sample(text, 'mxscreen_connections_active', 'stage="screen"'), 4);
    assert.equal(sample(text, 'mxscreen_stress_mode'), 1);
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await chain.close();
  }
});

test('PASS OLD across connections: a returning client is recognised because the hash brings it back to the worker that cached its PASS NEW', async () => {
  const chain = await startWorkers();
  try {
    const clients = [...addressesOf(0, 72, 4), ...addressesOf(1, 72, 4)];
    for (const round of [1, 2, 3]) {
      await Promise.all(
        clients.map(async (address) => {
          const client = await connectClient({ port: chain.port, localAddress: address, timeoutMs: 5000 });
          const line = await client.readLine(5000);
          if (round === 1) {
            assert.match(line, /^220-/, 'a new client gets the teaser');
            await client.waitForCode(220, 5000); // the greet wait passes
          } else {
            assert.match(line, /^220 mx1\.example\.net ESMTP/, `${address} round ${round}: PASS OLD, no teaser`);
          }
          await client.close();
        }),
      );
      if (round === 1) await until('every PASS NEW', () => chain.log.events('PASS NEW').length === clients.length);
    }
    await until('every PASS OLD', () => chain.log.events('PASS OLD').length === 2 * clients.length);
    for (const address of clients) {
      const worker = workerForAddress(address, WORKERS);
      assert.deepEqual(linesOf(chain, 'PASS NEW', address).map((line) => line.worker), [worker]);
      assert.deepEqual(linesOf(chain, 'PASS OLD', address).map((line) => line.worker), [worker, worker]);
    }
  } finally {
    await chain.close();
  }
});

test('pregreet through a worker: bytes a client sends before any greeting stay in the kernel while the owner hands the socket over, and the worker sees them all', async () => {
  const chain = await startWorkers(['postscreen_greet_wait = 300ms']);
  try {
    const talkers = [...addressesOf(0, 73, 2), ...addressesOf(1, 73, 2)];
    const text = 'EHLO early.bird\r\n';
    await Promise.all(
      talkers.map(async (address) => {
        const client = await connectClient({ port: chain.port, localAddress: address, timeoutMs: 5000 });
        client.send(text); // at once, before reading anything
        await client.waitForCode(220, 5000);
        await client.close();
      }),
    );
    await until('a PREGREET line per talker', () => chain.log.events('PREGREET').length >= talkers.length);
    for (const address of talkers) {
      const [pregreet] = linesOf(chain, 'PREGREET', address);
      assert.ok(pregreet, `PREGREET for ${address}`);
      assert.equal(pregreet.worker, workerForAddress(address, WORKERS));
      assert.match(String(pregreet.msg), new RegExp(`^PREGREET ${text.length} after `));
    }
  } finally {
    await chain.close();
  }
});

test('ETRN through a worker reaches the owner\'s queue manager: the deferred message is delivered at once', async () => {
  const chain = await startWorkers(['minimal_backoff_time = 1h', 'maximal_backoff_time = 2h', 'queue_run_delay = 1h']);
  try {
    await chain.mailbox.down();
    const [sender] = addressesOf(0, 79, 1);
    await sendOne(chain, sender!, 'etrn waiting');
    await chain.log.waitFor((line) => line.event === 'status=deferred');
    await chain.mailbox.restart();
    const [asker] = addressesOf(1, 79, 1);
    const client = await connectClient({ port: chain.port, localAddress: asker!, timeoutMs: 5000 });
    await client.waitForCode(220, 5000);
    await expectCode(client, 'EHLO client.example.org', 250);
    client.send('ETRN example.com\r\n');
    assert.match((await client.readReply(5000)).lines.at(-1)!, /^250 .*Queuing started/);
    await client.close();
    await waitForMessages(chain.mailbox, 1, 5000);
    const flush = await chain.log.waitFor((line) => line.event === 'flush');
    assert.equal(flush.worker, undefined, 'flushed by the owner');
    assert.equal(flush.count, 1);
  } finally {
    await chain.close();
  }
});

test('PROXY protocol with workers: the owner reads the header, the real client\'s address picks the worker, and the bytes after the header (a pregreet) reach it', async () => {
  const chain = await startWorkers(['postscreen_upstream_proxy_protocol = haproxy', 'postscreen_greet_wait = 300ms']);
  try {
    // One proxy (127.0.80.1), four real clients: two for each worker.
    const real = [0, 1, 0, 1].map((worker, index) => {
      for (let n = 1; n < 255; n++) {
        const address = `198.51.${100 + index}.${n}`;
        if (workerForAddress(address, WORKERS) === worker) return address;
      }
      throw new Error('no address');
    });
    await Promise.all(
      real.map(async (address, index) => {
        const client = await connectClient({ port: chain.port, localAddress: '127.0.80.1', timeoutMs: 5000 });
        // The header and the client's early talk in one segment: the owner must not eat the talk.
        client.send(`PROXY TCP4 ${address} 198.51.100.1 4000${index} 25\r\nEHLO early.bird\r\n`);
        await client.waitForCode(220, 5000);
        await client.close();
      }),
    );
    await until('a PREGREET line per client', () => chain.log.events('PREGREET').length === real.length);
    for (const address of real) {
      const [connect] = linesOf(chain, 'CONNECT', address);
      assert.ok(connect, `${address} screened under its real address`);
      assert.equal(connect.worker, workerForAddress(address, WORKERS), 'on the worker of the real address');
      const [pregreet] = linesOf(chain, 'PREGREET', address);
      assert.equal(pregreet?.worker, connect.worker);
      assert.match(String(pregreet?.msg), /^PREGREET 17 after /, 'every byte after the header');
    }
    // A bad header is still the worker's to refuse and log.
    const bad = await connectClient({ port: chain.port, localAddress: '127.0.80.2', timeoutMs: 5000 });
    bad.send('HELLO there\r\n');
    await bad.waitForEnd(5000);
    await bad.close();
    const proxyError = await chain.log.waitFor((line) => line.event === 'PROXY');
    assert.equal(proxyError.worker, workerForAddress('127.0.80.2', WORKERS));
  } finally {
    await chain.close();
  }
});

test('a worker killed with SIGKILL under load: logged and counted, restarted, its clients served again, and every message that got a 250 is delivered', async () => {
  const chain = await startWorkers(['mxscreen_metrics_listen = 127.0.0.1:0']);
  try {
    const victim = 0;
    const victimPid = chain.mx.workerPids[victim]!;
    const clients = [...addressesOf(0, 74, 3), ...addressesOf(1, 74, 3)];
    const accepted = new Set<string>();
    let killed = false;
    const deadline = Date.now() + 20_000;
    // Each client sends 10 messages over as many sessions as it takes (bounded in time).
    await Promise.all(
      clients.map(async (address) => {
        let sent = 0;
        for (let attempt = 0; sent < 10 && attempt < 60 && Date.now() < deadline; attempt++) {
          let client: ScriptedClient | undefined;
          try {
            client = await connectClient({ port: chain.port, localAddress: address, timeoutMs: 2000 });
            await client.waitForCode(220, 5000);
            await expectCode(client, 'EHLO load.example', 250);
            while (sent < 10) {
              const subject = `${address} #${sent}`;
              await expectCode(client, 'MAIL FROM:<load@client.example>', 250);
              await expectCode(client, 'RCPT TO:<info@example.com>', 250);
              await expectCode(client, 'DATA', 354);
              await expectCode(client, `Subject: ${subject}\r\n\r\n${'x'.repeat(2000)}\r\n.`, 250);
              accepted.add(subject);
              sent += 1;
              if (!killed && accepted.size >= 12) {
                killed = true;
                process.kill(victimPid, 'SIGKILL');
              }
            }
            await expectCode(client, 'QUIT', 221);
          } catch {
            await new Promise((resolve) => setTimeout(resolve, 50)); // the session died with its worker: try again
          } finally {
            await client?.close().catch(() => undefined);
          }
        }
      }),
    );
    assert.ok(killed, 'the worker was killed during the load');
    const exit = await chain.log.waitFor((line) => line.event === 'WORKER EXIT');
    assert.equal(exit.worker, victim);
    assert.equal(exit.signal, 'SIGKILL');
    assert.equal(exit.level, 'warn');
    const restart = await chain.log.waitFor((line) => line.event === 'WORKER START' && line.restart === true, 10_000);
    assert.equal(restart.worker, victim);
    assert.notEqual(chain.mx.workerPids[victim], victimPid);
    assert.equal(alive(victimPid), false);
    // Every client finished its 10 (the victim's clients after the restart).
    assert.equal(accepted.size, clients.length * 10, 'all 60 messages got a 250 in the end');
    await until('every 250\'d message delivered', () => new Set(subjects(chain)).size >= accepted.size, 20_000);
    const delivered = new Set(subjects(chain));
    assert.deepEqual([...accepted].filter((subject) => !delivered.has(subject)), [], 'no 250\'d message lost');
    const text = await scrape(chain.mx.metricsEndpoint!.port);
    assert.equal(sample(text, 'mxscreen_worker_restarts_total'), 1);
  } finally {
    await chain.close();
  }
});

test('reload reaches every worker (new banner in each), a bad configuration reaches none, and stop ends every worker after its sessions', async () => {
  const chain = await startWorkers();
  try {
    const pids = [...chain.mx.workerPids] as number[];
    appendFileSync(chain.configFile, 'postscreen_greet_banner = $myhostname reloaded teaser\n');
    assert.equal(await chain.mx.reload(), true);
    await until('a RELOAD line from each worker', () => chain.log.events('RELOAD').filter((line) => line.worker !== undefined).length >= 2);
    const reloads = chain.log.events('RELOAD').filter((line) => line.worker !== undefined);
    assert.deepEqual(reloads.map((line) => line.worker).sort(), [0, 1], 'each worker reloaded');
    for (const worker of [0, 1]) {
      const [address] = addressesOf(worker, 75, 1);
      const client = await connectClient({ port: chain.port, localAddress: address!, timeoutMs: 5000 });
      assert.equal(await client.readLine(5000), '220-mx1.example.net reloaded teaser', `worker ${worker} has the new banner`);
      await client.close();
    }

    const good = readFileSync(chain.configFile, 'utf8');
    appendFileSync(chain.configFile, 'postscreen_greet_action = sometimes\n');
    assert.equal(await chain.mx.reload(), false);
    await chain.log.waitFor((line) => line.event === 'RELOAD FAILED');
    assert.equal(chain.log.events('RELOAD FAILED').filter((line) => line.worker !== undefined).length, 0, 'checked in the owner: no worker tried');
    assert.equal(chain.log.events('RELOAD').filter((line) => line.worker !== undefined).length, 2, 'no worker reloaded again');

    // A session open on worker 1 while stop begins still delivers its message.
    const [address] = addressesOf(1, 75, 1);
    const client = await connectClient({ port: chain.port, localAddress: address!, timeoutMs: 5000 });
    await client.waitForCode(220, 5000);
    await expectCode(client, 'EHLO late.example', 250);
    await expectCode(client, 'MAIL FROM:<late@client.example>', 250);
    const stopping = chain.mx.stop();
    await new Promise((resolve) => setTimeout(resolve, 300)); // within mxscreen_shutdown_timeout (1s)
    await expectCode(client, 'RCPT TO:<info@example.com>', 250);
    await expectCode(client, 'DATA', 354);
    await expectCode(client, 'Subject: during stop\r\n\r\nbody\r\n.', 250);
    await client.close();
    await stopping;
    assert.ok(pids.every((pid) => !alive(pid)), 'every worker exited');
    await chain.log.waitFor((line) => line.event === 'STOP');
    writeFileSync(chain.configFile, good);
    // The queue stopped last: the message is queued (delivered, or delivered at the next start).
    await chain.restart();
    await until('the message accepted during stop is delivered', () => subjects(chain).includes('during stop'), 10_000);
  } finally {
    await chain.close();
  }
});

test('metrics: /metrics aggregates the owner and every worker: a counter incremented in two workers shows the sum, names and labels unchanged', async () => {
  const chain = await startWorkers(['mxscreen_metrics_listen = 127.0.0.1:0']);
  try {
    const clients = [...addressesOf(0, 76, 2), ...addressesOf(1, 76, 1)];
    await Promise.all(clients.map((address) => sendOne(chain, address, `metrics ${address}`)));
    await waitForMessages(chain.mailbox, clients.length, 10_000);
    await until('delivered', () => chain.log.events('status=sent').length === clients.length);
    const text = await scrape(chain.mx.metricsEndpoint!.port);
    assert.equal(sample(text, 'mxscreen_messages_queued_total'), 3, 'queued in two workers: 2 + 1');
    assert.equal(sample(text, 'mxscreen_connections_total', 'verdict="pass-new"'), 3);
    assert.equal(sample(text, 'mxscreen_deliveries_total', `status="sent",nexthop="[127.0.0.1]:${chain.mailbox.port}"`), 3, 'the owner\'s delivery counter');
    assert.equal(sample(text, 'mxscreen_connections_active', 'stage="smtpd"'), 0);
    assert.equal(sample(text, 'mxscreen_stress_mode'), 0);
    assert.equal(sample(text, 'mxscreen_worker_restarts_total'), 0);
    assert.equal(sample(text, 'mxscreen_worker_handoff_seconds_count', 'worker="0"'), 2, 'every socket handed to worker 0 is timed');
    assert.equal(sample(text, 'mxscreen_worker_handoff_seconds_count', 'worker="1"'), 1);
    assert.equal(sample(text, 'mxscreen_worker_handoff_seconds_bucket', 'le="5",worker="1"'), 1, 'a hand-off on an idle loopback takes well under 5 s');
    assert.equal(sample(await chain.mx.metricsText(), 'mxscreen_messages_queued_total'), 3, 'the same view in process');
  } finally {
    await chain.close();
  }
});

test('mxscreen start with two workers: SIGHUP reloads the owner and each worker (the workers log on the stdout they share with the owner), SIGTERM stops the workers and then the owner (exit 0)', async () => {
  const directory = temporaryDirectory('mxscreen-workers-cli-');
  const file = join(directory, 'main.cf');
  writeFileSync(
    file,
    ['myhostname = mx.example.net', 'mxscreen_listen = 127.0.0.1:0', 'mxscreen_metrics_listen =', 'mxscreen_dns_servers = 127.0.0.1:9', 'queue_directory = queue', 'postscreen_dnsbl_timeout = 1s', 'mxscreen_shutdown_timeout = 1s', `mxscreen_workers = ${WORKERS}`, ''].join('\n'),
  );
  const child = spawn(process.execPath, [join(repositoryRoot(), 'dist/src/cli.js'), 'start', '-c', file, '--no-privilege-drop'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: LogLine[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(JSON.parse(line) as LogLine));
  const events = (event: string) => lines.filter((line) => line.event === event);
  try {
    await until('START', () => events('START').length === 1, 10_000);
    const starts = events('WORKER START');
    assert.deepEqual(starts.map((line) => line.worker).sort(), [0, 1]);
    const pids = starts.map((line) => Number(line.pid));
    child.kill('SIGHUP');
    await until('RELOAD from the owner and both workers', () => new Set(events('RELOAD').map((line) => line.worker ?? 'owner')).size === 3, 10_000);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0);
    assert.equal(events('STOP').length, 1);
    assert.ok(pids.every((pid) => !alive(pid)), 'no worker outlives the owner');
    assert.equal(events('WORKER EXIT').length, 0, 'a stop is not a crash');
  } finally {
    child.kill('SIGKILL');
  }
});

test('workers outlive no owner: the owner killed with SIGKILL, each worker finishes and exits on its own', async () => {
  const directory = temporaryDirectory('mxscreen-workers-orphan-');
  const file = join(directory, 'main.cf');
  writeFileSync(
    file,
    ['myhostname = mx.example.net', 'mxscreen_listen = 127.0.0.1:0', 'mxscreen_metrics_listen =', 'mxscreen_dns_servers = 127.0.0.1:9', 'queue_directory = queue', 'mxscreen_shutdown_timeout = 1s', `mxscreen_workers = ${WORKERS}`, ''].join('\n'),
  );
  const child = spawn(process.execPath, [join(repositoryRoot(), 'dist/src/cli.js'), 'start', '-c', file, '--no-privilege-drop'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: LogLine[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(JSON.parse(line) as LogLine));
  try {
    await until('START', () => lines.some((line) => line.event === 'START'), 10_000);
    const pids = lines.filter((line) => line.event === 'WORKER START').map((line) => Number(line.pid));
    assert.equal(pids.length, WORKERS);
    child.kill('SIGKILL');
    await until('every worker gone', () => pids.every((pid) => !alive(pid)), 10_000);
  } finally {
    child.kill('SIGKILL');
  }
});
