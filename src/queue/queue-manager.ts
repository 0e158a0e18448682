/*
 * queue-manager — schedules delivery of queued mail (Postfix qmgr(8)).
 *
 * Decides: incoming → active → (removed | deferred | hold) moves; at start, active/
 * leftovers go back to incoming/ (crash recovery); a queue run every queue_run_delay and
 * a wake-up at the earliest next attempt take incoming mail and deferred mail that is due.
 * At most `concurrency` messages are delivered at once, `activeLimit` sit in active/;
 * recipients are grouped by nexthop; defer_transports hold mail until flush/ETRN. A message
 * is removed when every recipient is sent or bounced; otherwise notices are queued, its
 * state written durably, and it moves to deferred/ with its backoff. Recipients older than
 * maximal_queue_lifetime (bounce_queue_lifetime from <>) bounce; control waits for attempts.
 * Leaves to others: queue-settings, deferred-schedule, dead-nexthop, sender-notice,
 * delivery-log, control-requests, queue-control, spool (.ts here); nexthop/SMTP (delivery/).
 * Bugs: one QueueManager per queue directory (control/pid tells the CLI, nothing more).
 */
import { watch, type FSWatcher } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock, Timer } from '../clock.js';
import type { DnsResolver } from '../dns/resolver.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import { MxError } from '../errors.js';
import { CONTROL_DIRECTORY, type QueueName, type Spool } from './spool.js';
import type { QueueFileHead } from './queue-file.js';
import type { QueueSettings } from './queue-settings.js';
import { backoffDelay } from './backoff.js';
import { initialDeliveryState, isFinished, isUndelivered, type DeliveryState, type RecipientState } from './delivery-state.js';
import { applyControl, matchesSite, PID_FILE, type ControlCommand, type ControlOwner, type ControlReply, type ControlRequest } from './queue-control.js';
import { formatNexthop, resolveNexthop, type Nexthop } from '../delivery/transport.js';
import { lookupTargets, type DeliveryTarget } from '../delivery/mx-lookup.js';
import { deliverMessage, SmtpSession, type RecipientResult } from '../delivery/smtp-delivery.js';
import { ConnectionCache } from '../delivery/connection-cache.js';
import { DeadNexthops } from './dead-nexthop.js';
import { ControlRequests } from './control-requests.js';
import { buildSchedule, reconcileSchedule, queuedDomains, scheduleEntry, takeDue, type DeferredSchedule } from './deferred-schedule.js';
import { logDelivery } from './delivery-log.js';
import { delayNoticeRecipients, queueSenderNotice } from './sender-notice.js';
import { wantsNotice, type DsnAction, type DsnRecipient } from '../delivery/bounce.js';

export interface QueueManagerDeps {
  readonly spool: Spool;
  readonly resolver: DnsResolver;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
}

type ManagerState = 'new' | 'running' | 'stopping' | 'stopped';
/** What control asked for a message while it sat in active/: applied after its attempt. */
type PendingControl = Exclude<ControlCommand, 'flush' | 'release'>;
/** Why a recipient bounced (the mxscreen_bounces_total label). */
type BounceReason = 'rejected' | 'expired' | 'transport';

interface AttemptResult {
  readonly outcome: RecipientResult;
  readonly relay: string;
  readonly nexthop: string;
  readonly reason: BounceReason;
  /** The server that took it did not announce DSN (a NOTIFY=SUCCESS notice is ours to send). */
  readonly relayedWithoutDsn: boolean;
}

export class QueueManager implements ControlOwner {
  #settings: QueueSettings;
  readonly #deps: QueueManagerDeps;
  #state: ManagerState = 'new';
  /** Ids in active/ owned by this manager: waiting in #ready or being delivered. */
  readonly #owned = new Set<string>();
  readonly #ready: string[] = [];
  readonly #running = new Map<string, { promise: Promise<void>; abort: AbortController }>();
  /** The schedule of deferred/: built at start from state files, kept up to date after. */
  readonly #schedule: DeferredSchedule = new Map();
  /** Deferred ids whose next attempt ignores defer_transports and dead nexthops (flush, ETRN). */
  readonly #flushed = new Set<string>();
  readonly #pendingControl = new Map<string, PendingControl>();
  /** Ids whose attempt has read #pendingControl for the last time: a later command waits for it to end. */
  readonly #closing = new Set<string>();
  readonly #dead: DeadNexthops;
  readonly #connections: ConnectionCache<SmtpSession>;
  #incomingBacklog = false;
  #runTimer: Timer | undefined;
  #wakeTimer: Timer | undefined;
  #wakeAt = Infinity;
  #watcher: FSWatcher | undefined;
  readonly #controlRequests: ControlRequests;
  #busy = 0;
  #idleWaiters: (() => void)[] = [];

