/*
 * scripted-client — a raw-socket SMTP client that a test scripts line by line.
 *
 * Decides: how a test plays an Internet host: connect from a chosen 127.x.y.z source
 * address (Linux routes all of 127.0.0.0/8 to lo), read reply lines, wait for a reply
 * code, send any text or bytes at any time (before the greeting too: a pregreet talker;
 * invalid UTF-8 too), close.
 * Every wait is bounded by its timeoutMs. Waits reject with an Error whose `code` is
 * `ETIMEDOUT` (nothing within the time) or `ERR_EOF` (the server closed first).
 * Leaves to others: what to send and what to expect (the tests).
 * Bugs: lines are split on LF and a trailing CR is dropped; binary replies are not
 * supported (SMTP replies are text).
 */
import { connect, type Socket } from 'node:net';

export interface SmtpReplyLines {
  /** Code of the last line of the reply (`220-teaser` + `521 …` gives 521). */
  readonly code: number;
  /** Every line of the reply, without CRLF, in the order received. */
  readonly lines: readonly string[];
}

export interface ScriptedClient {
  /** The local (source) address and port the client is bound to. */
  readonly localAddress: string;
  readonly localPort: number;
  /** The next line without its CRLF. Rejects ERR_EOF when the server closed first. */
  readLine(timeoutMs: number): Promise<string>;
  /**
   * The next complete reply: lines `NNN-…` continue it, a line `NNN …` (or just
   * `NNN`) ends it. Rejects ERR_EOF when the server closes before the reply is complete.
   */
  readReply(timeoutMs: number): Promise<SmtpReplyLines>;
  /** Reads replies until one whose code is `code`, within `timeoutMs` overall. */
  waitForCode(code: number, timeoutMs: number): Promise<SmtpReplyLines>;
  /** Writes `data` as is: text as UTF-8, bytes unchanged (add "\r\n" yourself). */
  send(data: string | Uint8Array): void;
  /** Everything received so far, as text. */
  received(): string;
  /** Resolves when the socket is fully closed (by either side). */
  readonly closed: Promise<void>;
  /** True once the server ended its side of the connection. */
  readonly ended: boolean;
  /** Resolves when the server ends its side, rejects ETIMEDOUT after timeoutMs. */
  waitForEnd(timeoutMs: number): Promise<void>;
  /** Closes the connection (FIN, then destroy) and waits until it is closed. */
  close(): Promise<void>;
}

export interface ConnectOptions {
  readonly port: number;
  /** Server address; default 127.0.0.1. Must be a loopback address. */
  readonly host?: string;
  /** Source address, e.g. 127.0.0.2; default: chosen by the kernel. */
  readonly localAddress?: string;
  /** Connect time limit in ms; default 2000. */
  readonly timeoutMs?: number;
}

/** Sends one command `line` (CRLF added) and resolves with the last line of its reply, within `timeoutMs`. Rejects as readReply(). */
export async function command(client: ScriptedClient, line: string, timeoutMs: number): Promise<string> {
  client.send(`${line}\r\n`);
  return (await client.readReply(timeoutMs)).lines.at(-1)!;
}

function failure(code: 'ETIMEDOUT' | 'ERR_EOF', message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** Connects to `options.host:options.port` from `options.localAddress`. */
export async function connectClient(options: ConnectOptions): Promise<ScriptedClient> {
  const socket: Socket = connect({ host: options.host ?? '127.0.0.1', port: options.port, localAddress: options.localAddress });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(failure('ETIMEDOUT', `connect to port ${options.port} timed out`));
    }, options.timeoutMs ?? 2000);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve();
    });
    const onError = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    socket.once('error', onError);
  });

  let text = '';
  let buffer = '';
  const lines: string[] = [];
  let ended = false;
  let notify: (() => void) | undefined;
  const wake = () => {
    const waiter = notify;
    notify = undefined;
    waiter?.();
  };
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    text += chunk;
    buffer += chunk;
    let newline = buffer.indexOf('\n');
    while (newline >= 0) {
      lines.push(buffer.slice(0, newline).replace(/\r$/, ''));
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf('\n');
    }
    wake();
  });
  socket.on('end', () => {
    ended = true;
    wake();
  });
  socket.on('error', () => wake()); // ECONNRESET and the like end the stream; 'close' follows
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      ended = true;
      wake();
      resolve();
    }),
  );

  /** Waits until `ready()` holds or the stream ends; rejects at the deadline. */
  async function until(ready: () => boolean, deadline: number, what: string): Promise<void> {
    while (!ready() && !ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw failure('ETIMEDOUT', `timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        notify = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  async function readLineBy(deadline: number): Promise<string> {
    await until(() => lines.length > 0, deadline, 'a line');
    const line = lines.shift();
    if (line === undefined) throw failure('ERR_EOF', 'connection closed');
    return line;
  }

  async function readReplyBy(deadline: number): Promise<SmtpReplyLines> {
    const reply: string[] = [];
    for (let count = 0; count < 1000; count++) {
      const line = await readLineBy(deadline).catch((error: unknown) => {
        throw (error as { code?: unknown }).code === 'ERR_EOF' ? failure('ERR_EOF', `connection closed after ${JSON.stringify(reply)}`) : error;
      });
      reply.push(line);
      if (line.charAt(3) !== '-') return { code: Number(line.slice(0, 3)), lines: reply };
    }
    throw failure('ERR_EOF', 'reply longer than 1000 lines');
  }

  return {
    localAddress: socket.localAddress ?? '',
    localPort: socket.localPort ?? 0,
    readLine: (timeoutMs) => readLineBy(Date.now() + timeoutMs),
    readReply: (timeoutMs) => readReplyBy(Date.now() + timeoutMs),
    async waitForCode(code, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (let count = 0; count < 1000; count++) {
        const reply = await readReplyBy(deadline);
        if (reply.code === code) return reply;
      }
      throw failure('ETIMEDOUT', `no ${code} reply in 1000 replies`);
    },
    send(data) {
      socket.write(data);
    },
    received: () => text,
    closed,
    get ended() {
      return ended;
    },
    async waitForEnd(timeoutMs) {
      await until(() => ended, Date.now() + timeoutMs, 'the server to close');
    },
    async close() {
      socket.end();
      socket.destroy();
      await closed;
    },
  };
}
