/*
 * main — wiring only: load the configuration and tables, build the stages, listen,
 * reload and stop.
 *
 * Decides: the order in which the stages start and stop (queue first up, last down, so
 * that a message the policy stage said 250 to always has a queue manager behind it); that
 * a reload builds every stage's settings from the new main.cf before any stage takes its
 * part, so a bad configuration changes nothing; the DNS resolver every stage shares, rebuilt
 * when a reload changes mxscreen_dns_servers or postscreen_dnsbl_timeout; that a changed
 * `reload: 'restart'` parameter keeps its old value and is logged (one WARN line each);
 * with mxscreen_workers > 1 this process is the owner (sockets, queue manager, /metrics,
 * reload, signals, the self-listing monitor) and the session stages run in workers
 * (workers/), forked after listen; where `mxscreen start` drops root (checks before the
 * stages start as mail_owner, the drop right after the bind, before the workers fork).
 * Leaves to others: what the stages decide (session-stages.ts, screen/, policy/, queue/,
 * delivery/, workers/, dnsbl/self-listing-monitor.ts); the privilege decisions
 * (ops/privileges.ts).
 * Bugs: an injected resolver or clock (tests) reaches only this process: workers use
 * mxscreen_dns_servers and the system clock; a worker's restart loses its verdict cache.
 */
import { availableParallelism } from 'node:os';
import type { DestinationStream } from 'pino';
import { systemClock, type Clock } from './clock.js';
import { checkConfig, configSources, loadConfig } from './config/config.js';
import { SourceWatcher } from './config/config-watch.js';
import type { Config } from './config/value.js';
import { ConfigError, formatProblem, type ConfigProblem } from './errors.js';
import type { DnsResolver } from './dns/resolver.js';
import type { NodeResolverOptions } from './dns/node-resolver.js';
import { ReloadableResolver } from './dns/reloadable-resolver.js';
import { restartOnlyChanges } from './config/reload-check.js';
import { createLogger, type Logger } from './ops/log.js';
import { Metrics } from './ops/metrics.js';
import { serveMetrics, type MetricsEndpoint } from './ops/http.js';
import { screenStageSettingsFromConfig, type ScreenStageSettings } from './screen/screen-settings.js';
import { SmtpListener } from './screen/listener.js';
import { listenBacklog } from './screen/listen-backlog.js';
import { smtpdClientLimitSettingsFromConfig, type SmtpdClientLimitSettings } from './policy/smtpd-client-limits.js';
import { smtpdSettingsFromConfig, type SmtpdSettings } from './policy/smtpd-settings.js';
import { Spool } from './queue/spool.js';
import { QueueManager } from './queue/queue-manager.js';
import { queueSettingsFromConfig, type QueueSettings } from './queue/queue-settings.js';
import { queueIdSlots, setQueueIdSlot } from './queue/queue-id.js';
import { startSessionStages, type SessionStages } from './session-stages.js';
import { WorkerPool } from './workers/worker-pool.js';
import type { WorkerChoiceSettings } from './workers/worker-choice.js';
import { SelfListingMonitor } from './dnsbl/self-listing-monitor.js';
import { selfListingSettingsFromConfig, type SelfListingSettings } from './dnsbl/self-listing-settings.js';
import { Privileges, type PrivilegeMode } from './ops/privileges.js';

export interface MxscreenOptions {
  /** Path of main.cf. */
  readonly configFile: string;
  /**
   * DNS resolver; default: node:dns against `mxscreen_dns_servers` with the time limit
   * `postscreen_dnsbl_timeout`, rebuilt when a reload changes either. Tests inject one
   * (then a reload does not change it).
   */
  readonly resolver?: DnsResolver;
  readonly clock?: Clock;
  /** Where JSON log lines go; default stdout (log.ts StdoutDestination), which workers share. */
  readonly logDestination?: DestinationStream;
  /** How often main.cf and table files are checked for changes, ms; default 1000. */
  readonly tableCheckIntervalMs?: number;
  /** Also export Node process metrics (CPU, memory, event loop lag); default true. */
  readonly processMetrics?: boolean;
  /**
   * `mxscreen start`: 'mail_owner' drops from root to mail_owner after binding (ops/privileges.ts),
   * 'stay' keeps the starting user. Absent (in-process use, tests): privileges are left alone.
   */
  readonly privileges?: PrivilegeMode;
}

