/*
 * listen-backlog — how many connections the kernel may queue on a listening socket
 * before mxscreen accepts them (listen(2) backlog), from `mxscreen_listen_backlog`.
 *
 * Decides: 0 (the default) means the system's net.core.somaxconn, read once from
 * /proc/sys/net/core/somaxconn; 4096 (Linux's somaxconn since 5.4) when that file
 * cannot be read. A positive value is passed as it is. Node's own default is 511, which a
 * burst of new clients overflows (the kernel then drops SYNs and clients time out).
 * Leaves to others: binding (listener.ts); the kernel clamps any value to somaxconn, so
 * a backlog above it needs the sysctl raised too.
 * Bugs: read at start only (the parameter takes effect after a restart).
 */
import { readFileSync } from 'node:fs';

/** Where Linux publishes net.core.somaxconn. */
export const SOMAXCONN_PATH = '/proc/sys/net/core/somaxconn';
/** The backlog used when `SOMAXCONN_PATH` cannot be read (connections). */
export const FALLBACK_BACKLOG = 4096;

/**
 * The listen(2) backlog (connections) for `configured` (mxscreen_listen_backlog):
 * `configured` when positive, else the integer in `somaxconnPath`, else FALLBACK_BACKLOG.
 */
export function listenBacklog(configured: number, somaxconnPath = SOMAXCONN_PATH): number {
  if (configured > 0) return configured;
  try {
    const system = Number.parseInt(readFileSync(somaxconnPath, 'latin1').trim(), 10);
    return Number.isSafeInteger(system) && system > 0 ? system : FALLBACK_BACKLOG;
  } catch {
    return FALLBACK_BACKLOG;
  }
}
