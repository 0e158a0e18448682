/*
 * proxy-protocol — the HAProxy PROXY header in front of a connection (v1 text, v2 binary).
 *
 * Decides (haproxy proxy-protocol.txt, postscreen_upstream_proxy_protocol = haproxy):
 * v1 `PROXY TCP4|TCP6 src dst sport dport\r\n` (at most 107 bytes) and `PROXY UNKNOWN…`;
 * v2 the 12-byte signature, version 2, command LOCAL or PROXY, families AF_INET/AF_INET6
 * over STREAM (TLVs skipped). PROXY gives the client and local addresses that are
 * screened, cached and logged; LOCAL and UNKNOWN keep the socket's own. Anything else,
 * or no complete header within postscreen_upstream_proxy_timeout, is an error: the
 * connection is closed without a reply. Bytes after the header are put back (unshift).
 * Leaves to others: what is done with the addresses (screener.ts).
 * Bugs: v2 over UDP or UNIX sockets is refused, as in Postfix.
 */
import { isIPv4, isIPv6, type Socket } from 'node:net';
import type { Clock } from '../clock.js';
import { unmapIpv4 } from '../tables/ip-network.js';


export interface ProxyEndpoints {
  readonly client: { readonly address: string; readonly port: number };
  readonly local: { readonly address: string; readonly port: number };
}

export type ProxyParse =
  /** More bytes are needed. */
  | { readonly kind: 'incomplete' }
  /** A header of `length` bytes; `endpoints` undefined for LOCAL/UNKNOWN. */
  | { readonly kind: 'header'; readonly length: number; readonly endpoints: ProxyEndpoints | undefined }
  | { readonly kind: 'error'; readonly reason: string };

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_MAX = 107;

function port(text: string): number | undefined {
  return /^\d{1,5}$/.test(text) && Number(text) <= 65535 ? Number(text) : undefined;
}

function parseV1(buffer: Buffer): ProxyParse {
  const end = buffer.indexOf('\r\n');
  if (end < 0) return buffer.length >= V1_MAX ? { kind: 'error', reason: 'v1 header longer than 107 bytes' } : { kind: 'incomplete' };
  const words = buffer.subarray(0, end).toString('latin1').split(' ');
  const length = end + 2;
  if (words[1] === 'UNKNOWN') return { kind: 'header', length, endpoints: undefined };
  if (words.length !== 6 || (words[1] !== 'TCP4' && words[1] !== 'TCP6')) return { kind: 'error', reason: 'bad v1 header' };
  const [, family, source, destination, sourcePort, destinationPort] = words as [string, string, string, string, string, string];
  const valid = family === 'TCP4' ? isIPv4 : isIPv6;
  const sport = port(sourcePort);
  const dport = port(destinationPort);
  if (!valid(source) || !valid(destination) || sport === undefined || dport === undefined) return { kind: 'error', reason: 'bad v1 address or port' };
  return { kind: 'header', length, endpoints: { client: { address: unmapIpv4(source), port: sport }, local: { address: unmapIpv4(destination), port: dport } } };
}

/** RFC 5952 text of 16 address bytes (longest zero run as `::`); IPv4-mapped → IPv4. */
function ipv6Text(bytes: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return [...bytes.subarray(12, 16)].join('.');
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && groups[start + length] === 0) length++;
    if (length > bestLength) {
      bestStart = start;
      bestLength = length;
    }
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function parseV2(buffer: Buffer): ProxyParse {
  if (buffer.length < 16) return { kind: 'incomplete' };
  const versionCommand = buffer[12]!;
  if (versionCommand >> 4 !== 2) return { kind: 'error', reason: 'bad v2 version' };
  const length = 16 + buffer.readUInt16BE(14);
  if (buffer.length < length) return { kind: 'incomplete' };
  const command = versionCommand & 0x0f;
  if (command === 0) return { kind: 'header', length, endpoints: undefined }; // LOCAL: health check
  if (command !== 1) return { kind: 'error', reason: 'bad v2 command' };
  const body = buffer.subarray(16, length);
  switch (buffer[13]) {
    case 0x11: // AF_INET, STREAM
      if (body.length < 12) return { kind: 'error', reason: 'short v2 IPv4 address block' };
      return {
        kind: 'header',
        length,
        endpoints: {
          client: { address: [...body.subarray(0, 4)].join('.'), port: body.readUInt16BE(8) },
          local: { address: [...body.subarray(4, 8)].join('.'), port: body.readUInt16BE(10) },
        },
      };
    case 0x21: // AF_INET6, STREAM
      if (body.length < 36) return { kind: 'error', reason: 'short v2 IPv6 address block' };
      return {
        kind: 'header',
        length,
        endpoints: {
          client: { address: ipv6Text(body.subarray(0, 16)), port: body.readUInt16BE(32) },
          local: { address: ipv6Text(body.subarray(16, 32)), port: body.readUInt16BE(34) },
        },
      };
    case 0x00: // UNSPEC
      return { kind: 'header', length, endpoints: undefined };
    default:
      return { kind: 'error', reason: `unsupported v2 address family/protocol 0x${(buffer[13] ?? 0).toString(16)}` };
  }
}

/** Parses the start of a connection's bytes as a PROXY v1 or v2 header. Pure. */
export function parseProxyHeader(buffer: Buffer): ProxyParse {
  const signature = buffer.subarray(0, Math.min(buffer.length, V2_SIGNATURE.length));
  if (V2_SIGNATURE.subarray(0, signature.length).equals(signature) && signature.length > 0 && buffer[0] === 0x0d) {
    return signature.length < V2_SIGNATURE.length ? { kind: 'incomplete' } : parseV2(buffer);
  }
  const v1 = Buffer.from('PROXY ');
  const prefix = buffer.subarray(0, Math.min(buffer.length, v1.length));
  if (!v1.subarray(0, prefix.length).equals(prefix)) return { kind: 'error', reason: 'no PROXY header' };
  return prefix.length < v1.length ? { kind: 'incomplete' } : parseV1(buffer);
}

/**
 * Reads the PROXY header from `socket` within `timeoutMs` (on `clock`). Resolves with the
 * endpoints (undefined for LOCAL/UNKNOWN), or `{ error }` (timeout, hangup, bad header).
 * Bytes after the header are unshifted back; the socket is left paused. Never rejects.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number, clock: Clock): Promise<{ endpoints: ProxyEndpoints | undefined } | { error: string }> {
  return new Promise((resolve) => {
    let buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (result: { endpoints: ProxyEndpoints | undefined } | { error: string }) => {
      if (settled) return;
      settled = true;
      timer.cancel();
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onClose);
      socket.pause();
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const parsed = parseProxyHeader(buffer);
      switch (parsed.kind) {
        case 'incomplete':
          if (buffer.length > 16 + 65535) finish({ error: 'header too long' });
          return;
        case 'error':
          finish({ error: parsed.reason });
          return;
        case 'header': {
          const rest = buffer.subarray(parsed.length);
          finish({ endpoints: parsed.endpoints });
          if (rest.length > 0) socket.unshift(rest);
          return;
        }
        default: {
          const never: never = parsed;
          throw new Error(`unknown parse ${String(never)}`);
        }
      }
    };
    const onClose = () => finish({ error: 'lost connection' });
    const timer = clock.setTimer(timeoutMs, () => finish({ error: 'timeout' }));
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onClose);
  });
}
