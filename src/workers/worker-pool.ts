/*
 * worker-pool — the owner's side of mxscreen_workers > 1: forks the workers, hands each
 * connection to one, restarts one that dies, relays counts, reload, stop and metrics.
 *
 * Decides: one child_process.fork of worker-process.js per index (not node:cluster: the
 * owner picks the worker, worker-choice.ts); a socket accepted paused goes with
 * child.send(…, socket, { keepOpen: false }); one whose worker is down waits for the
 * restart (MAX_WAITING per worker, more are closed: the client retries). An exit that was
 * not a stop is `WORKER EXIT` (warn), then a restart (`WORKER START`,
 * mxscreen_worker_restarts_total) after a backoff doubling from 100 ms to 30 s while the
 * worker dies within 10 s of its start. Each worker's counts are summed and the others' sent
 * to every worker, once per event-loop turn. A worker logs to the stdout it shares with
 * the owner, or, when the owner logs to a stream of its own, through a pipe copied into
 * it; /metrics is AggregatorRegistry over every registry. A worker
 * asking for recycled files gets them lent from the owner's spool; those it may not have
 * used when it dies are unlinked (file-pool.ts).
 * Leaves to others: the queue manager (main.ts), what a worker runs (worker-process.ts).
 * A socket counts as being screened from its hand-off until the worker's report has it.
 * Bugs: the others' sums reach a worker one IPC message late. child.send() with a socket is
 * stop-and-wait: Node holds every later message to that worker until the worker acknowledges
 * the socket, so one worker takes one connection per round trip, and a worker whose event loop
 * stalls (a scavenge, a burst) has its connections queue here (mxscreen_worker_handoff_seconds).
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { AggregatorRegistry } from 'prom-client';
import type { DestinationStream } from 'pino';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import type { QueueName } from '../queue/spool.js';
import type { ConnectionCounts } from '../screen/connection-limits.js';
import { chooseWorker, type WorkerChoiceSettings } from './worker-choice.js';
import { peekProxyHeader } from './proxy-peek.js';
import { LEND_TARGET } from '../queue/file-pool.js';
import { isMessage, type MetricsJson, type OwnerMessage, type WorkerArguments, type WorkerMessage } from './worker-messages.js';

const WORKER_ENTRY = fileURLToPath(new URL('./worker-process.js', import.meta.url));
/** Sockets kept for a worker that is down, at most. */
const MAX_WAITING = 1000;
/** A worker that lived this long (ms) after its start restarts at once the next time. */
const HEALTHY_LIFETIME_MS = 10_000;
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 30_000;
/** How long a start, a reload or a metrics request waits for a worker's answer, ms. */
const ANSWER_TIMEOUT_MS = 10_000;
/** After mxscreen_shutdown_timeout, how long a stopping worker gets before SIGKILL, ms. */
const STOP_GRACE_MS = 5_000;
/** Lent file names remembered per worker: twice what a worker holds (file-pool.ts LEND_TARGET). */
const LENT_MEMORY = 2 * LEND_TARGET;

export interface WorkerPoolOptions {
  readonly configFile: string;
  readonly workers: number;
  /** Queue id slots (queue-id.ts): worker i gets slot i + 1, the owner 0. */
  readonly slots: number;
  readonly processMetrics: boolean;
  readonly log: Logger;
  readonly metrics: Metrics;
  /**
   * Where worker log lines go: undefined, the stdout each worker inherits from the owner
   * (log.ts StdoutDestination: whole lines, one write at most PIPE_BUF bytes, so the
   * processes' lines never interleave); a stream (the owner's own, given by a test or an
   * embedder), each worker's stdout is piped to the owner and its lines copied there.
   */
  readonly logDestination: DestinationStream | undefined;
  /** A worker's commit changed a queue's count (owner's spool gauges). */
  readonly counted: (queue: QueueName, delta: 1 | -1) => void;
  /** A worker queued message `id` (the owner's queue manager takes it). */
  readonly queued: (id: string) => void;
  /** A worker accepted ETRN for `domain`. */
  readonly etrn: (domain: string) => void;
  /** Up to `count` recycled files to lend a worker, by name (the owner's spool lendFiles). */
  readonly lendFiles: (count: number) => string[];
  /** A dead worker's lent files it may not have used: unlink what is left (spool reclaimFiles). */
  readonly reclaimFiles: (names: readonly string[]) => void;
  /** How connections are placed (worker-choice.ts); setChoice() replaces it on reload. */
  readonly choice: WorkerChoiceSettings;
}

/** An accepted socket on its way to a worker. */
interface Handoff {
  readonly socket: Socket;
  /** Bytes the owner read from it first (a PROXY header and what followed), to be put back in front. */
  readonly head: Buffer | undefined;
  /** performance.now() at the accept, ms (mxscreen_worker_handoff_seconds). */
  readonly acceptedAt: number;
}

