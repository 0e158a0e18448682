/*
 * traffic — Internet hosts a test plays against a running chain, one scripted client each
 * from its own 127.x.y.z address: a clean client that sends mail, a DNSBL-listed one, a
 * pregreet talker, and one that hangs up in the greet wait.
 *
 * Decides: what each kind of host sends and which reply codes it must see (an unexpected
 * code rejects, naming the host); every wait is bounded by WAIT.
 * Leaves to others: the chain's configuration (the DNSBL zone, greet action enforce, the
 * recipients) and what the test then measures.
 */
import assert from 'node:assert/strict';
import { connectClient, type ScriptedClient } from '../fakes/scripted-client.js';
import { ZONE, type Chain } from './harness.js';

/** Bound of each reply wait (ms): generous, as the load shares two cores with the chain. */
const WAIT = 10_000;

async function say(client: ScriptedClient, line: string, code: number): Promise<void> {
  client.send(`${line}\r\n`);
  const reply = await client.readReply(WAIT);
  assert.equal(reply.code, code, `${client.localAddress}: ${line.split('\r\n')[0]} → ${reply.lines.join(' / ')}`);
}

/** One SMTP command and the reply code it must get; a DATA body is sent as one "command". */
export type Step = readonly [command: string, code: number];

/** A message from `sender` (`<>` for a null sender) to each of `recipients`, accepted. */
export function message(sender: string, recipients: readonly string[], subject = 'hello'): Step[] {
  return [[`MAIL FROM:<${sender}>`, 250], ...recipients.map((to): Step => [`RCPT TO:<${to}>`, 250]), ['DATA', 354], [`Subject: ${subject}\r\n\r\nhello\r\n.`, 250]];
}

/** Passes the screen (teaser and greet wait, or PASS OLD), runs EHLO, `steps`, QUIT, and waits for the server to close. */
export async function cleanClient(chain: Chain, address: string, steps: readonly Step[] = []): Promise<void> {
  const client = await connectClient({ port: chain.port, localAddress: address });
  try {
    assert.equal((await client.readReply(WAIT)).code, 220, `${address}: greeting`);
    await say(client, 'EHLO client.example', 250);
    for (const [command, code] of steps) await say(client, command, code);
    await say(client, 'QUIT', 221);
    await client.waitForEnd(WAIT);
  } finally {
    await client.close();
  }
}

/** Lists `address` in the harness DNSBL zone (127.0.0.2), connects, and must be dropped with 521. */
export async function listedClient(chain: Chain, address: string): Promise<void> {
  chain.dns.listDnsbl(ZONE, address, ['127.0.0.2']);
  const client = await connectClient({ port: chain.port, localAddress: address });
  try {
    const reply = await client.waitForCode(521, WAIT).catch((error: Error) => {
      throw new Error(`${address}: no 521 (${error.message}); it read ${JSON.stringify(client.received())}`);
    });
    assert.equal(reply.code, 521);
    await client.waitForEnd(WAIT);
  } finally {
    await client.close();
  }
}

/** Talks before the greeting (postscreen_greet_action = enforce: it still gets its 220), then QUIT. */
export async function pregreetClient(chain: Chain, address: string): Promise<void> {
  const client = await connectClient({ port: chain.port, localAddress: address });
  try {
    client.send('EHLO early.bird\r\n');
    assert.equal((await client.waitForCode(220, WAIT)).code, 220, `${address}: greeting after the pregreet`);
    client.send('QUIT\r\n');
    await client.waitForCode(221, WAIT);
    await client.waitForEnd(WAIT);
  } finally {
    await client.close();
  }
}

/** Hangs up during the teaser's greet wait. */
export async function hangupClient(chain: Chain, address: string): Promise<void> {
  const client = await connectClient({ port: chain.port, localAddress: address });
  try {
    await client.readLine(WAIT);
  } finally {
    await client.close();
  }
}
