/*
 * client-hash — which worker serves a client: a stable hash of its address.
 *
 * Decides: FNV-1a (32 bits) of the address text as the screen stage sees it (IPv4-mapped
 * IPv6 unmapped, so `::ffff:192.0.2.1` and `192.0.2.1` are one client), modulo the number
 * of workers. Every connection of one address lands on one worker, so what mxscreen keeps
 * per client (postscreen's connection count, smtpd's anvil count and rate, the verdict
 * cache record) lives in that worker and stays exact; a restarted worker keeps its index.
 * Leaves to others: whether a client is hashed or spread (worker-choice.ts), handing the
 * socket over (worker-pool.ts).
 * Behind postscreen_upstream_proxy_protocol the address is the one the PROXY header names
 * (proxy-peek.ts), or the proxy's when the header names none (LOCAL, UNKNOWN, bad).
 */
import { unmapIpv4 } from '../tables/ip-network.js';

/** The index (0 … workers − 1) of the worker for a client at `address`. */
export function workerForAddress(address: string, workers: number): number {
  const text = unmapIpv4(address);
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % workers;
}
