/*
 * listen-address — reads a `host:port` listen address as main.cf writes it.
 *
 * Decides: the syntax of mxscreen_listen and mxscreen_metrics_listen entries:
 * `host:port`, `[ipv6]:port`, or `:port` (all addresses, as master.cf's `smtp` line).
 * Leaves to others: binding the socket.
 */
import { MxError } from '../errors.js';

export interface ListenAddress {
  /** IP address or host name; '0.0.0.0' when the entry had no host. */
  readonly host: string;
  /** TCP port, 0..65535 (0 = ephemeral, for tests). */
  readonly port: number;
}

/** Parses `host:port` / `[v6]:port` / `:port`. Throws MxError ERR_CONFIG on bad syntax. */
export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new MxError('ERR_CONFIG', `bad listen address "${text}": expected host:port or [ipv6]:port`);
  }
  const host = match[1] ?? (match[2] || '0.0.0.0');
  return { host, port };
}
