/*
 * main — wiring only: load the configuration and tables, build the stages, listen,
 * reload and stop.
 *
 * Decides: the order in which the stages start and stop (queue first up, last down, so
 * that a message the policy stage said 250 to always has a queue manager behind it) and
 * what a reload may change: settings and tables of every stage, the DNS servers and time
 * limit (mxscreen_dns_servers, postscreen_dnsbl_timeout), the cache cleanup interval;
 * a changed parameter marked `reload: 'restart'` in the catalogue (listen addresses,
 * queue directory, verdict cache size and retention) keeps its old value and is logged,
 * one WARN line each, as taking effect after a restart.
 * Leaves to others: everything the stages decide (screen/, policy/, queue/, delivery/).
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
import { Screener } from './screen/screener.js';
import { screenSettingsFromConfig, type ScreenSettings } from './screen/screen-settings.js';
import { dnsblDisplayName } from './dnsbl/dnsbl-reply-map.js';
import { DnsblHealth } from './screen/dnsbl-health.js';
import { SmtpListener } from './screen/listener.js';
import { LruVerdictCache } from './screen/verdict-cache.js';
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
  readonly screen: ScreenSettings;
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
  const screen = attempt(() => screenSettingsFromConfig(config));
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

/**
 * Starts every stage on the configuration in `options.configFile`.
 * Throws ConfigError (every `file:line: message`) when the configuration is bad, and
 * the listen error (EADDRINUSE, EACCES) when a socket cannot be bound.
 */
