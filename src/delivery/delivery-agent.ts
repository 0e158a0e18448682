/*
 * delivery-agent — one delivery attempt of one message's recipients, the delivery side of
 * the queue → delivery seam (delivery-request.ts; Postfix smtp(8) and the per-destination
 * part of qmgr(8)).
 *
 * Decides: the grouping of recipients by nexthop (recipients of one SMTP nexthop share one
 * transaction; each error:/retry: recipient stands alone); an error: nexthop bounces and a
 * retry: nexthop defers with its text, its RFC 3463 code when the text starts with one
 * (else 5.0.0 / 4.0.0); a transport in defer_transports defers (4.3.2 `deferred
 * transport`) and a nexthop thought dead defers (4.4.1 `delivery temporarily suspended:
 * …`), both unless a flush asked; the MX targets of a nexthop list; the TLS level; the
 * connection limit and reuse per nexthop (the formatNexthop label is the cache key); when
 * a nexthop is dead (no target for a temporary reason, or every recipient deferred without
 * a connection) or up again (any answer); mxscreen_delivery_seconds per nexthop attempt.
 * Leaves to others: the nexthop of a recipient (transport.ts), targets (mx-lookup.ts), the
 * SMTP dialogue (smtp-delivery.ts), the dead-nexthop memory (dead-nexthop.ts), connections
 * (connection-cache.ts), what the results mean for the message (queue/).
 */
import type { Clock } from '../clock.js';
import type { DnsResolver } from '../dns/resolver.js';
import type { QueueRecipient } from '../message/envelope.js';
import type { Logger } from '../ops/log.js';
import type { Metrics } from '../ops/metrics.js';
import type { DeliveryAgent, DeliverySettings, OutboundMessage, RecipientDelivery, RecipientOutcome } from '../delivery-request.js';
import { formatNexthop, resolveNexthop, type Nexthop } from './transport.js';
import { lookupNexthopTargets, type DeliveryTarget } from './mx-lookup.js';
import { deliverMessage, SmtpSession } from './smtp-delivery.js';
import { ConnectionCache } from './connection-cache.js';
import { DeadNexthops } from './dead-nexthop.js';

export interface DeliveryAgentDeps {
  readonly resolver: DnsResolver;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
}

/** The delivery agent over SMTP, with transport_maps, MX lookup and connection reuse. */
export class SmtpDeliveryAgent implements DeliveryAgent {
  #settings: DeliverySettings;
  readonly #deps: DeliveryAgentDeps;
  readonly #dead: DeadNexthops;
  readonly #connections: ConnectionCache<SmtpSession>;

  constructor(settings: DeliverySettings, deps: DeliveryAgentDeps) {
    this.#settings = settings;
    this.#deps = deps;
    this.#dead = new DeadNexthops(deps);
    this.#connections = new ConnectionCache({ clock: deps.clock, idleTime: settings.connectionCacheTime ?? 0 });
  }

  setSettings(settings: DeliverySettings): void {
    this.#settings = settings;
    this.#connections.setIdleTime(settings.connectionCacheTime ?? 0);
  }

  forgetDeadNexthops(): void {
    this.#dead.clear();
  }

  closeIdle(): void {
    this.#connections.closeIdle();
  }

  async deliver(message: OutboundMessage, recipients: readonly QueueRecipient[], signal: AbortSignal): Promise<ReadonlyMap<number, RecipientDelivery>> {
    const settings = this.#settings;
    const results = new Map<number, RecipientDelivery>();
    // Bounded by the number of recipients.
    for (const { nexthop, positions } of groupByNexthop(recipients, settings)) {
      const group = positions.map((position) => recipients[position]!);
      const delivered = await this.#deliverGroup(message, nexthop, group, signal, settings);
      delivered.forEach((result, i) => results.set(positions[i]!, result));
    }
    return results;
  }

