/*
 * queue-manager — schedules delivery of queued mail (Postfix qmgr(8)).
 *
 * Decides: incoming → active → (removed | deferred) moves; at start, active/ leftovers go
 * back to incoming/ (crash recovery); a queue run every queue_run_delay picks up incoming
 * mail and deferred mail whose next attempt time has come, and a wake-up timer fires at
 * the earliest next attempt; at most `concurrency` messages are delivered at once and at
 * most `activeLimit` sit in active/ (qmgr_message_active_limit). A message is removed
 * only when every recipient is sent or bounced; otherwise its state (delivery-state.ts)
 * is written durably, then it moves to deferred/ with a doubling backoff (backoff.ts).
 * Remaining recipients of a message older than maximal_queue_lifetime bounce.
 * One log line per recipient, event `status=sent|deferred|bounced`, Postfix's text.
 * Leaves to others: file format and moves (spool.ts), nexthop (transport.ts), targets
 * (mx-lookup.ts), the SMTP dialogue (smtp-delivery.ts).
 * Bugs: a bounce is logged and the recipient dropped: no DSN goes to the sender yet. One
 * QueueManager per queue directory; nothing enforces it.
 */
import { hostname } from 'node:os';
import type { Config } from '../config/value.js';
import type { Clock, Timer } from '../clock.js';
import type { DnsResolver } from '../dns/resolver.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import type { LookupTable } from '../tables/lookup-table.js';
import { MxError } from '../errors.js';
import type { Spool } from './spool.js';
import type { QueueFileHead } from './queue-file.js';
import { backoffDelay } from './backoff.js';
import { initialDeliveryState, isFinished, isUndelivered, type DeliveryState, type RecipientState } from './delivery-state.js';
import { formatNexthop, resolveNexthop, type Nexthop } from '../delivery/transport.js';
import { lookupTargets } from '../delivery/mx-lookup.js';
import { deliverMessage, type RecipientResult } from '../delivery/smtp-delivery.js';

export interface QueueSettings {
  /** Absolute queue directory (queue_directory resolved against the config directory). */
  readonly directory: string;
  readonly transportMaps: readonly LookupTable[];
  /** relayhost; empty for none. */
  readonly relayhost: string;
  /** EHLO name (myhostname, or the machine host name when empty). */
  readonly myhostname: string;
  /** ms */
  readonly minimalBackoffTime: number;
  /** ms */
  readonly maximalBackoffTime: number;
  /** ms between queue runs. */
  readonly queueRunDelay: number;
  /** ms after arrival at which undelivered recipients bounce. */
  readonly maximalQueueLifetime: number;
  /** smtp_connect_timeout, ms. */
  readonly connectTimeout: number;
  /** Greeting and command reply limit, ms (Postfix smtp_helo_timeout, 300s). */
  readonly commandTimeout: number;
  /** Messages delivered at once. */
  readonly concurrency: number;
  /** Messages held in active/ at once (Postfix qmgr_message_active_limit). */
  readonly activeLimit: number;
  /** On stop(), how long in-flight deliveries may finish before they are abandoned, ms. */
  readonly stopGrace: number;
}

export interface QueueManagerDeps {
  readonly spool: Spool;
  readonly resolver: DnsResolver;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
}

/** Queue settings from main.cf (postconf(5) names). Relative queue_directory: the config directory. */
export function queueSettingsFromConfig(config: Config): QueueSettings {
  return {
    directory: config.resolvePath(config.get('queue_directory')),
    transportMaps: config.get('transport_maps'),
    relayhost: config.get('relayhost'),
    myhostname: config.get('myhostname') || hostname(),
    minimalBackoffTime: config.get('minimal_backoff_time'),
    maximalBackoffTime: config.get('maximal_backoff_time'),
    queueRunDelay: config.get('queue_run_delay'),
    maximalQueueLifetime: config.get('maximal_queue_lifetime'),
    connectTimeout: config.get('smtp_connect_timeout'),
    commandTimeout: 300_000,
    concurrency: 20,
    activeLimit: 1000,
    stopGrace: 10_000,
  };
}

