/*
 * unanswered-connect — a loopback port where a TCP connect never completes, for tests of
 * connect time limits (smtp_connect_timeout).
 *
 * Decides: how to make a SYN go unanswered on loopback without privileges: a worker
 * thread listens with the smallest backlog and then blocks its own event loop (Atomics
 * wait), so nothing ever accepts; two filler connections fill the kernel's accept queue,
 * after which Linux drops further SYNs and a client's connect() hangs until its own
 * time limit. close() wakes the worker, which closes everything.
 * Leaves to others: what the test connects with and what it expects.
 * Bugs: Linux accept-queue behaviour; where a third connect completes anyway, a test
 * sees a greeting timeout instead of a connect timeout and says so.
 */
import { connect, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const server = net.createServer((socket) => socket.destroy());
server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
  parentPort.postMessage(server.address().port);
  parentPort.once('message', () => {
    // Blocks this thread's event loop: the listening socket is never accepted from.
    parentPort.postMessage('blocking');
    Atomics.wait(new Int32Array(workerData), 0, 0);
    server.close();
    parentPort.postMessage('closed');
  });
});
`;

export interface UnansweredConnect {
  readonly port: number;
  close(): Promise<void>;
}

function openFiller(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** A port on 127.0.0.1 whose accept queue is full: connects to it hang. */
export async function startUnansweredConnect(): Promise<UnansweredConnect> {
  const flag = new SharedArrayBuffer(4);
  const worker = new Worker(WORKER, { eval: true, workerData: flag });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  // The fillers connect only once the worker is blocked, or it would accept them.
  const blocking = new Promise<void>((resolve) => worker.once('message', () => resolve()));
  worker.postMessage('block');
  await blocking;
  const fillers: Socket[] = [];
  for (let i = 0; i < 2; i += 1) {
    const filler = await openFiller(port);
    filler.on('error', () => undefined);
    fillers.push(filler);
  }
  return {
    port,
    async close() {
      for (const filler of fillers) filler.destroy();
      const closed = new Promise<void>((resolve) => worker.once('message', () => resolve()));
      Atomics.store(new Int32Array(flag), 0, 1);
      Atomics.notify(new Int32Array(flag), 0);
      await closed;
      await worker.terminate();
    },
  };
}