export async function startMxscreen(options: MxscreenOptions): Promise<Mxscreen> {
  let config = loadConfig(options.configFile);
  const settings = stageSettingsFromConfig(config);
  const clock = options.clock ?? systemClock;
  const log = createLogger({ destination: options.logDestination });
  const metrics = new Metrics({ processMetrics: options.processMetrics ?? true });
  const dnsOptions = (from: Config): NodeResolverOptions => ({ servers: from.get('mxscreen_dns_servers'), timeoutMs: from.get('postscreen_dnsbl_timeout') });
  let reloadableResolver: ReloadableResolver | undefined;
  const resolver: DnsResolver = options.resolver ?? (reloadableResolver = new ReloadableResolver(dnsOptions(config)));

  const queueSettings = settings.queue;
  const spool = await Spool.open(queueSettings.directory, { log, metrics, clock });
  const queue = new QueueManager(queueSettings, { spool, resolver, clock, log, metrics });
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
    verifyCacheDirectory: queueSettings.directory,
  });
  const clientLimits = new SmtpdClientLimits(settings.smtpdClientLimits, { clock, log, metrics });
  const cache = new LruVerdictCache({ maxEntries: config.get('mxscreen_verdict_cache_size'), clock, retentionMs: config.get('postscreen_cache_retention_time') });
  let screenSettings = settings.screen;
  const health = new DnsblHealth({
    resolver,
    clock,
    log,
    metrics,
    // postscreen_dnsbl_timeout as the last reload left it.
    get timeoutMs() {
      return screenSettings.dnsblTimeoutMs;
    },
    displayName: (domain) => dnsblDisplayName(screenSettings.dnsblReplyMap, domain),
  });
  health.setSites(screenSettings.dnsblSites);
  health.start();
  // postscreen_cache_cleanup_interval: the cleanup runs in slices, never blocking the event
  // loop. A reload that changes the interval starts it over from the reload.
  let cleanupTimer: { cancel(): void } | undefined;
  const scheduleCleanup = () => {
    cleanupTimer?.cancel();
    cleanupTimer = undefined;
    const interval = config.get('postscreen_cache_cleanup_interval');
    if (interval <= 0) return;
    cleanupTimer = clock.setTimer(interval, () => {
      cleanupTimer = undefined;
      void cache.cleanup().then(({ kept }) => {
        metrics.cacheEntries.set(kept);
        scheduleCleanup();
      });
    });
  };
  scheduleCleanup();
  const screener = new Screener(settings.screen, {
    resolver,
    clock,
    log,
    metrics,
    cache,
    health,
    // smtpd(8): the anvil limits first (421 instead of the 220), then the session.
    handoff: (socket, verdict) => clientLimits.gate(socket, verdict, () => smtpd.accept(socket, verdict)),
  });
  const listener = new SmtpListener(config.get('mxscreen_listen'), (socket) => screener.screen(socket));

  let smtp: BoundAddress[];
  let metricsEndpoint: MetricsEndpoint | undefined;
  try {
    smtp = await listener.listen();
    const metricsListen = config.get('mxscreen_metrics_listen');
    metricsEndpoint = metricsListen ? await serveMetrics(metricsListen, metrics) : undefined;
  } catch (error) {
    await listener.close();
    await queue.stop();
    spool.close();
    throw error;
  }
  for (const bound of smtp) log.info({ event: 'LISTEN', address: bound.address, port: bound.port }, `listening on [${bound.address}]:${bound.port}`);
  if (metricsEndpoint) log.info({ event: 'LISTEN', address: metricsEndpoint.address, port: metricsEndpoint.port, path: '/metrics' }, `metrics on [${metricsEndpoint.address}]:${metricsEndpoint.port}/metrics`);
  log.info({ event: 'START', config: config.file, queueDirectory: queueSettings.directory }, 'mxscreen started');

  let stopping: Promise<void> | undefined;
  let watcher: SourceWatcher | undefined;
  const running: Mxscreen = {
    get config() {
      return config;
    },
    log,
    metrics,
    smtp,
    metricsEndpoint: metricsEndpoint && { address: metricsEndpoint.address, port: metricsEndpoint.port },
    queue,
    async reload() {
      let next: Config;
      let nextSettings: StageSettings;
      try {
        next = loadConfig(options.configFile);
        nextSettings = stageSettingsFromConfig(next);
        reloadableResolver?.configure(dnsOptions(next));
      } catch (error) {
        const problems = error instanceof ConfigError ? error.problems.map(formatProblem) : [String(error)];
        log.error({ event: 'RELOAD FAILED', problems }, 'reload failed, keeping the running configuration');
        return false;
      }
      for (const name of restartOnlyChanges(config, next)) {
        log.warn({ event: 'RELOAD', parameter: name }, `${name} changed: takes effect after a restart`);
      }
      screener.setSettings(nextSettings.screen);
      screenSettings = nextSettings.screen;
      health.setSites(nextSettings.screen.dnsblSites);
      smtpd.setSettings(nextSettings.smtpd);
      clientLimits.setSettings(nextSettings.smtpdClientLimits);
      queue.setSettings(nextSettings.queue);
      const cleanupChanged = next.get('postscreen_cache_cleanup_interval') !== config.get('postscreen_cache_cleanup_interval');
      config = next;
      if (cleanupChanged) scheduleCleanup();
      watcher?.setFiles(configSources(next));
      log.info({ event: 'RELOAD', config: next.file }, 'configuration reloaded');
      return true;
    },
    stop() {
      stopping ??= (async () => {
        watcher?.stop();
        await listener.close();
        health.stop();
        cleanupTimer?.cancel();
        await smtpd.close(config.get('mxscreen_shutdown_timeout'));
        await queue.stop();
        spool.close();
        await metricsEndpoint?.close();
        log.info({ event: 'STOP' }, 'mxscreen stopped');
      })();
      return stopping;
    },
  };
  // main.cf and every table reload when their file changes on disk (and on SIGHUP, cli.ts).
  watcher = new SourceWatcher(configSources(config), {
    clock,
    intervalMs: options.tableCheckIntervalMs ?? 1000,
    onChange: (files) => {
      log.info({ event: 'RELOAD', files }, `${files.join(', ')} changed: reloading`);
      void running.reload();
    },
  });
  return running;
}