type ManagerState = 'new' | 'running' | 'stopping' | 'stopped';

export class QueueManager {
  #settings: QueueSettings;
  readonly #deps: QueueManagerDeps;
  #state: ManagerState = 'new';
  /** Ids in active/ owned by this manager: waiting in #ready or being delivered. */
  readonly #owned = new Set<string>();
  readonly #ready: string[] = [];
  readonly #running = new Map<string, { promise: Promise<void>; abort: AbortController }>();
  /** Next attempt time of deferred messages already seen (saves re-reading their state). */
  readonly #deferredDue = new Map<string, number>();
  #incomingBacklog = false;
  #runTimer: Timer | undefined;
  #wakeTimer: Timer | undefined;
  #wakeAt = Infinity;
  #busy = 0;
  #idleWaiters: (() => void)[] = [];

  constructor(settings: QueueSettings, deps: QueueManagerDeps) {
    this.#settings = settings;
    this.#deps = deps;
  }

  /** Takes new settings (reload). The queue directory is fixed at construction. */
  setSettings(settings: QueueSettings): void {
    const delayChanged = settings.queueRunDelay !== this.#settings.queueRunDelay;
    this.#settings = { ...settings, directory: this.#settings.directory };
    if (delayChanged && this.#state === 'running') this.#armQueueRun();
    this.#pump();
  }

  /**
   * Crash recovery (active/ leftovers back to incoming/), then a first queue run, then a
   * run every queue_run_delay. Throws MxError ERR_QUEUE_IO when the queue cannot be read.
   */
  async start(): Promise<void> {
    if (this.#state !== 'new') return;
    const { spool, log } = this.#deps;
    try {
      for (const id of await spool.list('active')) await spool.move(id, 'active', 'incoming');
    } catch (error) {
      throw error instanceof MxError ? error : new MxError('ERR_QUEUE_IO', `cannot recover active/: ${(error as Error).message}`, { cause: error });
    }
    this.#state = 'running';
    log.debug({ directory: spool.directory }, 'queue manager started');
    await this.#queueRun();
    this.#armQueueRun();
  }

  /**
   * New mail in incoming/: `id` for one message (the policy stage after commit), no id
   * for a scan of incoming/. Never throws; does nothing unless started.
   */
  kick(id?: string): void {
    if (this.#state !== 'running') return;
    if (id === undefined) {
      void this.#track(this.#scanIncoming());
      return;
    }
    if (this.#owned.has(id) || this.#owned.size >= this.#settings.activeLimit) {
      this.#incomingBacklog ||= !this.#owned.has(id);
      return;
    }
    void this.#track(this.#take(id, 'incoming'));
  }

  /** Resolves when nothing is being scanned, moved or delivered (tests, benchmarks). */
  whenIdle(): Promise<void> {
    if (this.#busy === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Stops scheduling; lets in-flight deliveries finish for up to `stopGrace` ms, then
   * abandons them (their recipients stay undelivered; the file stays in active/ and goes
   * back to incoming/ at the next start). Messages waiting for a slot go back to
   * incoming/. Nothing is lost; a recipient may be delivered twice. Never throws.
   */
  async stop(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping') return this.whenIdle();
    const wasRunning = this.#state === 'running';
    this.#state = 'stopping';
    this.#runTimer?.cancel();
    this.#wakeTimer?.cancel();
    if (wasRunning) {
      // The grace time starts now, before any await.
      const grace = this.#deps.clock.setTimer(this.#settings.stopGrace, () => {
        for (const { abort } of this.#running.values()) abort.abort();
      });
      for (const id of this.#ready.splice(0)) {
        await this.#deps.spool.move(id, 'active', 'incoming').catch((error: unknown) => this.#queueError(id, error));
        this.#owned.delete(id);
      }
      await Promise.all([...this.#running.values()].map(({ promise }) => promise));
      grace.cancel();
      await this.whenIdle();
    }
    this.#state = 'stopped';
  }

  // --- scheduling ---

  #armQueueRun(): void {
    this.#runTimer?.cancel();
    this.#runTimer = this.#deps.clock.setTimer(this.#settings.queueRunDelay, () => {
      if (this.#state !== 'running') return;
      void this.#track(this.#queueRun());
      this.#armQueueRun();
    });
  }

  #armWake(at: number): void {
    if (this.#state !== 'running' || at >= this.#wakeAt) return;
    this.#wakeTimer?.cancel();
    this.#wakeAt = at;
    this.#wakeTimer = this.#deps.clock.setTimer(Math.max(0, at - this.#deps.clock.now()), () => {
      this.#wakeAt = Infinity;
      this.#wakeTimer = undefined;
      if (this.#state === 'running') void this.#track(this.#scanDeferred());
    });
  }

  async #queueRun(): Promise<void> {
    await this.#scanIncoming();
    await this.#scanDeferred();
    await this.#deps.spool.countMessages();
  }

  async #scanIncoming(): Promise<void> {
    if (this.#state !== 'running') return;
    let ids: string[];
    try {
      ids = await this.#deps.spool.list('incoming');
    } catch (error) {
      this.#queueError('incoming', error);
      return;
    }
    this.#incomingBacklog = false;
    const takes: Promise<void>[] = [];
    for (const id of ids) {
      if (this.#owned.has(id)) continue;
      if (this.#owned.size >= this.#settings.activeLimit) {
        this.#incomingBacklog = true;
        break;
      }
      takes.push(this.#take(id, 'incoming'));
    }
    await Promise.all(takes);
  }

  async #scanDeferred(): Promise<void> {
    if (this.#state !== 'running') return;
    const { spool, clock } = this.#deps;
    let ids: string[];
    try {
      ids = await spool.list('deferred');
    } catch (error) {
      this.#queueError('deferred', error);
      return;
    }
    const present = new Set(ids);
    for (const id of this.#deferredDue.keys()) if (!present.has(id)) this.#deferredDue.delete(id);
    const now = clock.now();
    let earliest = Infinity;
    const takes: Promise<void>[] = [];
    for (const id of ids) {
      if (this.#owned.has(id)) continue;
      let due = this.#deferredDue.get(id);
      if (due === undefined) {
        try {
          const head = await spool.readHead('deferred', id);
          due = (await spool.readState(id, head.envelope))?.nextAttempt ?? 0;
        } catch (error) {
          if (isCorrupt(error)) await spool.quarantine('deferred', id, (error as Error).message);
          else if (!isMissing(error)) this.#queueError(id, error);
          continue;
        }
        this.#deferredDue.set(id, due);
      }
      if (due <= now && this.#owned.size < this.#settings.activeLimit) {
        this.#deferredDue.delete(id);
        takes.push(this.#take(id, 'deferred'));
      } else {
        earliest = Math.min(earliest, Math.max(due, now + 1));
      }
    }
    await Promise.all(takes);
    if (earliest < Infinity) this.#armWake(earliest);
  }

  /** Moves `id` into active/ and queues it for delivery. */
  async #take(id: string, from: 'incoming' | 'deferred'): Promise<void> {
    if (this.#owned.has(id)) return;
    this.#owned.add(id);
    try {
      await this.#deps.spool.move(id, from, 'active');
    } catch (error) {
      this.#owned.delete(id);
      // Gone already (another scan, or `queue` tooling): nothing to do.
      if (!isMissing((error as Error).cause)) this.#queueError(id, error);
      return;
    }
    if (this.#state !== 'running') {
      await this.#deps.spool.move(id, 'active', 'incoming').catch((error: unknown) => this.#queueError(id, error));
      this.#owned.delete(id);
      return;
    }
    this.#ready.push(id);
    this.#pump();
  }

  #pump(): void {
    // Bounded by concurrency.
    while (this.#state === 'running' && this.#running.size < this.#settings.concurrency && this.#ready.length > 0) {
      const id = this.#ready.shift()!;
      const abort = new AbortController();
      const promise = this.#track(
        this.#deliver(id, abort.signal).finally(() => {
          this.#running.delete(id);
          this.#owned.delete(id);
          if (this.#state === 'running' && this.#incomingBacklog && this.#ready.length === 0) void this.#track(this.#scanIncoming());
          this.#pump();
        }),
      );
      this.#running.set(id, { promise, abort });
    }
  }

  /** Counts an operation for whenIdle(); never rejects. */
  #track(operation: Promise<void>): Promise<void> {
    this.#busy += 1;
    return operation
      .catch((error: unknown) => this.#queueError('queue', error))
      .finally(() => {
        this.#busy -= 1;
        if (this.#busy === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
      });
  }

  // --- one delivery attempt of one message ---

  async #deliver(id: string, signal: AbortSignal): Promise<void> {
    const { spool, clock } = this.#deps;
    const settings = this.#settings;
    let head: QueueFileHead;
    try {
      head = await spool.verify('active', id);
    } catch (error) {
      if (isCorrupt(error)) await spool.quarantine('active', id, (error as Error).message);
      else if (!isMissing(error)) this.#queueError(id, error);
      return;
    }
    try {
      const before = (await spool.readState(id, head.envelope)) ?? initialDeliveryState(id, head.envelope);
      const results = await this.#attempt(head, before, signal);
      const now = clock.now();
      const expired = now - head.envelope.arrivalTime >= settings.maximalQueueLifetime;
      const recipients = before.recipients.map((recipient, index): RecipientState => {
        const result = results.get(index);
        if (!result) return recipient;
        let { status, text } = result.outcome;
        if (status === 'deferred' && expired && !signal.aborted) {
          status = 'bounced';
          text = `message expired after maximal_queue_lifetime: ${text}`;
        }
        this.#logRecipient(head, { ...result.outcome, status, text }, result.relay, result.nexthop, now);
        return { address: recipient.address, status, attempts: recipient.attempts + 1, lastError: text, dsn: result.outcome.dsn };
      });
      const attempts = before.attempts + 1;
      const after: DeliveryState = {
        id,
        attempts,
        nextAttempt: now + backoffDelay(attempts, settings.minimalBackoffTime, settings.maximalBackoffTime),
        recipients,
      };
      if (isFinished(after)) {
        // No state write first: a crash before the unlink re-delivers (at-least-once).
        await spool.remove('active', id);
        return;
      }
      if (signal.aborted) {
        // Stopping: keep it in active/ (back to incoming/ at the next start, tried at once).
        if (after.recipients.some((r, i) => r.status !== before.recipients[i]!.status && !isUndelivered(r))) {
          await spool.writeState({ ...after, attempts: before.attempts, nextAttempt: 0 });
        }
        return;
      }
      await spool.writeState(after);
      await spool.move(id, 'active', 'deferred');
      this.#deferredDue.set(id, after.nextAttempt);
      this.#armWake(after.nextAttempt);
    } catch (error) {
      // I/O trouble: try again later from deferred/ with the state last written.
      this.#queueError(id, error);
      const retry = clock.now() + settings.minimalBackoffTime;
      try {
        await spool.move(id, 'active', 'deferred');
        this.#deferredDue.set(id, retry);
        this.#armWake(retry);
      } catch (moveError) {
        this.#queueError(id, moveError);
      }
    }
  }

  /** Tries every undelivered recipient, grouped by nexthop. Returns results by recipient index. */
  async #attempt(
    head: QueueFileHead,
    state: DeliveryState,
    signal: AbortSignal,
  ): Promise<Map<number, { outcome: RecipientResult; relay: string; nexthop: string }>> {
    const settings = this.#settings;
    const groups = new Map<string, { nexthop: Nexthop; indexes: number[] }>();
    state.recipients.forEach((recipient, index) => {
      if (!isUndelivered(recipient)) return;
      const nexthop = resolveNexthop(recipient.address, settings);
      const key = nexthop.kind === 'smtp' ? `smtp ${formatNexthop(nexthop)}` : `${nexthop.kind} ${index}`;
      const group = groups.get(key) ?? { nexthop, indexes: [] };
      group.indexes.push(index);
      groups.set(key, group);
    });

    const results = new Map<number, { outcome: RecipientResult; relay: string; nexthop: string }>();
    // Bounded by the number of recipients.
    for (const { nexthop, indexes } of groups.values()) {
      const label = formatNexthop(nexthop);
      const addresses = indexes.map((index) => state.recipients[index]!.address);
      const record = (outcomes: readonly RecipientResult[], relay: string) =>
        outcomes.forEach((outcome, i) => results.set(indexes[i]!, { outcome, relay, nexthop: label }));
      switch (nexthop.kind) {
        case 'error':
          record(addresses.map((address) => ({ address, status: 'bounced', dsn: leadingDsn(nexthop.text, '5') ?? '5.0.0', text: nexthop.text })), 'none');
          break;
        case 'retry':
          record(addresses.map((address) => ({ address, status: 'deferred', dsn: leadingDsn(nexthop.text, '4') ?? '4.0.0', text: nexthop.text })), 'none');
          break;
        case 'smtp': {
          if (signal.aborted) break;
          const started = performance.now();
          const lookup = await lookupTargets(nexthop, this.#deps.resolver);
          if (lookup.kind === 'failure') {
            const status = lookup.permanent ? 'bounced' : 'deferred';
            record(addresses.map((address) => ({ address, status, dsn: lookup.dsn, text: lookup.text })), 'none');
            break;
          }
          const delivery = await deliverMessage({
            targets: lookup.targets,
            sender: head.envelope.sender,
            recipients: addresses,
            size: head.bodyLength,
            body: () => this.#deps.spool.openBody('active', head),
            helo: settings.myhostname,
            connectTimeout: settings.connectTimeout,
            commandTimeout: settings.commandTimeout,
            ...(head.envelope.dsn ? { dsn: head.envelope.dsn } : {}),
            signal,
          });
          this.#deps.metrics.deliveryLatency.observe((performance.now() - started) / 1000);
          record(delivery.recipients, delivery.relay);
          break;
        }
        default: {
          const never: never = nexthop;
          throw new Error(`unhandled nexthop ${String(never)}`);
        }
      }
    }
    return results;
  }

  #logRecipient(head: QueueFileHead, outcome: RecipientResult, relay: string, nexthop: string, now: number): void {
    const delay = Math.max(0, (now - head.envelope.arrivalTime) / 1000);
    const delayText = delay < 10 ? delay.toFixed(1) : String(Math.round(delay));
    this.#deps.metrics.deliveries.inc({ status: outcome.status, nexthop });
    this.#deps.log.info(
      {
        event: `status=${outcome.status}`,
        queueId: head.id,
        session: head.envelope.sessionId,
        to: outcome.address,
        relay,
        delay,
        dsn: outcome.dsn,
        status: outcome.status,
        reply: outcome.text,
      },
      `${head.id}: to=<${outcome.address}>, relay=${relay}, delay=${delayText}, dsn=${outcome.dsn}, status=${outcome.status} (${outcome.text})`,
    );
  }

  #queueError(id: string, error: unknown): void {
    this.#deps.log.error({ event: 'queue error', queueId: id, err: error }, `${id}: ${(error as Error)?.message ?? String(error)}`);
  }
}

function isCorrupt(error: unknown): boolean {
  return error instanceof MxError && error.code === 'ERR_QUEUE_CORRUPT';
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** An RFC 3463 code at the start of an error:/retry: text, e.g. `5.1.1 no such user`. */
function leadingDsn(text: string, klass: '4' | '5'): string | undefined {
  const code = /^([245]\.\d{1,3}\.\d{1,3})\b/.exec(text)?.[1];
  return code?.startsWith(klass) ? code : undefined;
}
