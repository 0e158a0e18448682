/*
 * metrics — every Prometheus metric mxscreen exports, declared in one place.
 *
 * Decides: metric names (prefix mxscreen_, _total for counters, _seconds for durations;
 * README "Metrics" lists each), their labels and buckets. Each `Metrics` owns its own registry so that
 * several instances (tests) never clash. Node's process metrics (prom-client's defaults) carry
 * the same prefix, less the three gauges named `_total` (PROCESS_GAUGES_NAMED_TOTAL), which
 * `promtool check metrics` refuses: their per-type twins (`mxscreen_nodejs_active_handles{type}`, …) stay.
 * With mxscreen_workers > 1 every process has its
 * own and /metrics shows their aggregate (workers/worker-pool.ts): counters and histograms
 * summed; each gauge's `aggregator` says how its values over processes combine (connections,
 * cache records and queue counts summed; stress mode and ages the maximum; a DNSBL site
 * healthy only when every worker finds it healthy: the minimum).
 * Leaves to others: when to count (each stage) and serving /metrics (http.ts).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * prom-client default gauges whose names end in `_total`, a counter's suffix (promtool: "non-counter
 * metrics should not have _total suffix"); each is the sum over `type` of its twin without the suffix.
 */
export const PROCESS_GAUGES_NAMED_TOTAL = ['mxscreen_nodejs_active_handles_total', 'mxscreen_nodejs_active_requests_total', 'mxscreen_nodejs_active_resources_total'] as const;

export class Metrics {
  readonly registry = new Registry();

