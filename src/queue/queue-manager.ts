/*
 * queue-manager — schedules delivery of queued mail (Postfix qmgr(8)).
 *
 * Decides: incoming → active → (removed | deferred | hold) moves; at start, active/
 * leftovers go back to incoming/ (crash recovery); a queue run every queue_run_delay and
 * a wake-up at the earliest next attempt take incoming mail and deferred mail that is due.
 * At most `concurrency` messages are delivered at once, `activeLimit` sit in active/.
 * An attempt hands a message's undelivered recipients to the delivery agent (one call,
 * delivery-request.ts; a flush lets it past defer_transports and dead nexthops), then
 * applies what delivery-outcome.ts makes of the results: log lines and counts, notices
 * queued before the state that records them, then the state written and the message
 * removed, requeued, held or deferred with its backoff. Control waits for attempts.
 * Leaves to others: queue-settings, deferred-schedule, delivery-outcome, sender-notice,
 * delivery-log, control-requests, queue-control, spool (.ts here); nexthops, MX targets,
 * connections and SMTP (the delivery agent, delivery/delivery-agent.ts).
 * Bugs: one QueueManager per queue directory (control/pid tells the CLI, nothing more).
 */
import { watch, type FSWatcher } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock, Timer } from '../clock.js';
import type { DnsResolver } from '../dns/resolver.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import { hasErrno, MxError, type SmtpReply } from '../errors.js';
import type { DeliveryAgent, OutboundMessage, RecipientDelivery } from '../delivery-request.js';
import { SmtpDeliveryAgent } from '../delivery/delivery-agent.js';
import { CONTROL_DIRECTORY, type QueueName, type Spool } from './spool.js';
import type { LoadedQueueFile, QueueFileHead } from './queue-file.js';
import type { QueueSettings } from './queue-settings.js';
import { initialDeliveryState, isUndelivered, type DeliveryState } from './delivery-state.js';
import { applyControl, matchesSite, PID_FILE, type ControlCommand, type ControlOwner, type ControlReply, type ControlRequest } from './queue-control.js';
import { ControlRequests } from './control-requests.js';
import { buildSchedule, reconcileSchedule, queuedDomains, scheduleEntry, takeDue, type DeferredSchedule } from './deferred-schedule.js';
import { attemptEnding, deliveryOutcome, type AttemptEnding, type DeliveryOutcome, type PendingControl } from './delivery-outcome.js';
import { logDelivery } from './delivery-log.js';
import { queueSenderNotice } from './sender-notice.js';

export interface QueueManagerDeps {
  readonly spool: Spool;
  /** For the delivery agent's MX and address lookups. */
  readonly resolver: DnsResolver;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
}

