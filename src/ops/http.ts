/*
 * http — the Prometheus scrape endpoint.
 *
 * Decides: that `GET /metrics` on `mxscreen_metrics_listen` answers the registry in the
 * Prometheus text format, `GET /healthz` answers 200 "ok", anything else 404.
 * Leaves to others: which metrics exist (metrics.ts), gathering them from worker processes
 * (workers/worker-pool.ts gives the text to serve).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.js';
import { parseListenAddress } from './listen-address.js';

export interface MetricsEndpoint {
  /** The bound address and port (port 0 in the config gives an ephemeral port). */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `metrics` on `listen` (`host:port`, `[v6]:port`); `render` gives the text instead
 * of `metrics.registry` (the aggregate over worker processes). Rejects when the address
 * cannot be bound (EADDRINUSE, EACCES).
 */
export async function serveMetrics(listen: string, metrics: Metrics, render?: () => Promise<string>): Promise<MetricsEndpoint> {
  const { host, port } = parseListenAddress(listen);
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method === 'GET' && path === '/metrics') {
      (render ?? (() => metrics.registry.metrics()))().then(
        (body) => {
          response.writeHead(200, { 'content-type': metrics.registry.contentType });
          response.end(body);
        },
        (error: unknown) => {
          response.writeHead(500, { 'content-type': 'text/plain' });
          response.end(String(error));
        },
      );
      return;
    }
    if (request.method === 'GET' && path === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end('ok\n');
      return;
    }
    response.writeHead(404, { 'content-type': 'text/plain' });
    response.end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return {
    address: bound.address,
    port: bound.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