  /** Connections by screen verdict: allowlisted, pass-new, pass-old, enforce, drop, ignored-failure, hangup (client left during the screen), limit (a connection limit refused it with 421), noforward (ALLOWLIST VETO: kept in postscreen's own engine). */
  readonly connections = new Counter({ name: 'mxscreen_connections_total', help: 'SMTP connections by screen verdict.', labelNames: ['verdict'] as const, registers: [this.registry] });
  /**
   * Results of each postscreen test: test = access|pregreet|dnsbl|pipelining|non_smtp_command|bare_newline,
   * result = pass|fail, action = the configured action of the test (ignore|enforce|drop; `none` for a pass).
   */
  readonly screenVerdicts = new Counter({ name: 'mxscreen_screen_verdicts_total', help: 'postscreen test results by test, result and action.', labelNames: ['test', 'result', 'action'] as const, registers: [this.registry] });
  /** Open client connections by stage: screen (in the screener, before handover), smtpd (policy stage). */
  readonly activeConnections = new Gauge({ name: 'mxscreen_connections_active', help: 'Open client connections by stage (screen, smtpd).', labelNames: ['stage'] as const, aggregator: 'sum', registers: [this.registry] });
  /**
   * DNSBL/DNSWL answers: result = listed | not_listed | error (DNS failure: SERVFAIL, REFUSED, …) | timeout |
   * refused_code (an error code, never a listing: 127.255.255.0/24, 127.0.0.1, or 127.0.0.255 from a DNSWL).
   */
  readonly dnsblAnswers = new Counter({ name: 'mxscreen_dnsbl_answers_total', help: 'DNSBL/DNSWL answers by site and result.', labelNames: ['site', 'result'] as const, registers: [this.registry] });
  /** 1 when the site passes its RFC 5782 self-test (127.0.0.2 listed, 127.0.0.1 not), else 0. */
  readonly dnsblSiteHealthy = new Gauge({ name: 'mxscreen_dnsbl_site_healthy', help: 'DNSBL/DNSWL site health from the periodic self-test (1 healthy, 0 not).', labelNames: ['site'] as const, aggregator: 'min', registers: [this.registry] });
  /** 1 while the screen stage is in stress mode (postscreen(8) overload), else 0. */
  readonly stressMode = new Gauge({ name: 'mxscreen_stress_mode', help: 'Screen stage stress mode (1 on, 0 off).', aggregator: 'max', registers: [this.registry] });
  readonly dnsblLatency = new Histogram({ name: 'mxscreen_dnsbl_query_seconds', help: 'DNSBL query latency by site.', labelNames: ['site'] as const, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry] });
  readonly dnsblRank = new Histogram({ name: 'mxscreen_dnsbl_rank', help: 'DNSBL rank of screened clients.', buckets: [-5, -1, 0, 1, 2, 3, 5, 10], registers: [this.registry] });
  /** Verdict cache lookups: result = hit (every test still valid) | miss. */
  readonly cacheLookups = new Counter({ name: 'mxscreen_screen_cache_lookups_total', help: 'Verdict cache lookups by result.', labelNames: ['result'] as const, registers: [this.registry] });
  /**
   * 1 while the shared verdict cache store (postscreen_cache_map = redis:…) is connected and
   * ready, else 0. Absent with the embedded cache: registered only by exportVerdictCacheBackend(),
   * since a gauge without labels shows 0 from the start, and a host without Redis would then
   * look like one whose Redis is down (the MxscreenVerdictCacheBackendDown alert).
   */
  readonly verdictCacheBackendUp = new Gauge({ name: 'mxscreen_verdict_cache_backend_up', help: 'Shared verdict cache store (Redis) state (1 up, 0 down).', registers: [] });
  /**
   * Shared verdict cache store failures, each a cache miss or a lost write, never a client error:
   * reason = connection (a connection error or loss) | timeout (a read missed the read deadline) |
   * read | write (a command failed) | value (a stored value did not parse: ignored).
   */
  readonly verdictCacheBackendErrors = new Counter({ name: 'mxscreen_verdict_cache_backend_errors_total', help: 'Shared verdict cache store (Redis) failures by reason.', labelNames: ['reason'] as const, registers: [this.registry] });
  /** Records held by the verdict cache, expired ones kept for postscreen_cache_retention_time included. */
  readonly cacheEntries = new Gauge({ name: 'mxscreen_screen_cache_entries', help: 'Records in the postscreen verdict cache.', aggregator: 'sum', registers: [this.registry] });
  /** Policy stage: smtpd restriction results, list = client|helo|sender|relay|recipient (at RCPT) | data, result = permit|reject|defer (ETRN's list is not counted). */
  readonly restrictionResults = new Counter({ name: 'mxscreen_smtpd_restrictions_total', help: 'Restriction list results by list and result.', labelNames: ['list', 'result'] as const, registers: [this.registry] });
  /** Address verification probes (reject_unverified_recipient): result = started | limited (mxscreen_verify_probe_limit reached, 450 at once). */
  readonly addressVerifyProbes = new Counter({ name: 'mxscreen_address_verify_probes_total', help: 'Address verification probes by nexthop and result.', labelNames: ['nexthop', 'result'] as const, registers: [this.registry] });
  /** Messages the content checks or safety limits stopped at end of DATA: action = reject | discard | hold | limit. */
  readonly contentRejects = new Counter({ name: 'mxscreen_content_checks_total', help: 'Messages stopped by header/MIME checks by action.', labelNames: ['action'] as const, registers: [this.registry] });
  readonly smtpReplies = new Counter({ name: 'mxscreen_smtp_replies_total', help: 'SMTP replies sent to clients by reply code.', labelNames: ['code'] as const, registers: [this.registry] });
  readonly messagesQueued = new Counter({ name: 'mxscreen_messages_queued_total', help: 'Messages accepted with 250 and written to the queue.', registers: [this.registry] });
  readonly messageBytes = new Counter({ name: 'mxscreen_message_bytes_total', help: 'Bytes of messages written to the queue.', registers: [this.registry] });
  /** Recipient deliveries: status = sent | deferred | bounced. */
  readonly deliveries = new Counter({ name: 'mxscreen_deliveries_total', help: 'Recipient delivery results by status and nexthop.', labelNames: ['status', 'nexthop'] as const, registers: [this.registry] });
  readonly deliveryLatency = new Histogram({ name: 'mxscreen_delivery_seconds', help: 'Duration of one delivery attempt to a nexthop.', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [this.registry] });
  readonly queueMessages = new Gauge({ name: 'mxscreen_queue_messages', help: 'Messages in each queue directory.', labelNames: ['queue'] as const, aggregator: 'sum', registers: [this.registry] });
  /** Age of the oldest message in each queue (incoming, active, deferred, hold, corrupt), 0 when empty. */
  readonly queueOldest = new Gauge({ name: 'mxscreen_queue_oldest_seconds', help: 'Age of the oldest message in each queue directory.', labelNames: ['queue'] as const, aggregator: 'max', registers: [this.registry] });
  /**
   * Queue files found damaged (short, no END record, unreadable head) and sent to corrupt/ (Spool.quarantine):
   * queue = where each was found (incoming, active, deferred, hold). Any increase needs an administrator (README "Corrupt queue files").
   */
  readonly queueCorrupt = new Counter({ name: 'mxscreen_queue_corrupt_total', help: 'Damaged queue files moved to corrupt/, by the queue they were found in.', labelNames: ['queue'] as const, registers: [this.registry] });
  /** Recipients bounced (a DSN is queued unless the sender is <> or NOTIFY excludes FAILURE): reason = rejected (5xx), expired (maximal_queue_lifetime, bounce_queue_lifetime), transport (error:, null MX, unknown host). `mxscreen queue delete` bounces nothing (postsuper -d). */
  readonly bounces = new Counter({ name: 'mxscreen_bounces_total', help: 'Bounced recipients by reason.', labelNames: ['reason'] as const, registers: [this.registry] });
  /** 1 while the nexthop answers, 0 while it is remembered as dead (its mail is deferred without a connection). */
  readonly nexthopUp = new Gauge({ name: 'mxscreen_nexthop_up', help: 'Nexthop reachability as the queue manager last saw it (1 up, 0 dead).', labelNames: ['nexthop'] as const, aggregator: 'max', registers: [this.registry] });
  /** Worker processes started again after they exited without being told to stop (mxscreen_workers > 1). */
  readonly workerRestarts = new Counter({ name: 'mxscreen_worker_restarts_total', help: 'Worker processes restarted after an exit that was not a stop.', registers: [this.registry] });
  /**
   * Seconds from the owner's accept of a connection to its socket written on the channel of
   * the worker that serves it (mxscreen_workers > 1): Node's child_process passes one socket
   * per round trip to the worker (each waits for the worker's acknowledgement of the one
   * before), so this is the wait behind earlier hand-offs, and behind a restart.
   */
  readonly workerHandoff = new Histogram({ name: 'mxscreen_worker_handoff_seconds', help: 'Time from accept to the socket written on its worker\'s channel (mxscreen_workers > 1).', labelNames: ['worker'] as const, buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5], registers: [this.registry] });

  /**
   * 1 while `site` lists our own `address` (mxscreen_self_listing_addresses, a bounded set from main.cf), 0 while it does not.
   * A round that could not check keeps the last known value; no series before the first round that could tell.
   */
  readonly selfListed = new Gauge({ name: 'mxscreen_self_listed', help: 'Our own address listed by a DNSBL site (1 listed, 0 not; the last known value while the site cannot be checked).', labelNames: ['site', 'address'] as const, registers: [this.registry] });
  /** 1 when the last self-listing round could tell for every address on `site` (RFC 5782 test points answered right, within the time limit), else 0. */
  readonly selfListingCheckSuccess = new Gauge({ name: 'mxscreen_self_listing_check_success', help: 'Whether the last self-listing round could check the DNSBL site (1 yes, 0 could not check).', labelNames: ['site'] as const, registers: [this.registry] });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics) {
      collectDefaultMetrics({ register: this.registry, prefix: 'mxscreen_' });
      for (const name of PROCESS_GAUGES_NAMED_TOTAL) this.registry.removeSingleMetric(name);
    }
  }

  /** Adds mxscreen_verdict_cache_backend_up to /metrics (a shared verdict cache is configured); once is enough, more are harmless. */
  exportVerdictCacheBackend(): void {
    if (this.registry.getSingleMetric('mxscreen_verdict_cache_backend_up') === undefined) this.registry.registerMetric(this.verdictCacheBackendUp);
  }
}
