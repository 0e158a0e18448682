/*
 * starttls-mailbox-server — a mailbox server on loopback that offers STARTTLS with a
 * self-signed certificate, for tests of smtp_tls_security_level.
 *
 * Decides: every message is accepted and recorded with whether its session was encrypted
 * (smtp-server's `session.secure`, true after STARTTLS); no AUTH, no reverse lookup.
 * Leaves to others: the certificate (certificate.ts), the plain mailbox server
 * (mailbox-server.ts).
 */
import { readFileSync } from 'node:fs';
import { SMTPServer } from 'smtp-server';

export interface TlsReceivedMessage {
  readonly sender: string;
  readonly recipients: readonly string[];
  /** The message came over a session that had done STARTTLS. */
  readonly tls: boolean;
}

export interface StarttlsMailboxServer {
  readonly port: number;
  /** `smtp:[127.0.0.1]:PORT`, for a transport table. */
  readonly nexthop: string;
  readonly received: readonly TlsReceivedMessage[];
  close(): Promise<void>;
}

/** Starts on 127.0.0.1, an ephemeral port, with the PEM files `cert` and `key`. */
export async function startStarttlsMailboxServer(files: { readonly cert: string; readonly key: string }): Promise<StarttlsMailboxServer> {
  const received: TlsReceivedMessage[] = [];
  const server = new SMTPServer({
    name: 'tls-mailbox.test',
    key: readFileSync(files.key),
    cert: readFileSync(files.cert),
    authOptional: true,
    disabledCommands: ['AUTH'],
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 100,
    onData(stream, session, callback) {
      stream.resume();
      stream.on('end', () => {
        received.push({
          sender: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          recipients: session.envelope.rcptTo.map((rcpt) => rcpt.address),
          tls: session.secure,
        });
        callback(null, 'Ok: queued');
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const bound = server.server.address();
  const port = typeof bound === 'object' && bound ? bound.port : 0;
  return {
    port,
    nexthop: `smtp:[127.0.0.1]:${port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