export interface BoundAddress {
  readonly address: string;
  readonly port: number;
}

/** A running mxscreen. */
export interface Mxscreen {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** SMTP addresses actually bound (port 0 in the config gives an ephemeral port). */
  readonly smtp: readonly BoundAddress[];
  /** The /metrics endpoint, when `mxscreen_metrics_listen` is not empty. */
  readonly metricsEndpoint: BoundAddress | undefined;
  readonly queue: QueueManager;
  /** Worker process ids by index (mxscreen_workers > 1; undefined while one restarts); empty with one process. */
  readonly workerPids: readonly (number | undefined)[];
  /** What /metrics serves: this process's registry, or the aggregate over the owner and every worker. */
  metricsText(): Promise<string>;
  /**
   * Re-reads main.cf and every table (SIGHUP). On a configuration error the running
   * configuration stays as it was and the problems are logged (event `RELOAD FAILED`);
   * resolves false in that case, and when a worker (mxscreen_workers > 1) did not answer
   * that it reloaded.
   */
  reload(): Promise<boolean>;
  /**
   * Graceful stop (SIGTERM): stop accepting, let SMTP sessions finish up to
   * `mxscreen_shutdown_timeout`, stop deliveries without losing a queued message.
   */
  stop(): Promise<void>;
}

/** The settings of every stage, built from one configuration. */
export interface StageSettings {
  readonly screen: ScreenStageSettings;
  readonly smtpd: SmtpdSettings;
  /** smtpd's anvil(8) limits, applied at the handover before the session starts. */
  readonly smtpdClientLimits: SmtpdClientLimitSettings;
  readonly queue: QueueSettings;
  /** The self-listing monitor's (mxscreen_self_listing_*); it runs in this process only. */
  readonly selfListing: SelfListingSettings;
}

/**
 * Builds every stage's settings from `config`. Throws ConfigError listing the problems
 * of all stages at once (e.g. a bad postscreen_dnsbl_sites entry, an unreadable TLS key).
 */
export function stageSettingsFromConfig(config: Config): StageSettings {
  const problems: ConfigProblem[] = [];
  function attempt<T>(build: () => T): T | undefined {
    try {
      return build();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.problems);
      return undefined;
    }
  }
  const screen = attempt(() => screenStageSettingsFromConfig(config));
  const smtpd = attempt(() => smtpdSettingsFromConfig(config));
  const queue = attempt(() => queueSettingsFromConfig(config));
  const selfListing = attempt(() => selfListingSettingsFromConfig(config));
  if (!screen || !smtpd || !queue || !selfListing) throw new ConfigError(problems);
  return { screen, smtpd, smtpdClientLimits: smtpdClientLimitSettingsFromConfig(config), queue, selfListing };
}

/**
 * What `mxscreen check-config` reports: every problem in main.cf and its tables, then,
 * when those are clean, every problem the stages find in their settings. Empty = good.
 */
