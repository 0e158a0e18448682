/*
 * worker-process — the entry of one worker process (mxscreen_workers > 1): the screen and
 * policy stages on the sockets the owner hands over.
 *
 * Decides: a worker has its own resolver, registry and session stages (session-stages.ts)
 * on a writer-role spool, which writes and fsyncs each queue file itself before the 250
 * (the durability contract, unchanged) and never delivers or sweeps, and creates a file only
 * when the owner has lent it none to recycle (file-pool.ts); its queue
 * id slot (queue-id.ts); a commit, an ETRN and its connection counts become IPC messages,
 * one batch per event-loop turn (Outbox). It obeys the owner only: SIGINT, SIGTERM, SIGHUP (sent to the whole
 * process group) are ignored; `stop`, or a lost channel (the owner died), finishes the
 * sessions up to the time limit and exits 0. Logs go to stdout (the owner's, shared, or a
 * pipe to it) with `worker: N`.
 * Leaves to others: the owner (worker-pool.ts), each stage's decisions.
 * Bugs: a worker re-reads main.cf after the owner checked it: an edit between the two
 * reads can reach them differently (the next change reloads both).
 */
import type { Socket } from 'node:net';
import { loadConfig } from '../config/config.js';
import { ReloadableResolver } from '../dns/reloadable-resolver.js';
import { ConfigError, formatProblem } from '../errors.js';
import { createLogger, StdoutDestination } from '../ops/log.js';
import { Metrics } from '../ops/metrics.js';
import { Spool } from '../queue/spool.js';
import { setQueueIdSlot } from '../queue/queue-id.js';
import { startSessionStages } from '../session-stages.js';
import { systemClock } from '../clock.js';
import { dnsOptions, stageSettingsFromConfig } from '../main.js';
import { isMessage, type OwnerMessage, type WorkerArguments, type WorkerMessage } from './worker-messages.js';
import type { ConnectionCounts } from '../screen/connection-limits.js';

function send(message: WorkerMessage): void {
  if (process.connected) process.send?.(message);
}

/**
 * What this worker says to the owner, sent once per event-loop turn: the turn's messages
 * as one `batch` (one write on the channel, one wake-up of the owner), in order, and its
 * connection counts last, when they changed (the latest only).
 */
class Outbox {
  #messages: WorkerMessage[] = [];
  #counts: Extract<WorkerMessage, { type: 'counts' }> | undefined;
  #queued = false;

  post(message: WorkerMessage): void {
    this.#messages.push(message);
    this.#schedule();
  }

  /** This worker's connections in each stage and the connections it has received, now. */
  counts(counts: ConnectionCounts, received: number): void {
    this.#counts = { type: 'counts', counts, received };
    this.#schedule();
  }