/** One worker index and the process serving it now. */
interface WorkerSlot {
  readonly index: number;
  child: ChildProcess | undefined;
  ready: boolean;
  startedAt: number;
  /** Exits within HEALTHY_LIFETIME_MS of a start, in a row. */
  quickExits: number;
  restartTimer: NodeJS.Timeout | undefined;
  counts: ConnectionCounts;
  /** Sockets sent to this process, and received as its last report says: the difference is on the channel. */
  sent: number;
  received: number;
  readonly waiting: Handoff[];
  /** The files lent to this process most recently (at most LENT_MEMORY; it uses them oldest first, so any unused one is here). */
  lent: string[];
  /** Resolved with the process's exit. */
  exited: Promise<void>;
}

/** Connections a worker has open, in either stage. */
function load(slot: WorkerSlot): number {
  return slot.counts.screening + slot.counts.smtpd + inFlight(slot);
}

/** Sockets sent to the worker that its last report did not count yet (they are about to be screened). */
function inFlight(slot: WorkerSlot): number {
  return slot.sent - slot.received;
}

export class WorkerPool {
  readonly #options: WorkerPoolOptions;
  readonly #slots: WorkerSlot[] = [];
  #stopping = false;
  #nextRequest = 1;
  readonly #answers = new Map<number, { readonly pending: Set<number>; readonly values: Map<number, WorkerMessage>; readonly done: () => void }>();
  #othersQueued = false;
  #choice: WorkerChoiceSettings;
  /** Round-robin start of the least-loaded search. */
  #nextSpread = 0;

  constructor(options: WorkerPoolOptions) {
    this.#options = options;
    this.#choice = options.choice;
    for (let index = 0; index < options.workers; index++) {
      this.#slots.push({ index, child: undefined, ready: false, startedAt: 0, quickExits: 0, restartTimer: undefined, counts: { screening: 0, smtpd: 0 }, sent: 0, received: 0, waiting: [], lent: [], exited: Promise.resolve() });
    }
  }

  /** Reload: connections from now on are placed on `choice`. */
  setChoice(choice: WorkerChoiceSettings): void {
    this.#choice = choice;
  }

  /** Worker process ids by index (undefined while one restarts). */
  get pids(): readonly (number | undefined)[] {
    return this.#slots.map((slot) => (slot.ready ? slot.child?.pid : undefined));
  }

  /**
   * Forks every worker; resolves when all are ready (connections dispatched before wait for
   * their worker). Rejects when one exits or is silent first (the others are stopped).
   */
  async start(): Promise<void> {
    try {
      await Promise.all(this.#slots.map((slot) => this.#fork(slot, false)));
    } catch (error) {
      await this.stop(0);
      throw error;
    }
  }

  /**
   * Hands an accepted (paused) socket to its worker (worker-choice.ts); behind
   * postscreen_upstream_proxy_protocol, after reading its PROXY header (proxy-peek.ts), so
   * the real client's address decides. Never throws.
   */
  dispatch(socket: Socket): void {
    const acceptedAt = performance.now();
    const address = socket.remoteAddress;
    if (this.#stopping || address === undefined) {
      socket.destroy();
      return;
    }
    if (!this.#choice.proxyProtocol) {
      this.#place(address, { socket, head: undefined, acceptedAt });
      return;
    }
    void peekProxyHeader(socket, this.#choice.proxyTimeoutMs).then((peek) => {
      if (!peek) return; // the client hung up
      if (this.#stopping) socket.destroy();
      else this.#place(peek.client ?? address, { socket, head: peek.bytes, acceptedAt });
    });
  }

  /** Sends the socket of client `address` to its worker, or keeps it while that worker is down. */
  #place(address: string, handoff: Handoff): void {
    const choice = chooseWorker(this.#choice, address, this.#slots.length);
    const slot = choice.kind === 'hash' ? this.#slots[choice.worker]! : this.#leastLoaded();
    if (!slot.ready || !slot.child) {
      if (slot.waiting.length >= MAX_WAITING) handoff.socket.destroy();
      else slot.waiting.push(handoff);
      return;
    }
    this.#send(slot, slot.child, handoff);
  }

  /** The ready worker with the fewest connections (as last reported), round-robin among equals; any worker when none is ready. */
  #leastLoaded(): WorkerSlot {
    const count = this.#slots.length;
    const start = this.#nextSpread++ % count;
    let best: WorkerSlot | undefined;
    for (let step = 0; step < count; step++) {
      const slot = this.#slots[(start + step) % count]!;
      if (!slot.ready) continue;
      if (!best || load(slot) < load(best)) best = slot;
    }
    return best ?? this.#slots[start]!;
  }

