/*
 * screen-stage — the screen stage as one unit: the screener, its verdict cache with the
 * cache cleanup, and the DNSBL self-test, started, reloaded and stopped together.
 *
 * Decides: what the stage builds from its settings: the verdict cache
 * (mxscreen_verdict_cache_size entries, postscreen_cache_retention_time, and the store of
 * postscreen_cache_map: embedded, or Redis with the embedded cache as its near cache,
 * shared-verdict-cache.ts; all fixed at start, config/reload-check.ts logs a change as
 * taking effect after a restart, and so does this stage for a changed Redis client file;
 * stop() closes the Redis client), the DNSBL health
 * monitor on postscreen_dnsbl_sites (self-tests with the running postscreen_dnsbl_timeout,
 * sites shown through the running postscreen_dnsbl_reply_map), and the cache cleanup every
 * postscreen_cache_cleanup_interval (0 = none; in slices that never block the event loop; a
 * reload that changes the interval starts it over from the reload). A reload gives new
 * connections the new settings and watches the new sites; connections being screened keep
 * theirs.
 * Leaves to others: one connection (screener.ts), reading main.cf (screen-settings.ts), the
 * resolver (main.ts builds and reloads it: policy/ and delivery/ share it), the listening
 * sockets (listener.ts).
 */
import type { Socket } from 'node:net';
import type { Clock, Timer } from '../clock.js';
import type { DnsResolver } from '../dns/resolver.js';
import { dnsblDisplayName } from '../dnsbl/dnsbl-reply-map.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import { DnsblHealth } from './dnsbl-health.js';
import { Screener } from './screener.js';
import type { ScreenStageSettings } from './screen-settings.js';
import { LruVerdictCache, type VerdictCache } from './verdict-cache.js';
import { RedisCacheBackend } from './redis-cache-backend.js';
import { SharedVerdictCache } from './shared-verdict-cache.js';
import type { CacheMap } from './cache-map.js';
import type { ScreenSettings } from './screen-settings.js';
import type { ScreenVerdict } from '../screen-verdict.js';
import type { ConnectionCounts } from './connection-limits.js';

export interface ScreenStageDeps {
  readonly resolver: DnsResolver;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Receives every connection that survives the screen (see ScreenerDeps.handoff). */
  readonly handoff: (socket: Socket, verdict: ScreenVerdict) => void;
  /** This process's connection counts after each change (a worker reports them to the owner). */
  readonly onCounts?: (counts: ConnectionCounts) => void;
}

/** A running screen stage. */
export interface ScreenStage {
  /** Screens one accepted connection (the listener's callback); never throws. */
  readonly screen: (socket: Socket) => void;
  /** Reload: the settings for new connections, the DNSBL sites to self-test, the cleanup interval. */
  setSettings(next: ScreenStageSettings): void;
  /** The other workers' connection counts (mxscreen_workers > 1): the queue limits and stress mode count them. */
  setOtherCounts(counts: ConnectionCounts): void;
  /** Stops the self-tests and the cleanup and closes the Redis client; connections being screened go on. */
  stop(): void;
}

/** Builds the stage on `settings` and starts its self-tests and cache cleanup. */
export function startScreenStage(settings: ScreenStageSettings, deps: ScreenStageDeps): ScreenStage {
  const { resolver, clock, log, metrics } = deps;
  let current = settings;
  const near = new LruVerdictCache({ maxEntries: settings.cache.maxEntries, clock, retentionMs: settings.cache.retentionMs });
  const { map } = settings.cache;
  const shared =
    map.kind === 'redis'
      ? new SharedVerdictCache({
          near,
          backend: new RedisCacheBackend(map.redis, { log, metrics }),
          clock,
          metrics,
          keyFormat: map.redis.keyFormat,
          timeoutMs: map.redis.timeoutMs,
          retentionMs: settings.cache.retentionMs,
          maxLifetimeMs: () => longestLifetimeMs(current.screener),
        })
      : undefined;
  const cache: VerdictCache = shared ?? near;
  const health = new DnsblHealth({
    resolver,
    clock,
    log,
    metrics,
    get timeoutMs() {
      return current.screener.dnsblTimeoutMs;
    },
    displayName: (domain) => dnsblDisplayName(current.screener.dnsblReplyMap, domain),
  });
  health.setSites(settings.screener.dnsblSites);
  health.start();
  const cleanup = new CacheCleanup(near, clock, metrics);
  cleanup.schedule(settings.cache.cleanupIntervalMs);
  const screener = new Screener(settings.screener, { resolver, clock, log, metrics, cache, health, handoff: deps.handoff, onCounts: deps.onCounts });
  return {
    screen: (socket) => screener.screen(socket),
    setSettings(next) {
      const intervalChanged = next.cache.cleanupIntervalMs !== current.cache.cleanupIntervalMs;
      const changedFile = changedClientFile(current.cache.map, next.cache.map);
      if (changedFile !== undefined) log.warn({ event: 'RELOAD', parameter: 'postscreen_cache_map', file: changedFile }, `${changedFile} changed: takes effect after a restart`);
      current = next;
      screener.setSettings(next.screener);
      health.setSites(next.screener.dnsblSites);
      if (intervalChanged) cleanup.schedule(next.cache.cleanupIntervalMs);
    },
    setOtherCounts(counts) {
      screener.limits.setOthers(counts);
    },
    stop() {
      health.stop();
      cleanup.stop();
      void shared?.stop();
    },
  };
}

/** Clock difference between hosts tolerated in a stored expiry, ms. */
const CLOCK_SKEW_MS = 5 * 60_000;

/** The longest any cached test can stay valid under `settings`, ms (plus CLOCK_SKEW_MS): a longer stored expiry is forged. */
function longestLifetimeMs(settings: ScreenSettings): number {
  return Math.max(settings.greetTtlMs, settings.dnsblMaxTtlMs, settings.dnsblMinTtlMs, ...Object.values(settings.deepTtlMs)) + CLOCK_SKEW_MS;
}

/** The Redis client file when the same file now says something else (a change of the parameter itself is reload-check's); else undefined. */
function changedClientFile(running: CacheMap, next: CacheMap): string | undefined {
  if (running.kind !== 'redis' || next.kind !== 'redis' || running.redis.file !== next.redis.file) return undefined;
  return JSON.stringify(running.redis) === JSON.stringify(next.redis) ? undefined : next.redis.file;
}

/** postscreen_cache_cleanup_interval: one cleanup at a time, the next one an interval after it ends. */
class CacheCleanup {
  #timer: Timer | undefined;
  #intervalMs = 0;

  constructor(
    private readonly cache: LruVerdictCache,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
  ) {}

  /** Runs the cleanup every `intervalMs` from now on (0: never), replacing the schedule. */
  schedule(intervalMs: number): void {
    this.#intervalMs = intervalMs;
    this.#arm();
  }

  /** No more cleanups (one running finishes and is not followed by another). */
  stop(): void {
    this.schedule(0);
  }

  /** The next cleanup one interval from now; a cleanup that ends re-arms it with the interval of the time. */
  #arm(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    if (this.#intervalMs <= 0) return;
    this.#timer = this.clock.setTimer(this.#intervalMs, () => {
      this.#timer = undefined;
      void this.cache.cleanup().then(({ kept }) => {
        this.metrics.cacheEntries.set(kept);
        this.#arm();
      });
    });
  }
}