export function checkConfiguration(file: string): ConfigProblem[] {
  const problems = checkConfig(file);
  if (problems.length > 0) return problems;
  try {
    stageSettingsFromConfig(loadConfig(file));
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
}

/** What every stage shares: time, logs, metrics and the DNS resolver. */
interface Shared {
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly resolver: DnsResolver;
}

/**
 * The running stages: the queue (always here), and the session stages either here
 * (mxscreen_workers = 1) or in worker processes.
 */
interface Stages {
  readonly spool: Spool;
  readonly queue: QueueManager;
  /** Are our own addresses listed? (its own DNS path: the dnsbl package on mxscreen_dns_servers) */
  readonly selfListing: SelfListingMonitor;
  readonly sessions: { readonly kind: 'here'; readonly stages: SessionStages } | { readonly kind: 'workers'; readonly pool: WorkerPool };
}

/** mxscreen_workers, 0 (or less) meaning the number of CPUs. */
export function workerCount(config: Config): number {
  const asked = config.get('mxscreen_workers');
  return asked > 0 ? asked : availableParallelism();
}

/** What mxscreen listens on: the SMTP sockets (the screen stage's) and the /metrics endpoint. */
interface Endpoints {
  readonly listener: SmtpListener;
  readonly smtp: BoundAddress[];
  readonly metricsEndpoint: MetricsEndpoint | undefined;
}

/** The resolver's options from `config`: mxscreen_dns_servers, postscreen_dnsbl_timeout. */
export function dnsOptions(config: Config): NodeResolverOptions {
  return { servers: config.get('mxscreen_dns_servers'), timeoutMs: config.get('postscreen_dnsbl_timeout') };
}

/**
 * Starts every stage on the configuration in `options.configFile`.
 * Throws ConfigError (every `file:line: message`) when the configuration is bad, and
 * the listen error (EADDRINUSE, EACCES) when a socket cannot be bound.
 */
export async function startMxscreen(options: MxscreenOptions): Promise<Mxscreen> {
  const config = loadConfig(options.configFile);
  const settings = stageSettingsFromConfig(config);
  const log = createLogger({ destination: options.logDestination });
  const metrics = new Metrics({ processMetrics: options.processMetrics ?? true });
  // node:dns against mxscreen_dns_servers, rebuilt by a reload; an injected one stays.
  const reloadableResolver = options.resolver ? undefined : new ReloadableResolver(dnsOptions(config));
  const resolver: DnsResolver = options.resolver ?? reloadableResolver!;
  const shared: Shared = { clock: options.clock ?? systemClock, log, metrics, resolver };
  const workers = workerCount(config);
  const workerStart = workers === 1 ? undefined : { configFile: options.configFile, workers, processMetrics: options.processMetrics ?? true, logDestination: options.logDestination };
  // --- privileges (ops/privileges.ts): root checks mail_owner and queue_directory first, the
  // stages create their files as mail_owner, the sockets are bound as root, then the drop.
  const privileges = options.privileges && Privileges.prepare(options.privileges, config.get('mail_owner'), settings.queue.directory);
  const stages = privileges ? await privileges.asOwner(() => startStages(settings, shared, workerStart)) : await startStages(settings, shared, workerStart);
  const endpoints = await listen(config, stages, metrics);
  try {
    privileges?.drop(log);
  } catch (error) {
    // Never serve as root after a failed drop: stop what listen() started, as its own error path does.
    await closeEndpoints(endpoints);
    await stopStartedStages(stages);
    throw error;
  }
  // --- end privileges
  // Workers fork once the sockets are bound and privileges are dropped (they inherit the
  // user); connections until then wait for them.
  if (stages.sessions.kind === 'workers') await startWorkers(stages.sessions.pool, stages, endpoints);
  for (const bound of endpoints.smtp) log.info({ event: 'LISTEN', address: bound.address, port: bound.port }, `listening on [${bound.address}]:${bound.port}`);
  const { metricsEndpoint } = endpoints;
  if (metricsEndpoint) log.info({ event: 'LISTEN', address: metricsEndpoint.address, port: metricsEndpoint.port, path: '/metrics' }, `metrics on [${metricsEndpoint.address}]:${metricsEndpoint.port}/metrics`);
  log.info({ event: 'START', config: config.file, queueDirectory: settings.queue.directory }, 'mxscreen started');
  return new RunningMxscreen(options, config, shared, stages, endpoints, reloadableResolver);
}

/** What the owner needs to fork workers (mxscreen_workers > 1). */
interface WorkerStart {
  readonly configFile: string;
  readonly workers: number;
  readonly processMetrics: boolean;
  /** The owner's own log stream, relayed to; undefined: the workers share its stdout. */
  readonly logDestination: DestinationStream | undefined;
}

/**
 * Starts the stages queue first, so that a message the policy stage says 250 to always
 * has a queue manager behind it; then the policy stage and the screen stage handing to it,
 * here or (`workers`) in worker processes that write to the same queue directory.
 */
async function startStages(settings: StageSettings, shared: Shared, workers: WorkerStart | undefined): Promise<Stages> {
  const { clock, log, metrics, resolver } = shared;
  // Queue ids unique across the processes writing the queue directory: the owner has slot 0.
  setQueueIdSlot(0, workers ? queueIdSlots(workers.workers + 1) : 1);
  const spool = await Spool.open(settings.queue.directory, { log, metrics, clock });
  const queue = new QueueManager(settings.queue, { spool, resolver, clock, log, metrics });
  await queue.start();
  const selfListing = new SelfListingMonitor(settings.selfListing, { clock, log, metrics });
  selfListing.start();
  if (!workers) {
    const stages = startSessionStages(settings, {
      clock,
      log,
      metrics,
      resolver,
      queue: spool,
      queueDirectory: settings.queue.directory,
      onQueued: (id) => queue.kick(id),
      etrn: (domain) => void queue.flush(domain),
    });
    return { spool, queue, selfListing, sessions: { kind: 'here', stages } };
  }
  const pool = new WorkerPool({
    configFile: workers.configFile,
    workers: workers.workers,
    slots: queueIdSlots(workers.workers + 1),
    processMetrics: workers.processMetrics,
    log,
    metrics,
    logDestination: workers.logDestination,
    counted: (queueName, delta) => spool.counted(queueName, delta),
    // A worker's commit leaves no state file: the owner's spool need not look for one.
    queued: (id) => {
      spool.committed(id);
      queue.kick(id);
    },
    etrn: (domain) => void queue.flush(domain),
    lendFiles: (count) => spool.lendFiles(count),
    reclaimFiles: (names) => void spool.reclaimFiles(names),
    choice: workerChoiceSettings(settings),
  });
  return { spool, queue, selfListing, sessions: { kind: 'workers', pool } };
}

/** What the owner needs to place a connection (workers/worker-choice.ts). */
function workerChoiceSettings(settings: StageSettings): WorkerChoiceSettings {
  const { screener } = settings.screen;
  return { accessList: screener.accessList, mynetworks: screener.mynetworks, limitExceptions: settings.smtpdClientLimits.exceptions, proxyProtocol: screener.proxyProtocol, proxyTimeoutMs: screener.proxyTimeoutMs };
}

/** Starts the worker processes; on an error closes the endpoints, stops the stages and throws it. */
async function startWorkers(pool: WorkerPool, stages: Stages, endpoints: Endpoints): Promise<void> {
  try {
    await pool.start();
  } catch (error) {
    await closeEndpoints(endpoints);
    await stopStartedStages(stages);
    throw error;
  }
}

/** Closes the SMTP listener and the /metrics endpoint (a start-up that failed after listen()). */
async function closeEndpoints(endpoints: Endpoints): Promise<void> {
  await endpoints.listener.close();
  await endpoints.metricsEndpoint?.close();
}

/**
 * Stops stages that never served a session (start-up failed after they started): the
 * self-listing monitor, the session stages or the workers, the queue, the spool.
 */
async function stopStartedStages(stages: Stages): Promise<void> {
  const { sessions } = stages;
  stages.selfListing.stop();
  if (sessions.kind === 'here') sessions.stages.screen.stop();
  else await sessions.pool.stop(0);
  await stages.queue.stop();
  stages.spool.close();
}

/** The Prometheus text /metrics serves. */
function metricsText(stages: Stages, metrics: Metrics): Promise<string> {
  return stages.sessions.kind === 'workers' ? stages.sessions.pool.metricsText() : metrics.registry.metrics();
}

/** Binds mxscreen_listen and mxscreen_metrics_listen; on an error stops the stages and throws it. */
async function listen(config: Config, stages: Stages, metrics: Metrics): Promise<Endpoints> {
  const { sessions } = stages;
  const backlog = listenBacklog(config.get('mxscreen_listen_backlog'));
  // With workers, a socket is accepted paused: no byte is read here, the worker reads them all.
  const listener =
    sessions.kind === 'here'
      ? new SmtpListener(config.get('mxscreen_listen'), sessions.stages.screen.screen, { backlog })
      : new SmtpListener(config.get('mxscreen_listen'), (socket) => sessions.pool.dispatch(socket), { pauseOnConnect: true, backlog });
  try {
    const smtp = await listener.listen();
    const metricsListen = config.get('mxscreen_metrics_listen');
    const metricsEndpoint = metricsListen ? await serveMetrics(metricsListen, metrics, () => metricsText(stages, metrics)) : undefined;
    return { listener, smtp, metricsEndpoint };
  } catch (error) {
    await listener.close();
    await stopStartedStages(stages);
    throw error;
  }
}

/** A running mxscreen: the stages, their endpoints, and the watch on main.cf and its tables. */
class RunningMxscreen implements Mxscreen {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly smtp: readonly BoundAddress[];
  readonly metricsEndpoint: BoundAddress | undefined;
  readonly queue: QueueManager;
  #config: Config;
  readonly #options: MxscreenOptions;
  readonly #stages: Stages;
  readonly #endpoints: Endpoints;
  readonly #resolver: ReloadableResolver | undefined;
  readonly #watcher: SourceWatcher;
  #stopping: Promise<void> | undefined;

  constructor(options: MxscreenOptions, config: Config, shared: Shared, stages: Stages, endpoints: Endpoints, resolver: ReloadableResolver | undefined) {
    this.#options = options;
    this.#config = config;
    this.log = shared.log;
    this.metrics = shared.metrics;
    this.#stages = stages;
    this.#endpoints = endpoints;
    this.#resolver = resolver;
    this.smtp = endpoints.smtp;
    const { metricsEndpoint } = endpoints;
    this.metricsEndpoint = metricsEndpoint && { address: metricsEndpoint.address, port: metricsEndpoint.port };
    this.queue = stages.queue;
    // main.cf and every table reload when their file changes on disk (and on SIGHUP, cli.ts).
    this.#watcher = new SourceWatcher(configSources(config), {
      clock: shared.clock,
      intervalMs: options.tableCheckIntervalMs ?? 1000,
      onChange: (files) => {
        this.log.info({ event: 'RELOAD', files }, `${files.join(', ')} changed: reloading`);
        void this.reload();
      },
    });
  }

  get config(): Config {
    return this.#config;
  }

  get workerPids(): readonly (number | undefined)[] {
    const { sessions } = this.#stages;
    return sessions.kind === 'workers' ? sessions.pool.pids : [];
  }

  metricsText(): Promise<string> {
    return metricsText(this.#stages, this.metrics);
  }

  async reload(): Promise<boolean> {
    let next: Config;
    let settings: StageSettings;
    try {
      next = loadConfig(this.#options.configFile);
      settings = stageSettingsFromConfig(next);
      this.#resolver?.configure(dnsOptions(next));
    } catch (error) {
      const problems = error instanceof ConfigError ? error.problems.map(formatProblem) : [String(error)];
      this.log.error({ event: 'RELOAD FAILED', problems }, 'reload failed, keeping the running configuration');
      return false;
    }
    for (const name of restartOnlyChanges(this.#config, next)) {
      this.log.warn({ event: 'RELOAD', parameter: name }, `${name} changed: takes effect after a restart`);
    }
    const { sessions, queue, selfListing } = this.#stages;
    queue.setSettings(settings.queue);
    selfListing.setSettings(settings.selfListing);
    this.#config = next;
    this.#watcher.setFiles(configSources(next));
    // Checked here first: a worker gets the reload only when the configuration is good.
    let everyWorker = true;
    if (sessions.kind === 'here') sessions.stages.setSettings(settings);
    else {
      sessions.pool.setChoice(workerChoiceSettings(settings));
      everyWorker = await sessions.pool.reload();
    }
    this.log.info({ event: 'RELOAD', config: next.file }, 'configuration reloaded');
    return everyWorker;
  }

  /** Stops accepting, then the stages in reverse order of their start: screen, policy, queue. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      const { sessions, queue, spool, selfListing } = this.#stages;
      this.#watcher.stop();
      selfListing.stop();
      await this.#endpoints.listener.close();
      const timeoutMs = this.#config.get('mxscreen_shutdown_timeout');
      if (sessions.kind === 'here') await sessions.stages.close(timeoutMs);
      else await sessions.pool.stop(timeoutMs);
      await queue.stop();
      spool.close();
      await this.#endpoints.metricsEndpoint?.close();
      this.log.info({ event: 'STOP' }, 'mxscreen stopped');
    })();
    return this.#stopping;
  }
}