  /** Tells every running worker to reload; resolves true when each answered that it did. */
  async reload(): Promise<boolean> {
    const answers = await this.#ask((id) => ({ type: 'reload', id }));
    return [...answers.values()].every((answer) => answer.type === 'reloaded' && answer.ok) && answers.size === this.#slots.length;
  }

  /** The Prometheus text of the owner's registry and every running worker's, aggregated. */
  async metricsText(): Promise<string> {
    const answers = await this.#ask((id) => ({ type: 'metrics', id }));
    const all: MetricsJson[] = [await this.#options.metrics.registry.getMetricsAsJSON()];
    for (const answer of answers.values()) if (answer.type === 'metrics') all.push(answer.metrics);
    return AggregatorRegistry.aggregate(all).metrics();
  }

  /**
   * Graceful stop: no new connection, waiting sockets closed, every worker told to finish
   * its sessions within `timeoutMs` and exit (SIGKILL STOP_GRACE_MS later). Resolves when
   * all have exited.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopping = true;
    for (const slot of this.#slots) {
      if (slot.restartTimer) clearTimeout(slot.restartTimer);
      slot.restartTimer = undefined;
      for (const { socket } of slot.waiting.splice(0)) socket.destroy();
      const child = slot.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      const order: OwnerMessage = { type: 'stop', timeoutMs };
      if (child.connected) child.send(order);
      else child.kill('SIGKILL');
      const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs + STOP_GRACE_MS);
      void slot.exited.then(() => clearTimeout(kill));
    }
    await Promise.all(this.#slots.map((slot) => slot.exited));
  }

  /** Starts the process of `slot`; resolves when it is ready. */
  #fork(slot: WorkerSlot, restart: boolean): Promise<void> {
    const options = this.#options;
    const args: WorkerArguments = { configFile: options.configFile, index: slot.index, slot: slot.index + 1, slots: options.slots, processMetrics: options.processMetrics };
    const relayTo = options.logDestination;
    const stdout = relayTo ? 'pipe' : 'inherit';
    const child = fork(WORKER_ENTRY, [JSON.stringify(args)], { stdio: ['ignore', stdout, 'inherit', 'ipc'], execArgv: [], serialization: 'json' });
    slot.child = child;
    slot.ready = false;
    slot.startedAt = Date.now();
    slot.sent = 0;
    slot.received = 0;
    if (restart) options.metrics.workerRestarts.inc();
    if (relayTo) relayLogLines(child.stdout!, relayTo);
    let exited!: () => void;
    slot.exited = new Promise<void>((resolve) => (exited = resolve));
    return new Promise<void>((resolve, reject) => {
      const silent = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`mxscreen worker ${slot.index} not ready within ${ANSWER_TIMEOUT_MS} ms`));
      }, ANSWER_TIMEOUT_MS);
      child.on('message', (message: unknown) => {
        if (!isMessage(message)) return;
        const said = message as WorkerMessage;
        if (said.type === 'ready') {
          clearTimeout(silent);
          slot.ready = true;
          options.log.info({ event: 'WORKER START', worker: slot.index, pid: child.pid, restart }, `worker ${slot.index} started, pid ${child.pid}`);
          for (const handoff of slot.waiting.splice(0)) this.#send(slot, child, handoff);
          resolve();
          return;
        }
        this.#heard(slot, said);
      });
      // An exit, or a spawn that failed (no pid: EACCES when mail_owner cannot execute node,
      // ENOENT, EAGAIN), which emits 'error' and no 'exit'. A failed send is an 'error' too;
      // its exit follows.
      child.on('error', (error) => {
        if (child.pid === undefined) ended(null, null, error.message);
      });
      child.on('exit', (code, signal) => ended(code, signal, undefined));
      const ended = (code: number | null, signal: NodeJS.Signals | null, spawnError: string | undefined) => {
        clearTimeout(silent);
        const wasReady = slot.ready;
        slot.ready = false;
        slot.child = undefined;
        slot.sent = 0;
        slot.received = 0;
        options.reclaimFiles(slot.lent);
        slot.lent = [];
        this.#setCounts(slot, { screening: 0, smtpd: 0 });
        for (const request of this.#answers.values()) {
          request.pending.delete(slot.index);
          if (request.pending.size === 0) request.done();
        }
        exited();
        const how = spawnError !== undefined ? `could not be started: ${spawnError}` : `exited with ${signal ?? `code ${code}`}`;
        if (!wasReady) reject(new Error(`mxscreen worker ${slot.index} ${spawnError !== undefined ? how : `${how} before it was ready`}`));
        if (this.#stopping) return;
        const lived = Date.now() - slot.startedAt;
        slot.quickExits = lived < HEALTHY_LIFETIME_MS ? slot.quickExits + 1 : 0;
        const delay = slot.quickExits === 0 ? 0 : Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (slot.quickExits - 1));
        options.log.warn(
          { event: 'WORKER EXIT', worker: slot.index, pid: child.pid, code, signal, error: spawnError, restartInMs: delay },
          `worker ${slot.index} (pid ${child.pid}) ${how}: its open sessions are lost; restarting in ${delay} ms`,
        );
        slot.restartTimer = setTimeout(() => {
          slot.restartTimer = undefined;
          if (this.#stopping) return;
          this.#fork(slot, true).catch(() => undefined); // its exit schedules the next try
        }, delay);
      };
    });
  }

  /** What a ready worker said. */
  #heard(slot: WorkerSlot, message: WorkerMessage): void {
    switch (message.type) {
      case 'ready':
        return;
      case 'counted':
        this.#options.counted(message.queue, message.delta);
        return;
      case 'queued':
        this.#options.queued(message.id);
        return;
      case 'etrn':
        this.#options.etrn(message.domain);
        return;
      case 'want files': {
        const names = this.#options.lendFiles(Math.min(message.count, LEND_TARGET));
        slot.lent = [...slot.lent, ...names].slice(-LENT_MEMORY);
        if (slot.child?.connected) slot.child.send({ type: 'files', names } satisfies OwnerMessage); // else reclaimed at its exit
        return;
      }
      case 'counts':
        slot.received = message.received;
        this.#setCounts(slot, message.counts);
        return;
      case 'batch':
        for (const each of message.messages) this.#heard(slot, each);
        return;
      case 'reloaded':
      case 'metrics': {
        const request = this.#answers.get(message.id);
        if (!request) return;
        request.values.set(slot.index, message);
        request.pending.delete(slot.index);
        if (request.pending.size === 0) request.done();
        return;
      }
      default: {
        const never: never = message;
        throw new Error(`unhandled worker message ${JSON.stringify(never)}`);
      }
    }
  }

  /** Sends `order` to every ready worker; resolves with the answers (by index) that came within ANSWER_TIMEOUT_MS. */
  #ask(order: (id: number) => OwnerMessage): Promise<Map<number, WorkerMessage>> {
    const id = this.#nextRequest++;
    const values = new Map<number, WorkerMessage>();
    const pending = new Set<number>();
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(), ANSWER_TIMEOUT_MS);
      const done = () => {
        clearTimeout(timer);
        this.#answers.delete(id);
        resolve(values);
      };
      this.#answers.set(id, { pending, values, done });
      for (const slot of this.#slots) {
        if (!slot.ready || !slot.child?.connected) continue;
        pending.add(slot.index);
        slot.child.send(order(id));
      }
      if (pending.size === 0) done();
    });
  }

  /**
   * Writes `socket` on the channel of `child`: at once, or when the child has acknowledged
   * the socket before it (child_process keeps later messages until then); the wait since
   * the accept is mxscreen_worker_handoff_seconds.
   */
  #send(slot: WorkerSlot, child: ChildProcess, { socket, head, acceptedAt }: Handoff): void {
    const message: OwnerMessage = head && head.length > 0 ? { type: 'connection', head: head.toString('base64') } : { type: 'connection' };
    slot.sent += 1;
    try {
      child.send(message, socket, { keepOpen: false }, (error) => {
        if (error) socket.destroy();
        else this.#options.metrics.workerHandoff.observe({ worker: String(slot.index) }, (performance.now() - acceptedAt) / 1000);
      });
    } catch {
      socket.destroy();
    }
  }

  /** A worker's counts changed: every worker gets the others' sums, once per event-loop turn. */
  #setCounts(slot: WorkerSlot, counts: ConnectionCounts): void {
    slot.counts = counts;
    if (this.#othersQueued || this.#slots.length < 2) return;
    this.#othersQueued = true;
    setImmediate(() => {
      this.#othersQueued = false;
      let screening = 0;
      let smtpd = 0;
      for (const each of this.#slots) {
        screening += each.counts.screening + inFlight(each);
        smtpd += each.counts.smtpd;
      }
      for (const each of this.#slots) {
        if (!each.ready || !each.child?.connected) continue;
        const others: OwnerMessage = { type: 'others', counts: { screening: screening - each.counts.screening - inFlight(each), smtpd: smtpd - each.counts.smtpd } };
        each.child.send(others);
      }
    });
  }
}

/**
 * Copies a worker's log lines (its stdout) to the owner's log destination, whole lines
 * only, so that lines of several processes never interleave: one write per chunk read, up
 * to its last newline (the rest waits for the next chunk), not one per line.
 */
function relayLogLines(from: Readable, to: DestinationStream): void {
  let partial = '';
  from.setEncoding('utf8');
  from.on('data', (chunk: string) => {
    const end = chunk.lastIndexOf('\n');
    if (end < 0) {
      partial += chunk;
      return;
    }
    to.write(partial + chunk.slice(0, end + 1));
    partial = chunk.slice(end + 1);
  });
}