  /** One nexthop's share of an attempt: a result per recipient, in order, or none when aborted first. */
  async #deliverGroup(message: OutboundMessage, nexthop: Nexthop, recipients: readonly QueueRecipient[], signal: AbortSignal, settings: DeliverySettings): Promise<readonly RecipientDelivery[]> {
    const label = formatNexthop(nexthop);
    const everyone = (status: RecipientOutcome, dsn: string, text: string): RecipientDelivery[] =>
      recipients.map(({ address }) => ({ outcome: { address, status, dsn, text }, relay: 'none', nexthop: label, reason: 'transport', relayedWithoutDsn: false }));
    switch (nexthop.kind) {
      case 'error':
        return everyone('bounced', leadingDsn(nexthop.text, '5') ?? '5.0.0', nexthop.text);
      case 'retry':
        return everyone('deferred', leadingDsn(nexthop.text, '4') ?? '4.0.0', nexthop.text);
      case 'smtp': {
        if (signal.aborted) return [];
        if (!message.flushed && (settings.deferTransports ?? []).includes(nexthop.transport.toLowerCase())) return everyone('deferred', '4.3.2', 'deferred transport');
        const suspended = this.#dead.suspended(label, this.#deps.clock.now());
        if (suspended !== undefined && !message.flushed) return everyone('deferred', '4.4.1', `delivery temporarily suspended: ${suspended}`);
        const started = performance.now();
        const lookup = await lookupNexthopTargets(nexthop, this.#deps.resolver);
        if (lookup.kind === 'failure') {
          if (!lookup.permanent) this.#dead.markDead(label, lookup.text, settings.minimalBackoffTime);
          return everyone(lookup.permanent ? 'bounced' : 'deferred', lookup.dsn, lookup.text);
        }
        const delivered = await this.#deliverSmtp(message, label, lookup.targets, recipients, signal, settings);
        this.#deps.metrics.deliveryLatency.observe((performance.now() - started) / 1000);
        return delivered;
      }
      default: {
        const never: never = nexthop;
        throw new Error(`unhandled nexthop ${String(never)}`);
      }
    }
  }

  /** The SMTP transaction at the targets of nexthop `label`; marks it dead or up by how it went. */
  async #deliverSmtp(
    message: OutboundMessage,
    label: string,
    targets: readonly DeliveryTarget[],
    recipients: readonly QueueRecipient[],
    signal: AbortSignal,
    settings: DeliverySettings,
  ): Promise<RecipientDelivery[]> {
    const delivery = await deliverMessage({
      targets,
      sender: message.sender,
      recipients,
      size: message.size,
      body: message.body,
      helo: settings.myhostname,
      connectTimeout: settings.connectTimeout,
      commandTimeout: settings.commandTimeout,
      ...(message.dsn ? { dsn: message.dsn } : {}),
      signal,
      tlsLevel: settings.tlsLevel ?? 'may',
      cache: { connections: this.#connections, key: label, limit: settings.destinationConcurrencyLimit ?? 20 },
    });
    if (!signal.aborted) {
      const noAnswer = delivery.relay === 'none' && delivery.recipients.every((r) => r.status === 'deferred');
      if (noAnswer) this.#dead.markDead(label, delivery.recipients[0]?.text ?? 'no answer', settings.minimalBackoffTime);
      else this.#dead.markUp(label);
    }
    return delivery.recipients.map((outcome) => ({ outcome, relay: delivery.relay, nexthop: label, reason: 'rejected', relayedWithoutDsn: !delivery.dsnSupported }));
  }
}

/**
 * Recipients by nexthop, in order of first appearance: the positions in `recipients` of
 * each SMTP nexthop's recipients together, each error:/retry: recipient alone.
 */
function groupByNexthop(recipients: readonly QueueRecipient[], settings: DeliverySettings): { nexthop: Nexthop; positions: number[] }[] {
  const groups = new Map<string, { nexthop: Nexthop; positions: number[] }>();
  recipients.forEach((recipient, position) => {
    const nexthop = resolveNexthop(recipient.address, settings);
    const key = nexthop.kind === 'smtp' ? `smtp ${formatNexthop(nexthop)}` : `${nexthop.kind} ${position}`;
    const group = groups.get(key) ?? { nexthop, positions: [] };
    group.positions.push(position);
    groups.set(key, group);
  });
  return [...groups.values()];
}

/** An RFC 3463 code at the start of an error:/retry: text, e.g. `5.1.1 no such user`. */
function leadingDsn(text: string, klass: '4' | '5'): string | undefined {
  const code = /^([245]\.\d{1,3}\.\d{1,3})\b/.exec(text)?.[1];
  return code?.startsWith(klass) ? code : undefined;
}
