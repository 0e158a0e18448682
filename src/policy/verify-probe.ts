/*
 * verify-probe — one address verification probe (verify(8)): does the nexthop accept
 * this recipient? `MAIL FROM:<>`, `RCPT TO:<addr>`, then `RSET` and `QUIT`; no message.
 *
 * Decides: the nexthop is the one transport_maps (then relayhost, then MX) names for the
 * recipient (delivery/transport.ts resolveNexthop, delivery/mx-lookup.ts lookupTargets),
 * the first address that answers is used; RCPT 2xx → `deliverable`, 5xx → `undeliverable`,
 * anything else (4xx, no connection, a timeout, transport `retry:`) → `unknown`;
 * transport `error:` → undeliverable. Every step is limited by `timeoutMs`.
 * Leaves to others: caching and limits (address-verify.ts).
 * Bugs: no STARTTLS in probes; a greeting other than 220 is `unknown`.
 */
import net from 'node:net';
import type { DnsResolver } from '../dns/resolver.js';
import { formatNexthop, resolveNexthop, type TransportSettings } from '../delivery/transport.js';
import { lookupTargets } from '../delivery/mx-lookup.js';

export type ProbeStatus = 'deliverable' | 'undeliverable' | 'unknown';

export interface ProbeResult {
  readonly status: ProbeStatus;
  /** What the nexthop said (or why there was no answer), for the reply and logs. */
  readonly text: string;
}

export interface ProbeOptions {
  readonly transport: TransportSettings;
  readonly resolver: DnsResolver;
  /** Our name in EHLO (myhostname). */
  readonly helo: string;
  /** Time limit of each step (connect, each reply), ms. */
  readonly timeoutMs: number;
}

/** The nexthop label a probe of `recipient` goes to (the per-nexthop limit's key). */
export function probeNexthop(recipient: string, transport: TransportSettings): string {
  return formatNexthop(resolveNexthop(recipient, transport));
}

/** Probes `recipient`. Never rejects. Source: verify(8), RFC 5321 §3.3. */
export async function probeRecipient(recipient: string, options: ProbeOptions): Promise<ProbeResult> {
  const nexthop = resolveNexthop(recipient, options.transport);
  switch (nexthop.kind) {
    case 'error':
      return { status: 'undeliverable', text: nexthop.text };
    case 'retry':
      return { status: 'unknown', text: nexthop.text };
    case 'smtp':
      break;
    default: {
      const never: never = nexthop;
      return never;
    }
  }
  const targets = await lookupTargets(nexthop, options.resolver);
  if (targets.kind === 'failure') return { status: targets.permanent ? 'undeliverable' : 'unknown', text: targets.text };
  let last: ProbeResult = { status: 'unknown', text: 'no nexthop address' };
  for (const target of targets.targets.slice(0, 5)) {
    last = await dialogue(target.address, target.port, recipient, options);
    if (last.status !== 'unknown' || !last.text.startsWith('connect')) return last;
  }
  return last;
}

function dialogue(host: string, port: number, recipient: string, options: ProbeOptions): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let buffer = '';
    let step = 0;
    let settled = false;
    const commands = [`EHLO ${options.helo}`, 'MAIL FROM:<>', `RCPT TO:<${recipient}>`];
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      socket.end('RSET\r\nQUIT\r\n');
      socket.destroySoon?.();
      setTimeout(() => socket.destroy(), 100).unref();
      resolve(result);
    };
    socket.setTimeout(options.timeoutMs, () => finish({ status: 'unknown', text: `${step === 0 ? 'connect' : 'conversation'} with [${host}]:${port} timed out` }));
    socket.on('error', (err) => finish({ status: 'unknown', text: `connect to [${host}]:${port}: ${err.message}` }));
    socket.on('close', () => finish({ status: 'unknown', text: `lost connection with [${host}]:${port}` }));
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let guard = 0; guard < 100; guard++) {
        const end = buffer.indexOf('\n');
        if (end < 0) return;
        const line = buffer.slice(0, end).replace(/\r$/, '');
        buffer = buffer.slice(end + 1);
        if (line.charAt(3) === '-') continue;
        const code = Number(line.slice(0, 3));
        if (step === 3) {
          const said = `host [${host}] said: ${line}`;
          finish({ status: code >= 200 && code < 300 ? 'deliverable' : code >= 500 ? 'undeliverable' : 'unknown', text: said });
          return;
        }
        if (!(code >= 200 && code < 400)) {
          finish({ status: 'unknown', text: `host [${host}] refused to talk: ${line}` });
          return;
        }
        socket.write(`${commands[step]}\r\n`);
        step++;
      }
    });
  });
}