type ManagerState = 'new' | 'running' | 'stopping' | 'stopped';

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
  readonly #agent: DeliveryAgent;
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
    this.#agent = new SmtpDeliveryAgent(settings, deps);
    this.#controlRequests = new ControlRequests(deps.spool.directory, (request) => this.control(request));
    deps.spool.setMinimumFree(settings.minimumFree ?? 0);
  }

  /** Takes new settings (reload). The queue directory is fixed at construction. */
  setSettings(settings: QueueSettings): void {
    const delayChanged = settings.queueRunDelay !== this.#settings.queueRunDelay;
    this.#settings = { ...settings, directory: this.#settings.directory };
    this.#agent.setSettings(this.#settings);
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
    if (!site) this.#agent.forgetDeadNexthops();
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
      this.#agent.closeIdle();
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
    const { spool } = this.#deps;
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
          else await this.#hold(id);
          return true;
        }
        this.#pendingControl.set(id, command);
        if (command === 'delete') this.#running.get(id)?.abort.abort();
        return true;
      default: {
        const never: never = command;
        throw new Error(`unhandled control command ${String(never)}`);
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
      if (!hasErrno(error, 'ENOENT')) this.#queueError(id, error);
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
    const loaded = await this.#load(id);
    if (!loaded) return;
    const { head, body } = loaded;
    try {
      const before = (await this.#deps.spool.readState(id, head.envelope)) ?? initialDeliveryState(id, head.envelope);
      const early = this.#pendingControl.get(id);
      if (early === 'delete' || early === 'hold') return await this.#applyPending(id, early);
      const results = await this.#attempt(head, body, before, signal);
      const now = this.#deps.clock.now();
      const outcome = deliveryOutcome({ head, state: before, results, now, aborted: signal.aborted }, this.#settings);
      await this.#report(head, body, outcome, now);
      const ending = attemptEnding(before, outcome.state, this.#pendingControl.get(id), signal.aborted);
      this.#closing.add(id);
      await this.#end(id, ending);
    } catch (error) {
      await this.#retryLater(id, error);
    }
  }

  /** The queue file `id` in active/; undefined when it is corrupt (moved to corrupt/) or gone. */
  async #load(id: string): Promise<LoadedQueueFile | undefined> {
    const { spool } = this.#deps;
    try {
      return await spool.load('active', id);
    } catch (error) {
      if (isCorrupt(error)) await spool.quarantine('active', id, (error as Error).message);
      else if (!hasErrno(error, 'ENOENT')) this.#queueError(id, error);
      return undefined;
    }
  }

  /** Tries every undelivered recipient through the delivery agent. Returns results by envelope index. */
  async #attempt(head: QueueFileHead, body: Buffer | undefined, state: DeliveryState, signal: AbortSignal): Promise<Map<number, RecipientDelivery>> {
    const indexes = state.recipients.flatMap((recipient, index) => (isUndelivered(recipient) ? [index] : []));
    const message: OutboundMessage = {
      sender: head.envelope.sender,
      ...(head.envelope.dsn ? { dsn: head.envelope.dsn } : {}),
      size: head.bodyLength,
      body: () => this.#deps.spool.openBody('active', head, body),
      flushed: this.#flushed.has(head.id),
    };
    const results = await this.#agent.deliver(message, indexes.map((index) => head.envelope.recipients[index]!), signal);
    return new Map([...results].map(([position, result]) => [indexes[position]!, result]));
  }

  /** Counts and logs an attempt's outcome, then queues its notices to the sender (sender-notice.ts). */
  async #report(head: QueueFileHead, body: Buffer | undefined, outcome: DeliveryOutcome, now: number): Promise<void> {
    for (const reason of outcome.bounces) this.#deps.metrics.bounces.inc({ reason });
    for (const line of outcome.logLines) logDelivery(this.#deps, line);
    for (const { action, recipients } of outcome.notices) {
      this.kick(await queueSenderNotice(this.#deps, this.#settings, head, body, action, recipients, now));
    }
  }

  /** Writes the state and moves the message as its attempt's ending says. */
  async #end(id: string, ending: AttemptEnding): Promise<void> {
    const { spool, log } = this.#deps;
    switch (ending.kind) {
      case 'remove':
        return spool.remove('active', id);
      case 'keep':
        if (ending.state) await spool.writeState(ending.state);
        return;
      case 'requeue':
        await spool.writeState(ending.state);
        await spool.move(id, 'active', 'incoming');
        log.info({ event: 'requeued', queueId: id }, `${id}: requeued`);
        this.#incomingBacklog = true;
        return;
      case 'hold':
        await spool.writeState(ending.state);
        return this.#hold(id);
      case 'defer':
        await spool.writeState(ending.state);
        await spool.move(id, 'active', 'deferred');
        this.#schedule.set(id, scheduleEntry(ending.state));
        this.#armWake(ending.state.nextAttempt);
        return;
      default: {
        const never: never = ending;
        throw new Error(`unhandled attempt ending ${String(never)}`);
      }
    }
  }

  /** I/O trouble during an attempt: try again later from deferred/ with the state last written. */
  async #retryLater(id: string, error: unknown): Promise<void> {
    this.#closing.add(id);
    this.#queueError(id, error);
    const retry = this.#deps.clock.now() + this.#settings.minimalBackoffTime;
    try {
      await this.#deps.spool.move(id, 'active', 'deferred');
      this.#schedule.set(id, { due: retry, domains: undefined });
      this.#armWake(retry);
    } catch (moveError) {
      if (!hasErrno(moveError, 'ENOENT')) this.#queueError(id, moveError);
    }
  }

  async #applyPending(id: string, pending: 'delete' | 'hold'): Promise<void> {
    if (pending === 'delete') return this.#deps.spool.remove('active', id);
    return this.#hold(id);
  }

  /** Moves `id` from active/ to hold/ and logs it. */
  async #hold(id: string): Promise<void> {
    await this.#deps.spool.move(id, 'active', 'hold');
    this.#deps.log.info({ event: 'placed on hold', queueId: id }, `${id}: placed on hold`);
  }

  #queueError(id: string, error: unknown): void {
    this.#deps.log.error({ event: 'queue error', queueId: id, err: error }, `${id}: ${(error as Error)?.message ?? String(error)}`);
  }
}

function isCorrupt(error: unknown): boolean {
  return error instanceof MxError && error.code === 'ERR_QUEUE_CORRUPT';
}
