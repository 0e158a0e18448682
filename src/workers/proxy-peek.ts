/*
 * proxy-peek — the owner's look at a PROXY header (postscreen_upstream_proxy_protocol with
 * mxscreen_workers > 1), so that the real client's address picks the worker.
 *
 * Decides: the owner reads from the socket only until the header is complete (or is bad,
 * too long, times out), then stops the socket's reading in the kernel handle before anything
 * more is read, and gives back every byte it read, the header included. The worker puts them
 * back in front of the socket's stream (unshift) and screens it as one process would: its
 * screener reads and judges the header itself (proxy-protocol.ts, the `PROXY` log line on an
 * error), then the client's first bytes (a pregreet) follow. A bad header yields no address:
 * the proxy's own picks the worker, whose screener refuses it.
 * Leaves to others: the header's syntax and meaning (screen/proxy-protocol.ts), placing the
 * connection (worker-choice.ts, worker-pool.ts).
 * Bugs: stopping the read uses net.Socket's `_handle` (readStop), as Node's own
 * child_process does to pass a socket; no public call stops a server socket's reads. A
 * header that never completes waits the time limit here, then again in the worker.
 */
import type { Socket } from 'node:net';
import { parseProxyHeader } from '../screen/proxy-protocol.js';

/** The bytes read and, when the header named one, the real client's address. */
export interface ProxyPeek {
  readonly bytes: Buffer;
  readonly client: string | undefined;
}

/** Largest PROXY header read here (v2: 16 bytes + a 16-bit length). */
const HEADER_LIMIT = 16 + 65535;

/**
 * Reads `socket` (accepted paused) up to the end of its PROXY header, at most `timeoutMs`.
 * Resolves with what was read, the socket paused with its handle no longer reading; or
 * undefined when the client hung up (the socket is destroyed). Never rejects.
 */
export function peekProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxyPeek | undefined> {
  return new Promise((resolve) => {
    let bytes: Buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (client: string | undefined, gone = false): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onGone);
      socket.off('error', onGone);
      socket.pause();
      const handle = (socket as unknown as { _handle?: { reading?: boolean; readStop?: () => number } | null })._handle;
      if (handle?.readStop) {
        handle.reading = false;
        handle.readStop();
      }
      if (gone) {
        socket.destroy();
        resolve(undefined);
      } else {
        resolve({ bytes, client });
      }
    };
    const onData = (chunk: Buffer): void => {
      bytes = bytes.length === 0 ? chunk : Buffer.concat([bytes, chunk]);
      const parsed = parseProxyHeader(bytes);
      switch (parsed.kind) {
        case 'incomplete':
          if (bytes.length > HEADER_LIMIT) finish(undefined);
          return;
        case 'error':
          finish(undefined);
          return;
        case 'header':
          finish(parsed.endpoints?.client.address);
          return;
        default: {
          const never: never = parsed;
          throw new Error(`unknown parse ${String(never)}`);
        }
      }
    };
    const onGone = (): void => finish(undefined, true);
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.on('data', onData);
    socket.on('close', onGone);
    socket.on('error', onGone);
    socket.resume();
  });
}
