// A loopback TCP server that plays the screener for policy-stage tests and benchmarks:
// every accepted socket goes to `accept` with a made-up ScreenVerdict (the real
// screen → policy seam: a socket plus a verdict), so smtpd runs without the screen stage.
import { createServer, type Socket } from 'node:net';
import type { ScreenVerdict } from '../../src/screen-verdict.js';

export interface HandoverServer {
  /** The bound port on 127.0.0.1. */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Listens on 127.0.0.1:0; each connection is handed to `accept` with a verdict whose
 * session id is `<idPrefix><n>`, outcome 'pass-new', and the socket's own addresses;
 * `verdict` fields override those.
 */
export async function startHandoverServer(
  accept: (socket: Socket, verdict: ScreenVerdict) => void,
  options: { idPrefix?: string; verdict?: Partial<ScreenVerdict> } = {},
): Promise<HandoverServer> {
  let sessions = 0;
  const server = createServer((socket) => {
    accept(socket, {
      sessionId: `${options.idPrefix ?? 'T'}${++sessions}`,
      client: { address: socket.remoteAddress!, port: socket.remotePort! },
      local: { address: socket.localAddress!, port: socket.localPort! },
      outcome: 'pass-new',
      connectedAt: Date.now(),
      ...options.verdict,
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
