/*
 * policy-server — a Postfix policy daemon on loopback (inet) or a unix socket, for tests:
 * reads `name=value` lines up to an empty line and answers `action=…` chosen by `decide`.
 *
 * Decides: nothing about policy; records every request so tests can check the attributes.
 * `delayMs` holds each answer (timeouts); `silent` never answers.
 */
import { createServer, type Server, type Socket } from 'node:net';

export interface FakePolicyServer {
  /** `inet:127.0.0.1:port` or `unix:path`. */
  readonly target: string;
  readonly requests: Record<string, string>[];
  /** Connections accepted so far (the client keeps one open). */
  readonly connections: number;
  close(): Promise<void>;
}

export async function startPolicyServer(
  decide: (request: Record<string, string>) => string,
  options: { path?: string; delayMs?: number; silent?: boolean } = {},
): Promise<FakePolicyServer> {
  const requests: Record<string, string>[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setEncoding('utf8');
    let buffer = '';
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const request: Record<string, string> = {};
        for (const line of buffer.slice(0, end).split('\n')) {
          const equals = line.indexOf('=');
          if (equals > 0) request[line.slice(0, equals)] = line.slice(equals + 1);
        }
        buffer = buffer.slice(end + 2);
        requests.push(request);
        if (options.silent) continue;
        const answer = `action=${decide(request)}\n\n`;
        if (options.delayMs) setTimeout(() => socket.write(answer), options.delayMs).unref();
        else socket.write(answer);
      }
    });
  });
  await new Promise<void>((resolve) => (options.path ? server.listen(options.path, resolve) : server.listen(0, '127.0.0.1', resolve)));
  const address = server.address();
  const target = options.path ? `unix:${options.path}` : `inet:127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return {
    target,
    requests,
    get connections() {
      return connections;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
