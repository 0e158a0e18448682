/*
 * session-stages — the stages that serve SMTP sessions, screen then policy, built on a
 * queue writer: what the single process (main.ts) and each worker process
 * (workers/worker-process.ts) run alike.
 *
 * Decides: the wiring of one connection: the screen stage hands a survivor to smtpd's
 * anvil limits (421 instead of the 220), then to the SMTP session; a queued message and an
 * accepted ETRN go to the hooks (the queue manager in the same process, or an IPC message
 * to the owner); a reload gives all three their new settings together.
 * Leaves to others: the queue manager and its spool (main.ts, the owner), the listening
 * sockets (screen/listener.ts), each stage's own decisions.
 */
import type { Clock } from './clock.js';
import type { DnsResolver } from './dns/resolver.js';
import type { Logger } from './ops/log.js';
import type { Metrics } from './ops/metrics.js';
import { Smtpd } from './policy/smtpd.js';
import { SmtpdClientLimits, type SmtpdClientLimitSettings } from './policy/smtpd-client-limits.js';
import type { SmtpdSettings } from './policy/smtpd-settings.js';
import type { QueueWriter } from './queue/envelope.js';
import type { ConnectionCounts } from './screen/connection-limits.js';
import type { ScreenStageSettings } from './screen/screen-settings.js';
import { startScreenStage, type ScreenStage } from './screen/screen-stage.js';

/** The settings of the session stages (main.ts StageSettings without the queue's). */
export interface SessionStageSettings {
  readonly screen: ScreenStageSettings;
  readonly smtpd: SmtpdSettings;
  readonly smtpdClientLimits: SmtpdClientLimitSettings;
}

export interface SessionStageDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly resolver: DnsResolver;
  /** Where accepted mail is written durably before the 250 (the spool). */
  readonly queue: QueueWriter;
  /** queue_directory: where the address verification cache is saved. */
  readonly queueDirectory: string;
  /** A message was durably queued as `id` (before its 250 goes out). */
  readonly onQueued: (id: string) => void;
  /** ETRN that passed smtpd_etrn_restrictions and fast_flush_domains: deliver `domain`'s mail now. */
  readonly etrn: (domain: string) => void;
  /** This process's screen-stage connection counts after each change (workers report them). */
  readonly onCounts?: (counts: ConnectionCounts) => void;
}

/** The running session stages. */
export interface SessionStages {
  readonly smtpd: Smtpd;
  readonly clientLimits: SmtpdClientLimits;
  readonly screen: ScreenStage;
  /** Reload: every stage's new settings at once. */
  setSettings(settings: SessionStageSettings): void;
  /** Stops screening new tests, then lets sessions finish up to `timeoutMs` (mxscreen_shutdown_timeout). */
  close(timeoutMs: number): Promise<void>;
}

/** Builds the policy stage, its anvil limits, and the screen stage that hands to them. */
export function startSessionStages(settings: SessionStageSettings, deps: SessionStageDeps): SessionStages {
  const { clock, log, metrics, resolver } = deps;
  const smtpd = new Smtpd(settings.smtpd, {
    queue: deps.queue,
    clock,
    log,
    metrics,
    onQueued: deps.onQueued,
    etrn: deps.etrn,
    resolver,
    verifyCacheDirectory: deps.queueDirectory,
  });
  const clientLimits = new SmtpdClientLimits(settings.smtpdClientLimits, { clock, log, metrics });
  const screen = startScreenStage(settings.screen, {
    resolver,
    clock,
    log,
    metrics,
    // smtpd(8): the anvil limits first (421 instead of the 220), then the session.
    handoff: (socket, verdict) => clientLimits.gate(socket, verdict, () => smtpd.accept(socket, verdict)),
    onCounts: deps.onCounts,
  });
  return {
    smtpd,
    clientLimits,
    screen,
    setSettings(next) {
      screen.setSettings(next.screen);
      smtpd.setSettings(next.smtpd);
      clientLimits.setSettings(next.smtpdClientLimits);
    },
    async close(timeoutMs) {
      screen.stop();
      await smtpd.close(timeoutMs);
    },
  };
}
