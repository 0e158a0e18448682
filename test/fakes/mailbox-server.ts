/*
 * mailbox-server — the mailbox server tests deliver to: a Sink on a loopback port that
 * records what it receives (with the MAIL/RCPT parameters), can answer 4xx/5xx at RCPT,
 * can offer DSN or not, can hold its 250 to the final dot (holdReplies), and can be down
 * and come back.
 *
 * Decides: one fixed port for the fake's whole life (first start on port 0, restarts on
 * the same port), so a transport entry `smtp:[127.0.0.1]:PORT` stays valid while the
 * server is down. While down, connections are refused (nothing listens).
 * Leaves to others: SMTP behaviour (src/sink/sink.ts).
 * Bugs: another process could take the port while the server is down; tests keep that
 * window short.
 */
import { Sink, type ReceivedMessage, type SinkMode } from '../../src/sink/sink.js';

export class MailboxServer {
  #sink: Sink | undefined;
  readonly port: number;
  /** Messages received over every start, oldest first. */
  readonly received: ReceivedMessage[];
  #mode: SinkMode = 'accept';
  /** Connections taken by sinks that were stopped (down) before the current one. */
  #earlierConnections = 0;
  readonly #recipientModes = new Map<string, SinkMode>();
  /** While set, the reply to each final dot waits for it (holdReplies). */
  #held: { promise: Promise<void>; release: () => void; arrived: number; waiters: (() => void)[] } | undefined;
  #offerDsn = false;

  private constructor(sink: Sink, received: ReceivedMessage[]) {
    this.#sink = sink;
    this.port = sink.port;
    this.received = received;
  }

  /** Starts on 127.0.0.1, an ephemeral port. */
  static async start(): Promise<MailboxServer> {
    const received: ReceivedMessage[] = [];
    let server: MailboxServer | undefined;
    const sink = await Sink.start({ listen: '127.0.0.1:0', keep: 1, onMessage: (message) => server!.#onMessage(message) });
    server = new MailboxServer(sink, received);
    return server;
  }

  /** `smtp:[127.0.0.1]:PORT`, for a transport table. */
  get nexthop(): string {
    return `smtp:[127.0.0.1]:${this.port}`;
  }

  /** SMTP connections accepted over every start. */
  get connections(): number {
    return this.#earlierConnections + (this.#sink?.connections ?? 0);
  }

  get up(): boolean {
    return this.#sink !== undefined;
  }

  /** RCPT answers for everyone, or for one address. */
  setMode(mode: SinkMode, address?: string): void {
    if (address === undefined) this.#mode = mode;
    else this.#recipientModes.set(address, mode);
    this.#sink?.setMode(mode, address);
  }

  /** Whether EHLO offers DSN (RFC 3461) from the next session on; off at start. */
  setOfferDsn(offer: boolean): void {
    this.#offerDsn = offer;
    this.#sink?.setOfferDsn(offer);
  }

  /** Stops listening: connections are refused until up() again. */
  async down(): Promise<void> {
    const sink = this.#sink;
    this.#sink = undefined;
    this.#earlierConnections += sink?.connections ?? 0;
    await sink?.close();
  }

  /** Listens again on the same port, with the same modes and DSN offer. */
  async restart(): Promise<void> {
    if (this.#sink) return;
    this.#sink = await Sink.start({ listen: `127.0.0.1:${this.port}`, keep: 1, onMessage: (message) => this.#onMessage(message) });
    this.#sink.setMode(this.#mode);
    this.#sink.setOfferDsn(this.#offerDsn);
    for (const [address, mode] of this.#recipientModes) this.#sink.setMode(mode, address);
  }

  async close(): Promise<void> {
    this.#held?.release();
    await this.down();
  }

  /**
   * From now on the 250 to each final dot waits (the message is in `received` already)
   * until `release()`; `reached()` resolves once a message waits. Bounded: reached()
   * rejects after `timeoutMs`.
   */
  holdReplies(timeoutMs = 5000): { reached(): Promise<void>; release(): void } {
    let release!: () => void;
    const promise = new Promise<void>((resolve) => (release = resolve));
    const held = { promise, release: () => ((this.#held = undefined), release()), arrived: 0, waiters: [] as (() => void)[] };
    this.#held = held;
    return {
      reached: () =>
        held.arrived > 0
          ? Promise.resolve()
          : new Promise((resolve, reject) => {
              const timer = setTimeout(() => reject(new Error(`no message reached the mailbox within ${timeoutMs} ms`)), timeoutMs);
              held.waiters.push(() => (clearTimeout(timer), resolve()));
            }),
      release: held.release,
    };
  }

  #onMessage(message: ReceivedMessage): Promise<void> | undefined {
    this.received.push(message);
    const held = this.#held;
    if (!held) return undefined;
    held.arrived += 1;
    for (const waiter of held.waiters.splice(0)) waiter();
    return held.promise;
  }
}