  #schedule(): void {
    if (this.#queued) return;
    this.#queued = true;
    setImmediate(() => {
      this.#queued = false;
      const messages = this.#messages;
      this.#messages = [];
      if (this.#counts) messages.push(this.#counts);
      this.#counts = undefined;
      if (messages.length > 0) send(messages.length === 1 ? messages[0]! : { type: 'batch', messages });
    });
  }
}

async function runWorker(args: WorkerArguments): Promise<void> {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
  // The owner is gone, and most likely the reader of this process's stdout with it (the
  // pipe to the owner, or the terminal or test harness that read the owner's stdout):
  // log lines are abandoned, or the exit could hang (StdoutDestination). Until the stages run
  // there is nothing to finish, so exit at once. The listener comes before the first
  // await: a 'disconnect' with no listener leaves an orphan that ignores SIGTERM.
  const stdout = new StdoutDestination();
  let ownerGone = (): void => process.exit(0);
  process.on('disconnect', () => {
    stdout.abandon();
    ownerGone();
  });
  setQueueIdSlot(args.slot, args.slots);
  const clock = systemClock;
  let config = loadConfig(args.configFile);
  let settings = stageSettingsFromConfig(config);
  const log = createLogger({ destination: stdout }).child({ worker: args.index });
  const metrics = new Metrics({ processMetrics: args.processMetrics });
  const resolver = new ReloadableResolver(dnsOptions(config));
  const outbox = new Outbox();
  const spool = await Spool.open(settings.queue.directory, {
    log,
    metrics,
    clock,
    role: 'writer',
    counted: (queue, delta) => outbox.post({ type: 'counted', queue, delta }),
    wantFiles: (count) => outbox.post({ type: 'want files', count }),
  });
  spool.setMinimumFree(settings.queue.minimumFree ?? 0);
  let current: ConnectionCounts = { screening: 0, smtpd: 0 };
  let received = 0;
  const reportCounts = (): void => outbox.counts(current, received);
  const stages = startSessionStages(settings, {
    clock,
    log,
    metrics,
    resolver,
    queue: spool,
    queueDirectory: settings.queue.directory,
    onQueued: (id) => outbox.post({ type: 'queued', id }),
    etrn: (domain) => outbox.post({ type: 'etrn', domain }),
    onCounts: (counts) => {
      current = counts;
      reportCounts();
    },
  });
  let stopping: Promise<void> | undefined;
  const stop = (timeoutMs: number): Promise<void> =>
    (stopping ??= (async () => {
      await stages.close(timeoutMs);
      spool.close();
      log.flush();
      // Let the asynchronous stdout destination drain before the process ends.
      await new Promise((resolve) => setTimeout(resolve, 50));
      process.exit(0);
    })());

  process.on('message', (message: unknown, handle: unknown) => {
    if (!isMessage(message)) return;
    const order = message as OwnerMessage;
    switch (order.type) {
      case 'connection': {
        const socket = handle as Socket | undefined;
        if (!socket) return;
        received += 1;
        reportCounts();
        if (stopping) {
          socket.destroy();
          return;
        }
        if (order.head) socket.unshift(Buffer.from(order.head, 'base64')); // before any byte read here
        stages.screen.screen(socket);
        return;
      }
      case 'others':
        stages.screen.setOtherCounts(order.counts);
        return;
      case 'files':
        spool.supplyFiles(order.names);
        return;
      case 'reload': {
        try {
          const next = loadConfig(args.configFile);
          const nextSettings = stageSettingsFromConfig(next);
          resolver.configure(dnsOptions(next));
          stages.setSettings(nextSettings);
          spool.setMinimumFree(nextSettings.queue.minimumFree ?? 0);
          config = next;
          settings = nextSettings;
          log.info({ event: 'RELOAD', config: config.file }, 'configuration reloaded');
          outbox.post({ type: 'reloaded', id: order.id, ok: true });
        } catch (error) {
          const problems = error instanceof ConfigError ? error.problems.map(formatProblem) : [String(error)];
          log.error({ event: 'RELOAD FAILED', problems }, 'reload failed, keeping the running configuration');
          outbox.post({ type: 'reloaded', id: order.id, ok: false });
        }
        return;
      }
      case 'metrics':
        void metrics.registry.getMetricsAsJSON().then((json) => outbox.post({ type: 'metrics', id: order.id, metrics: json }));
        return;
      case 'stop':
        void stop(order.timeoutMs);
        return;
      default: {
        const never: never = order;
        throw new Error(`unhandled owner message ${JSON.stringify(never)}`);
      }
    }
  });
  // From now on the owner's end finishes what runs, then exits (nobody would deliver what is queued now).
  ownerGone = () => void stop(config.get('mxscreen_shutdown_timeout'));
  if (!process.connected) {
    ownerGone();
    return;
  }
  send({ type: 'ready' });
}

const args = JSON.parse(process.argv[2] ?? '{}') as WorkerArguments;
runWorker(args).catch((error: unknown) => {
  process.stderr.write(`mxscreen worker ${args.index}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
