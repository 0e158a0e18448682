/*
 * listener — the SMTP listening sockets; the screen stage owns every connection first.
 *
 * Decides: one net.Server per `mxscreen_listen` address (`host:port`, `[ipv6]:port`,
 * `:port`; port 0 binds an ephemeral port, for tests), every accepted socket going to
 * one callback (the screener), and that close() only stops accepting: connections
 * already accepted live on (one listener owns the sockets, as master.cf's
 * `smtp inet` line in Postfix), and the listen(2) backlog of every socket
 * (`mxscreen_listen_backlog`, resolved by listen-backlog.ts; Node's default is 511).
 * Nothing synchronous but the callback runs per accept. With `pauseOnConnect`
 * (mxscreen_workers > 1) a socket is accepted without reading a byte, so the owner can pass
 * it to a worker with every byte the client sent still in the kernel's buffer (a pregreet
 * included).
 * Leaves to others: what happens to a connection (screener.ts), its PROXY header
 * (proxy-protocol.ts), the screen's connection limits (connection-limits.ts) and smtpd's
 * per-client count and rate limits (policy/smtpd-client-limits.ts).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { parseListenAddress } from '../ops/listen-address.js';

export interface BoundListener {
  /** The address actually bound (IPv6 without brackets). */
  readonly address: string;
  /** The port actually bound (the ephemeral one when 0 was asked). */
  readonly port: number;
}

export class SmtpListener {
  private readonly addresses: readonly string[];
  private readonly onSocket: (socket: Socket) => void;
  private readonly pauseOnConnect: boolean;
  private readonly backlog: number | undefined;
  private servers: Server[] = [];

  /**
   * `addresses`: `host:port` / `[ipv6]:port` / `:port` strings (mxscreen_listen).
   * `onSocket` receives each accepted connection, in flowing state as net gives it, or
   * never read from with `options.pauseOnConnect`. `options.backlog`: the listen(2) backlog
   * (connections); absent means Node's 511.
   */
  constructor(addresses: readonly string[], onSocket: (socket: Socket) => void, options: { readonly pauseOnConnect?: boolean; readonly backlog?: number } = {}) {
    this.addresses = addresses;
    this.onSocket = onSocket;
    this.pauseOnConnect = options.pauseOnConnect ?? false;
    this.backlog = options.backlog;
  }

  /**
   * Binds every address. Resolves with the bound addresses in configuration order.
   * Rejects with the first bind error (EADDRINUSE, EACCES, MxError ERR_CONFIG for a
   * malformed address), after closing what was already bound.
   */
  async listen(): Promise<BoundListener[]> {
    const bound: BoundListener[] = [];
    try {
      for (const text of this.addresses) {
        const { host, port } = parseListenAddress(text);
        const server = createServer({ noDelay: true, pauseOnConnect: this.pauseOnConnect }, (socket) => this.onSocket(socket));
        this.servers.push(server);
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host, port, backlog: this.backlog }, () => {
            server.off('error', reject);
            resolve();
          });
        });
        // After listening, an accept error (EMFILE) must not crash the process; net retries.
        server.on('error', () => undefined);
        const address = server.address();
        if (address === null || typeof address === 'string') throw new Error(`unexpected listen address for ${text}`);
        bound.push({ address: address.address, port: address.port });
      }
    } catch (error) {
      await this.close();
      throw error;
    }
    return bound;
  }

  /** Stops accepting on every address; accepted connections are left alone. */
  async close(): Promise<void> {
    const servers = this.servers;
    this.servers = [];
    for (const server of servers) {
      if (server.listening) server.close();
    }
  }
}
