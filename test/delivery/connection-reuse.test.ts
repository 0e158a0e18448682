/*
 * Connection reuse on the wire: which commands a cached connection carries between
 * messages (a raw SMTP server on loopback records them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { Readable } from 'node:stream';
import { deliverMessage, type DeliveryRequest, type SmtpSession } from '../../src/delivery/smtp-delivery.js';
import { ConnectionCache } from '../../src/delivery/connection-cache.js';
import { ManualClock } from '../queue/manual-clock.js';

/** A minimal SMTP server: PIPELINING, RCPT to `nobody@…` refused; records each command verb. */
async function recordingServer(): Promise<{ server: Server; port: number; verbs: string[] }> {
  const verbs: string[] = [];
  const server = createServer((socket) => {
    let buffer = '';
    let inData = false;
    let recipients = 0;
    socket.write('220 raw.test ESMTP\r\n');
    socket.on('data', (data) => {
      buffer += data.toString('latin1');
      // Bounded by the bytes received: each pass consumes one line.
      for (let end = buffer.indexOf('\r\n'); end >= 0; end = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            socket.write('250 2.0.0 Ok: queued\r\n');
          }
          continue;
        }
        const verb = line.split(/[ :]/)[0]!.toUpperCase();
        verbs.push(verb);
        switch (verb) {
          case 'EHLO':
            socket.write('250-raw.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n');
            break;
          case 'MAIL':
            recipients = 0;
            socket.write('250 2.1.0 Ok\r\n');
            break;
          case 'RCPT':
            if (/nobody@/i.test(line)) socket.write('550 5.1.1 <nobody@example.com>: Recipient address rejected\r\n');
            else {
              recipients += 1;
              socket.write('250 2.1.5 Ok\r\n');
            }
            break;
          case 'DATA':
            if (recipients === 0) socket.write('554 5.5.1 Error: no valid recipients\r\n');
            else {
              inData = true;
              socket.write('354 End data with <CR><LF>.<CR><LF>\r\n');
            }
            break;
          case 'RSET':
            recipients = 0;
            socket.write('250 2.0.0 Ok\r\n');
            break;
          case 'QUIT':
            socket.end('221 2.0.0 Bye\r\n');
            break;
          default:
            socket.write('502 5.5.2 Error: command not recognized\r\n');
        }
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port, verbs };
}

const body = Buffer.from('Subject: t\r\n\r\nbody\r\n');

function request(port: number, recipient: string, cache: ConnectionCache<SmtpSession>): DeliveryRequest {
  return {
    targets: [{ hostname: '127.0.0.1', address: '127.0.0.1', port }],
    sender: 'a@example.org',
    recipients: [recipient],
    size: body.length,
    body: () => Readable.from([body]),
    helo: 'mx1.test',
    connectTimeout: 2000,
    commandTimeout: 2000,
    tlsLevel: 'none',
    cache: { connections: cache, key: 'raw', limit: 1 },
  };
}

const cases = [
  { name: 'after a message that went through, the next MAIL FROM follows without RSET', input: ['b@example.com', 'c@example.com'], want: ['EHLO', 'MAIL', 'RCPT', 'DATA', 'MAIL', 'RCPT', 'DATA'] },
  { name: 'after a transaction that failed, RSET comes before the next MAIL FROM', input: ['nobody@example.com', 'c@example.com'], want: ['EHLO', 'MAIL', 'RCPT', 'DATA', 'RSET', 'MAIL', 'RCPT', 'DATA'] },
];

for (const { name, input, want } of cases) {
  test(`connection reuse: ${name}`, async () => {
    const { server, port, verbs } = await recordingServer();
    const cache = new ConnectionCache<SmtpSession>({ clock: new ManualClock(), idleTime: 60_000 });
    try {
      for (const recipient of input) await deliverMessage(request(port, recipient, cache));
      assert.deepEqual(verbs, want);
    } finally {
      cache.closeIdle();
      await new Promise((resolve) => server.close(resolve));
    }
  });
}