  constructor(settings: QueueSettings, deps: QueueManagerDeps) {
    this.#settings = settings;
    this.#deps = deps;
    this.#connections = new ConnectionCache({ clock: deps.clock, idleTime: settings.connectionCacheTime ?? 0 });
    this.#dead = new DeadNexthops(deps);
    this.#controlRequests = new ControlRequests(deps.spool.directory, (request) => this.control(request));
    deps.spool.setMinimumFree(settings.minimumFree ?? 0);
  }

  /** Takes new settings (reload). The queue directory is fixed at construction. */
  setSettings(settings: QueueSettings): void {
    const delayChanged = settings.queueRunDelay !== this.#settings.queueRunDelay;
    this.#settings = { ...settings, directory: this.#settings.directory };
    this.#connections.setIdleTime(settings.connectionCacheTime ?? 0);
    this.#deps.spool.setMinimumFree(settings.minimumFree ?? 0);
    if (delayChanged && this.#state === 'running') this.#armQueueRun();
    this.#pump();
  }

  /**
   * Crash recovery (active/ leftovers back to incoming/), the schedule of deferred/, the
   * control/pid file, then a first queue run and a run every queue_run_delay. Throws
   * MxError ERR_QUEUE_IO when the queue cannot be read.
   */
  async start(): Promise<void> {
    if (this.#state !== 'new') return;
    const { spool, log } = this.#deps;
    try {
      for (const id of await spool.list('active')) await spool.move(id, 'active', 'incoming');
      await buildSchedule(spool, this.#schedule);
      await writeFile(join(spool.directory, CONTROL_DIRECTORY, PID_FILE), `${process.pid}\n`);
    } catch (error) {
      throw error instanceof MxError ? error : new MxError('ERR_QUEUE_IO', `cannot start the queue: ${(error as Error).message}`, { cause: error });
    }
    this.#state = 'running';
    try {
      this.#watcher = watch(join(spool.directory, CONTROL_DIRECTORY), () => this.#serveControl());
      this.#watcher.on('error', () => undefined); // the queue run looks at control/ anyway
    } catch {
      this.#watcher = undefined;
    }
    log.debug({ directory: spool.directory, deferred: this.#schedule.size }, 'queue manager started');
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

  /**
   * Delivers deferred mail now (postqueue -f; with `domain`, postqueue -s / ETRN: only
   * messages with an undelivered recipient in that domain, `@domain` also subdomains),
   * including mail held by defer_transports and mail for nexthops thought dead.
   * Resolves the number of messages scheduled. Never rejects. An SMTP ETRN reaches this
   * only after the policy stage (smtpd.ts) has applied smtpd_etrn_restrictions and
   * fast_flush_domains and answered the client.
   */
  async flush(domain?: string): Promise<number> {
    if (this.#state !== 'running') return 0;
    const site = domain?.trim().toLowerCase() || undefined;
    let count = 0;
    // Bounded by the size of the schedule.
    for (const [id, entry] of this.#schedule) {
      if (site) {
        const domains = entry.domains ?? (await queuedDomains(this.#deps.spool, id));
        if (!domains.some((d) => matchesSite(d, site))) continue;
      }
      entry.due = 0;
      this.#flushed.add(id);
      count += 1;
    }
    if (!site) this.#dead.clear();
    this.#deps.log.info({ event: 'flush', domain: site ?? null, count }, `flush${site ? ` ${site}` : ''}: ${count} deferred messages`);
    void this.#track(this.#scanIncoming());
    void this.#track(this.#scanDeferred());
    return count;
  }

  /** Applies a queue control request (what `mxscreen queue …` sends), as the owner. */
  control(request: ControlRequest): Promise<ControlReply> {
    return applyControl(this.#deps.spool, request, this);
  }

  /** Resolves when nothing is being scanned, moved or delivered (tests, benchmarks). */
  whenIdle(): Promise<void> {
    if (this.#busy === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Deferred messages the schedule knows (tests, benchmarks). */
  get scheduled(): number {
    return this.#schedule.size;
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
    this.#watcher?.close();
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
      this.#connections.closeIdle();
      await unlink(join(this.#deps.spool.directory, CONTROL_DIRECTORY, PID_FILE)).catch(() => undefined);
    }
    this.#state = 'stopped';
  }

  // --- ControlOwner (queue-control.ts) ---

  /** @internal ControlOwner: a command for a message this manager may hold in active/. */
  async claimActive(command: Exclude<ControlCommand, 'flush'>, id: string): Promise<boolean | 'moved'> {
    if (!this.#owned.has(id)) return false;
    if (this.#closing.has(id)) {
      // Too late to change this attempt's ending: act where it leaves the message.
      await this.#running.get(id)?.promise;
      return 'moved';
    }
    const { spool, log } = this.#deps;
    const readyIndex = this.#ready.indexOf(id);
    switch (command) {
      case 'release':
        return false; // in active/ means not on hold
      case 'requeue':
        if (readyIndex >= 0) return true; // about to be delivered anyway
        this.#pendingControl.set(id, 'requeue');
        return true;
      case 'delete':
      case 'hold':
        if (readyIndex >= 0) {
          this.#ready.splice(readyIndex, 1);
          this.#owned.delete(id);
          if (command === 'delete') await spool.remove('active', id);
          else {
            await spool.move(id, 'active', 'hold');
            log.info({ event: 'placed on hold', queueId: id }, `${id}: placed on hold`);
          }
          return true;
        }
        this.#pendingControl.set(id, command);
        if (command === 'delete') this.#running.get(id)?.abort.abort();
        return true;
      default: {
        const never: never = command;
        return never;
      }
    }
  }

  /** @internal ControlOwner: control moved or removed a message outside active/. */
  moved(id: string, to: QueueName | 'removed'): void {
    const { log } = this.#deps;
    switch (to) {
      // Released or requeued by the operator: tried now, even at a nexthop thought dead.
      case 'deferred':
        this.#flushed.add(id);
        this.#schedule.set(id, { due: 0, domains: undefined });
        log.info({ event: 'released from hold', queueId: id }, `${id}: released from hold`);
        void this.#track(this.#scanDeferred());
        break;
      case 'incoming':
        this.#flushed.add(id);
        this.#schedule.delete(id);
        log.info({ event: 'requeued', queueId: id }, `${id}: requeued`);
        this.kick(id);
        break;
      case 'hold':
        this.#schedule.delete(id);
        log.info({ event: 'placed on hold', queueId: id }, `${id}: placed on hold`);
        break;
      case 'removed':
        this.#schedule.delete(id);
        break;
      case 'active':
      case 'corrupt':
        this.#schedule.delete(id);
        break;
      default: {
        const never: never = to;
        throw new Error(`unknown queue ${String(never)}`);
      }
    }
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
    await this.#controlRequests.answer();
    await this.#scanIncoming();
    await this.#scanDeferred(true);
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

  /**
   * Takes what is due from the schedule. With `rescan` (a queue run), first reconciles
   * the schedule with deferred/ (files another process put there or removed).
   */
  async #scanDeferred(rescan = false): Promise<void> {
    if (this.#state !== 'running') return;
    const { spool, clock } = this.#deps;
    if (rescan) {
      let ids: string[];
      try {
        ids = await spool.list('deferred');
      } catch (error) {
        this.#queueError('deferred', error);
        return;
      }
      await reconcileSchedule(spool, this.#schedule, ids, this.#owned);
    }
    const { due, earliest } = takeDue(this.#schedule, clock.now(), this.#owned, this.#settings.activeLimit);
    await Promise.all(due.map((id) => this.#take(id, 'deferred')));
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
      this.#flushed.delete(id);
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
          this.#pendingControl.delete(id);
          this.#closing.delete(id);
          this.#flushed.delete(id);
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

  // --- queue control requests from other processes ---

  #serveControl(): void {
    if (this.#state !== 'running') return;
    void this.#track(this.#controlRequests.answer());
  }

  // --- one delivery attempt of one message ---

  async #deliver(id: string, signal: AbortSignal): Promise<void> {
    const { spool, clock, log } = this.#deps;
    const settings = this.#settings;
    let head: QueueFileHead;
    let body: Buffer | undefined;
    try {
      ({ head, body } = await spool.load('active', id));
    } catch (error) {
      if (isCorrupt(error)) await spool.quarantine('active', id, (error as Error).message);
      else if (!isMissing(error)) this.#queueError(id, error);
      return;
    }
    try {
      const before = (await spool.readState(id, head.envelope)) ?? initialDeliveryState(id, head.envelope);
      const early = this.#pendingControl.get(id);
      if (early === 'delete' || early === 'hold') return await this.#applyPending(id, early);

      const results = await this.#attempt(head, body, before, signal, this.#flushed.has(id));
      const now = clock.now();
      const fromNullSender = head.envelope.sender === '';
      const lifetime = fromNullSender ? (settings.bounceQueueLifetime ?? settings.maximalQueueLifetime) : settings.maximalQueueLifetime;
      const expired = now - head.envelope.arrivalTime >= lifetime;
      const failed: DsnRecipient[] = [];
      const relayed: DsnRecipient[] = [];
      const recipients = before.recipients.map((recipient, index): RecipientState => {
        const result = results.get(index);
        if (!result) return recipient;
        let { status, text } = result.outcome;
        let reason = result.reason;
        if (status === 'deferred' && expired && !signal.aborted) {
          status = 'bounced';
          reason = 'expired';
          text = `message expired after ${fromNullSender ? 'bounce_queue_lifetime' : 'maximal_queue_lifetime'}: ${text}`;
        }
        const queued = head.envelope.recipients[index]!;
        const dsn = status === 'bounced' && !result.outcome.dsn.startsWith('5') ? '5.4.7' : result.outcome.dsn;
        if (status === 'bounced') {
          this.#deps.metrics.bounces.inc({ reason });
          if (!fromNullSender && wantsNotice(queued, 'failed')) failed.push({ address: recipient.address, orcpt: queued.orcpt, status: dsn, text });
        }
        if (status === 'sent' && result.relayedWithoutDsn && !fromNullSender && wantsNotice(queued, 'relayed')) {
          relayed.push({ address: recipient.address, orcpt: queued.orcpt, status: result.outcome.dsn, text: `delivery via ${result.relay}: ${text}` });
        }
        logDelivery(this.#deps, head, { ...result.outcome, status, text, dsn }, result.relay, result.nexthop, now);
        return { address: recipient.address, status, attempts: recipient.attempts + 1, lastError: text, dsn };
      });
      const attempts = before.attempts + 1;
      let after: DeliveryState = {
        id,
        attempts,
        nextAttempt: now + backoffDelay(attempts, settings.minimalBackoffTime, settings.maximalBackoffTime),
        recipients,
        ...(before.delayWarned ? { delayWarned: true } : {}),
      };
      // Notices first: a crash after them and before the state repeats a notice, never loses one.
      if (!signal.aborted) {
        if (failed.length) await this.#notify(head, body, 'failed', failed, now);
        if (relayed.length) await this.#notify(head, body, 'relayed', relayed, now);
        const delayed = delayNoticeRecipients(head, after, now, this.#settings.delayWarningTime ?? 0);
        if (delayed.length) {
          await this.#notify(head, body, 'delayed', delayed, now);
          after = { ...after, delayWarned: true };
        }
      }
      const pending = this.#pendingControl.get(id);
      this.#closing.add(id);
      if (isFinished(after) || pending === 'delete') {
        // No state write first: a crash before the unlink re-delivers (at-least-once).
        await spool.remove('active', id);
        return;
      }
      if (signal.aborted) {
        // Stopping: keep it in active/ (back to incoming/ at the next start, tried at once).
        if (after.recipients.some((r, i) => r.status !== before.recipients[i]!.status && !isUndelivered(r)) || after.delayWarned !== before.delayWarned) {
          await spool.writeState({ ...after, attempts: before.attempts, nextAttempt: 0 });
        }
        return;
      }
      if (pending === 'requeue') {
        await spool.writeState({ ...after, nextAttempt: 0 });
        await spool.move(id, 'active', 'incoming');
        log.info({ event: 'requeued', queueId: id }, `${id}: requeued`);
        this.#incomingBacklog = true;
        return;
      }
      await spool.writeState(after);
      if (pending === 'hold') {
        await spool.move(id, 'active', 'hold');
        log.info({ event: 'placed on hold', queueId: id }, `${id}: placed on hold`);
        return;
      }
      await spool.move(id, 'active', 'deferred');
      this.#schedule.set(id, scheduleEntry(after));
      this.#armWake(after.nextAttempt);
    } catch (error) {
      // I/O trouble: try again later from deferred/ with the state last written.
      this.#closing.add(id);
      this.#queueError(id, error);
      const retry = clock.now() + settings.minimalBackoffTime;
      try {
        await spool.move(id, 'active', 'deferred');
        this.#schedule.set(id, { due: retry, domains: undefined });
        this.#armWake(retry);
      } catch (moveError) {
        if (!isMissing((moveError as Error).cause)) this.#queueError(id, moveError);
      }
    }
  }

  async #applyPending(id: string, pending: 'delete' | 'hold'): Promise<void> {
    if (pending === 'delete') return this.#deps.spool.remove('active', id);
    await this.#deps.spool.move(id, 'active', 'hold');
    this.#deps.log.info({ event: 'placed on hold', queueId: id }, `${id}: placed on hold`);
  }

  /** Queues a notice to the sender of `head` (sender-notice.ts) and schedules its delivery. */
  async #notify(head: QueueFileHead, body: Buffer | undefined, action: DsnAction, recipients: readonly DsnRecipient[], now: number): Promise<void> {
    this.kick(await queueSenderNotice(this.#deps, this.#settings, head, body, action, recipients, now));
  }

  /** Tries every undelivered recipient, grouped by nexthop. Returns results by recipient index. */
  async #attempt(head: QueueFileHead, body: Buffer | undefined, state: DeliveryState, signal: AbortSignal, flushed: boolean): Promise<Map<number, AttemptResult>> {
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

    const results = new Map<number, AttemptResult>();
    // Bounded by the number of recipients.
    for (const { nexthop, indexes } of groups.values()) {
      const label = formatNexthop(nexthop);
      const addresses = indexes.map((index) => state.recipients[index]!.address);
      const record = (outcomes: readonly RecipientResult[], relay: string, reason: BounceReason, relayedWithoutDsn = false) =>
        outcomes.forEach((outcome, i) => results.set(indexes[i]!, { outcome, relay, nexthop: label, reason, relayedWithoutDsn }));
      const everyone = (status: 'bounced' | 'deferred', dsn: string, text: string): RecipientResult[] => addresses.map((address) => ({ address, status, dsn, text }));
      switch (nexthop.kind) {
        case 'error':
          record(everyone('bounced', leadingDsn(nexthop.text, '5') ?? '5.0.0', nexthop.text), 'none', 'transport');
          break;
        case 'retry':
          record(everyone('deferred', leadingDsn(nexthop.text, '4') ?? '4.0.0', nexthop.text), 'none', 'transport');
          break;
        case 'smtp': {
          if (signal.aborted) break;
          if (!flushed && (settings.deferTransports ?? []).includes(nexthop.transport.toLowerCase())) {
            record(everyone('deferred', '4.3.2', 'deferred transport'), 'none', 'transport');
            break;
          }
          const suspended = this.#dead.suspended(label, this.#deps.clock.now());
          if (suspended !== undefined && !flushed) {
            record(everyone('deferred', '4.4.1', `delivery temporarily suspended: ${suspended}`), 'none', 'transport');
            break;
          }
          const started = performance.now();
          const lookup = await this.#targets(nexthop);
          if ('failure' in lookup) {
            record(everyone(lookup.failure.permanent ? 'bounced' : 'deferred', lookup.failure.dsn, lookup.failure.text), 'none', 'transport');
            if (!lookup.failure.permanent) this.#dead.markDead(label, lookup.failure.text, this.#settings.minimalBackoffTime);
            break;
          }
          const delivery = await deliverMessage({
            targets: lookup.targets,
            sender: head.envelope.sender,
            recipients: indexes.map((index) => head.envelope.recipients[index]!),
            size: head.bodyLength,
            body: () => this.#deps.spool.openBody('active', head, body),
            helo: settings.myhostname,
            connectTimeout: settings.connectTimeout,
            commandTimeout: settings.commandTimeout,
            ...(head.envelope.dsn ? { dsn: head.envelope.dsn } : {}),
            signal,
            tlsLevel: settings.tlsLevel ?? 'may',
            cache: { connections: this.#connections, key: label, limit: settings.destinationConcurrencyLimit ?? 20 },
          });
          this.#deps.metrics.deliveryLatency.observe((performance.now() - started) / 1000);
          record(delivery.recipients, delivery.relay, 'rejected', !delivery.dsnSupported);
          if (signal.aborted) break;
          if (delivery.relay === 'none' && delivery.recipients.every((r) => r.status === 'deferred')) this.#dead.markDead(label, delivery.recipients[0]?.text ?? 'no answer', this.#settings.minimalBackoffTime);
          else this.#dead.markUp(label);
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

  /** The targets of every destination of a nexthop list, in order; a failure only when none has any. */
  async #targets(nexthop: Extract<Nexthop, { kind: 'smtp' }>): Promise<{ targets: DeliveryTarget[] } | { failure: { permanent: boolean; dsn: string; text: string } }> {
    const targets: DeliveryTarget[] = [];
    let failure: { permanent: boolean; dsn: string; text: string } | undefined;
    // Bounded by the length of the nexthop list.
    for (const destination of [nexthop, ...(nexthop.also ?? [])]) {
      const lookup = await lookupTargets(destination, this.#deps.resolver);
      if (lookup.kind === 'targets') targets.push(...lookup.targets);
      else if (!failure || (failure.permanent && !lookup.permanent)) failure = lookup; // a temporary failure outweighs a permanent one
    }
    if (targets.length) return { targets };
    return { failure: failure ?? { permanent: false, dsn: '4.4.3', text: 'no delivery target' } };
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
