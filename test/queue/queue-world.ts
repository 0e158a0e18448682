/*
 * queue-world — a queue directory, a Spool and a QueueManager on a ManualClock, with a
 * mailbox server as the nexthop of example.com and example.org (so notices to senders
 * arrive there too), for the queue tests; withDeferred starts one with a message deferred.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Envelope, QueueRecipient } from '../../src/queue/envelope.js';
import { Spool } from '../../src/queue/spool.js';
import { QueueManager } from '../../src/queue/queue-manager.js';
import type { QueueSettings } from '../../src/queue/queue-settings.js';
import type { LookupTable } from '../../src/tables/lookup-table.js';
import { Metrics } from '../../src/ops/metrics.js';
import { MailboxServer } from '../fakes/mailbox-server.js';
import { ManualClock } from './manual-clock.js';
import { captureLog, type LogCapture } from './log-capture.js';
import { noDns } from '../fakes/no-dns.js';
import type { DnsResolver } from '../../src/dns/resolver.js';
export { noDns };

export const MINUTE = 60_000;

/** No DNS in these tests: every nexthop is a bracketed loopback address. */

export interface World {
  readonly directory: string;
  readonly clock: ManualClock;
  readonly capture: LogCapture;
  readonly metrics: Metrics;
  readonly mailbox: MailboxServer;
  /** transport_maps entries, changeable by a test. */
  readonly routes: Record<string, string>;
  spool: Spool;
  manager: QueueManager;
  settings: QueueSettings;
  /** Writes and commits a message; returns its id. */
  queue(recipients: (string | QueueRecipient)[], body?: string, envelope?: Partial<Envelope>): Promise<string>;
  /** A new Spool + QueueManager on the same directory (a restart). */
  restart(): Promise<void>;
  files(queue: string): Promise<string[]>;
}

/** `resolver`: DNS for nexthops that are not bracketed addresses (default: none, every lookup fails). */
export async function withWorld(fn: (world: World) => Promise<void>, overrides: Partial<QueueSettings> = {}, options: { readonly resolver?: DnsResolver } = {}): Promise<void> {
  const resolver = options.resolver ?? noDns;
  const directory = await mkdtemp(join(tmpdir(), 'mxscreen-qmgr-'));
  const mailbox = await MailboxServer.start();
  const clock = new ManualClock();
  const capture = captureLog();
  const metrics = new Metrics();
  // example.org is the senders' domain: notices (DSNs) to them reach the same mailbox server.
  const routes: Record<string, string> = { 'example.com': mailbox.nexthop, 'example.org': mailbox.nexthop, 'bounce.test': 'error:5.1.1 no such domain here' };
  const table: LookupTable = { spec: 'inline:test', lookup: (key) => routes[key] };
  const settings: QueueSettings = {
    directory,
    transportMaps: [table],
    relayhost: '',
    myhostname: 'mx1.test',
    minimalBackoffTime: 5 * MINUTE,
    maximalBackoffTime: 60 * MINUTE,
    queueRunDelay: 5 * MINUTE,
    maximalQueueLifetime: 5 * 24 * 60 * MINUTE,
    connectTimeout: 2000,
    commandTimeout: 2000,
    concurrency: 4,
    activeLimit: 100,
    stopGrace: 1000,
    ...overrides,
  };
  const deps = () => ({ log: capture.log, metrics, clock });
  const spool = await Spool.open(directory, deps());
  const manager = new QueueManager(settings, { spool, resolver, ...deps() });
  const world: World = {
    directory,
    clock,
    capture,
    metrics,
    mailbox,
    routes,
    spool,
    manager,
    settings,
    async queue(recipients, body = 'Subject: test\r\n\r\nhello\r\n', overrides = {}) {
      const envelope: Envelope = {
        sender: 'alice@example.org',
        recipients: recipients.map((r) => (typeof r === 'string' ? { address: r } : r)),
        arrivalTime: clock.now(),
        client: { address: '127.0.0.9', port: 40000 },
        sessionId: 'S1',
        ...overrides,
      };
      const message = await world.spool.open(envelope);
      await message.write(Buffer.from(body));
      await message.commit();
      return message.id;
    },
    async restart() {
      await world.manager.stop();
      world.spool = await Spool.open(directory, deps());
      world.manager = new QueueManager(settings, { spool: world.spool, resolver, ...deps() });
      await world.manager.start();
    },
    files: (queue) => readdir(join(directory, queue)),
  };
  try {
    await fn(world);
  } finally {
    await world.manager.stop();
    await mailbox.close();
    await rm(directory, { recursive: true, force: true });
  }
}

/** Messages the mailbox server got, without the notices (DSNs, from <>) mxscreen sent. */
export function delivered(world: World) {
  return world.mailbox.received.filter((m) => m.sender !== '');
}

/** The notices (DSNs) the mailbox server got. */
export function notices(world: World) {
  return world.mailbox.received.filter((m) => m.sender === '');
}

/** A running queue manager with one message deferred (mailbox down for its first attempt, then up again). */
export async function withDeferred(fn: (world: World, id: string) => Promise<void>, overrides: Partial<QueueSettings> = {}): Promise<void> {
  await withWorld(async (world) => {
    await world.manager.start();
    await world.mailbox.down();
    const id = await world.queue(['bob@example.com']);
    world.manager.kick(id);
    await world.manager.whenIdle();
    await world.mailbox.restart();
    await fn(world, id);
  }, overrides);
}
