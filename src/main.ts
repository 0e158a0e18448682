/*
 * main — wiring only: load the configuration and tables, build the stages, listen,
 * reload and stop.
 *
 * Decides: the order in which the stages start and stop (queue first up, last down, so
 * that a message the policy stage said 250 to always has a queue manager behind it); that
 * a reload builds every stage's settings from the new main.cf before any stage takes its
 * part, so a bad configuration changes nothing; the DNS resolver every stage shares, rebuilt
 * when a reload changes mxscreen_dns_servers or postscreen_dnsbl_timeout; that a changed
 * parameter marked `reload: 'restart'` in the catalogue (listen addresses, queue directory,
 * verdict cache size and retention) keeps its old value and is logged, one WARN line each,
 * as taking effect after a restart.
 * Leaves to others: everything the stages decide and own (screen/screen-stage.ts with its
 * cache cleanup and DNSBL self-test, policy/, queue/, delivery/).
 * Bugs: one process runs all stages; README "Design", More than one core, is a later step.
 */
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
import { startScreenStage, type ScreenStage } from './screen/screen-stage.js';
import { SmtpListener } from './screen/listener.js';
import { listenBacklog } from './screen/listen-backlog.js';
import { Smtpd } from './policy/smtpd.js';
import { SmtpdClientLimits, smtpdClientLimitSettingsFromConfig, type SmtpdClientLimitSettings } from './policy/smtpd-client-limits.js';
import { smtpdSettingsFromConfig, type SmtpdSettings } from './policy/smtpd-settings.js';
import { Spool } from './queue/spool.js';
import { QueueManager } from './queue/queue-manager.js';
import { queueSettingsFromConfig, type QueueSettings } from './queue/queue-settings.js';

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
  /** Where JSON log lines go; default stdout. */
  readonly logDestination?: DestinationStream;
  /** How often main.cf and table files are checked for changes, ms; default 1000. */
  readonly tableCheckIntervalMs?: number;
  /** Also export Node process metrics (CPU, memory, event loop lag); default true. */
  readonly processMetrics?: boolean;
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
  /**
   * Re-reads main.cf and every table (SIGHUP). On a configuration error the running
   * configuration stays as it was and the problems are logged (event `RELOAD FAILED`);
   * resolves false in that case.
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
  if (!screen || !smtpd || !queue) throw new ConfigError(problems);
  return { screen, smtpd, smtpdClientLimits: smtpdClientLimitSettingsFromConfig(config), queue };
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

/** The running stages. */
interface Stages {
  readonly spool: Spool;
  readonly queue: QueueManager;
  readonly smtpd: Smtpd;
  readonly clientLimits: SmtpdClientLimits;
  readonly screen: ScreenStage;
}

/** What mxscreen listens on: the SMTP sockets (the screen stage's) and the /metrics endpoint. */
interface Endpoints {
  readonly listener: SmtpListener;
  readonly smtp: BoundAddress[];
  readonly metricsEndpoint: MetricsEndpoint | undefined;
}

/** The resolver's options from `config`: mxscreen_dns_servers, postscreen_dnsbl_timeout. */
function dnsOptions(config: Config): NodeResolverOptions {
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
  const stages = await startStages(settings, shared);
  const endpoints = await listen(config, stages, metrics);
  for (const bound of endpoints.smtp) log.info({ event: 'LISTEN', address: bound.address, port: bound.port }, `listening on [${bound.address}]:${bound.port}`);
  const { metricsEndpoint } = endpoints;
  if (metricsEndpoint) log.info({ event: 'LISTEN', address: metricsEndpoint.address, port: metricsEndpoint.port, path: '/metrics' }, `metrics on [${metricsEndpoint.address}]:${metricsEndpoint.port}/metrics`);
  log.info({ event: 'START', config: config.file, queueDirectory: settings.queue.directory }, 'mxscreen started');
  return new RunningMxscreen(options, config, shared, stages, endpoints, reloadableResolver);
}

/**
 * Starts the stages queue first, so that a message the policy stage says 250 to always
 * has a queue manager behind it; then the policy stage and the screen stage handing to it.
 */
async function startStages(settings: StageSettings, shared: Shared): Promise<Stages> {
  const { clock, log, metrics, resolver } = shared;
  const spool = await Spool.open(settings.queue.directory, { log, metrics, clock });
  const queue = new QueueManager(settings.queue, { spool, resolver, clock, log, metrics });
  await queue.start();
  const smtpd = new Smtpd(settings.smtpd, {
    queue: spool,
    clock,
    log,
    metrics,
    onQueued: (id) => queue.kick(id),
    // ETRN that passed smtpd_etrn_restrictions and fast_flush_domains: deliver that domain's mail now.
    etrn: (domain) => void queue.flush(domain),
    resolver,
    verifyCacheDirectory: settings.queue.directory,
  });
  const clientLimits = new SmtpdClientLimits(settings.smtpdClientLimits, { clock, log, metrics });
  const screen = startScreenStage(settings.screen, {
    resolver,
    clock,
    log,
    metrics,
    // smtpd(8): the anvil limits first (421 instead of the 220), then the session.
    handoff: (socket, verdict) => clientLimits.gate(socket, verdict, () => smtpd.accept(socket, verdict)),
  });
  return { spool, queue, smtpd, clientLimits, screen };
}

/** Binds mxscreen_listen and mxscreen_metrics_listen; on an error stops the stages and throws it. */
async function listen(config: Config, stages: Stages, metrics: Metrics): Promise<Endpoints> {
  const listener = new SmtpListener(config.get('mxscreen_listen'), stages.screen.screen, { backlog: listenBacklog(config.get('mxscreen_listen_backlog')) });
  try {
    const smtp = await listener.listen();
    const metricsListen = config.get('mxscreen_metrics_listen');
    const metricsEndpoint = metricsListen ? await serveMetrics(metricsListen, metrics) : undefined;
    return { listener, smtp, metricsEndpoint };
  } catch (error) {
    await listener.close();
    stages.screen.stop();
    await stages.queue.stop();
    stages.spool.close();
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
    const { screen, smtpd, clientLimits, queue } = this.#stages;
    screen.setSettings(settings.screen);
    smtpd.setSettings(settings.smtpd);
    clientLimits.setSettings(settings.smtpdClientLimits);
    queue.setSettings(settings.queue);
    this.#config = next;
    this.#watcher.setFiles(configSources(next));
    this.log.info({ event: 'RELOAD', config: next.file }, 'configuration reloaded');
    return true;
  }

  /** Stops accepting, then the stages in reverse order of their start: screen, policy, queue. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      const { screen, smtpd, queue, spool } = this.#stages;
      this.#watcher.stop();
      await this.#endpoints.listener.close();
      screen.stop();
      await smtpd.close(this.#config.get('mxscreen_shutdown_timeout'));
      await queue.stop();
      spool.close();
      await this.#endpoints.metricsEndpoint?.close();
      this.log.info({ event: 'STOP' }, 'mxscreen stopped');
    })();
    return this.#stopping;
  }
}
