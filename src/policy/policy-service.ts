/*
 * policy-service — check_policy_service: Postfix's policy delegation protocol
 * (SMTPD_POLICY_README), so that policyd-spf, postgrey and the like work unchanged.
 *
 * Decides: targets `inet:host:port` and `unix:path` (relative to queue_directory, as
 * `unix:private/policyd-spf`); the request (`name=value` lines: request, protocol_state,
 * protocol_name, helo_name, sender, recipient, client_address, client_name, …, then an empty
 * line); the reply (`action=…` and an empty line; an access(5) action); one persistent
 * connection per server, one request at a time; smtpd_policy_service_timeout on each; any
 * failure closes the connection and gives smtpd_policy_service_default_action, logged.
 * Leaves to others: applying the action (access-restriction.ts applyAccessAction).
 * Bugs: no `{ name, timeout=… }` per-service options; at most 100 queued requests per server.
 */
import net from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import type { Clock } from '../clock.js';
import type { Logger } from '../ops/log.js';
import { unmapIpv4 } from '../tables/ip-network.js';
import { parseAccessAction } from './access-action.js';
import { applyAccessAction } from './access-restriction.js';
import type { RestrictionResult } from './restriction.js';
import type { PolicyServiceClient } from './restriction-services.js';
import { subjectOf, type RestrictionCall } from './restriction.js';

export type PolicyTarget = { readonly kind: 'inet'; readonly host: string; readonly port: number } | { readonly kind: 'unix'; readonly path: string };

/** Reads `inet:host:port` (`inet:[::1]:port`) or `unix:path`; `problem` says what is wrong. */
export function parsePolicyTarget(text: string): { target?: PolicyTarget; problem?: string } {
  const inet = /^inet:(?:\[([^\]]+)\]|([^:\s]+)):(\d+)$/.exec(text);
  if (inet) {
    const port = Number(inet[3]);
    if (port < 1 || port > 65535) return { problem: `bad port in "${text}"` };
    return { target: { kind: 'inet', host: inet[1] ?? inet[2]!, port } };
  }
  const unix = /^unix:(\S+)$/.exec(text);
  if (unix) return { target: { kind: 'unix', path: unix[1]! } };
  return { problem: `expected inet:host:port or unix:path, found "${text}"` };
}

export interface PolicyServiceOptions {
  /** smtpd_policy_service_timeout, ms. */
  readonly timeoutMs: number;
  /** smtpd_policy_service_default_action. */
  readonly defaultAction: string;
  /** Where relative unix: paths resolve (queue_directory). */
  readonly queueDirectory: string;
  readonly clock: Clock;
  readonly log: Logger;
}


const MAX_QUEUED = 100;

/** A client for `target` (see file head). Source: SMTPD_POLICY_README "Protocol description". */
export function createPolicyServiceClient(target: PolicyTarget, options: PolicyServiceOptions): PolicyServiceClient {
  let socket: net.Socket | undefined;
  let buffer = '';
  let waiting: ((reply: string | Error) => void) | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  let queued = 0;
  const name = target.kind === 'inet' ? `inet:${target.host}:${target.port}` : `unix:${target.path}`;

  const drop = (): void => {
    socket?.destroy();
    socket = undefined;
    buffer = '';
  };

  const connect = (): net.Socket => {
    const path = target.kind === 'unix' ? (isAbsolute(target.path) ? target.path : resolve(options.queueDirectory, target.path)) : undefined;
    const fresh = path !== undefined ? net.connect({ path }) : net.connect({ host: (target as { host: string }).host, port: (target as { port: number }).port });
    fresh.setEncoding('utf8');
    fresh.on('data', (chunk: string) => {
      buffer += chunk;
      const end = buffer.indexOf('\n\n');
      if (end >= 0 && waiting) {
        const reply = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const deliver = waiting;
        waiting = undefined;
        deliver(reply);
      }
    });
    const fail = (error: Error): void => {
      if (socket !== fresh) return; // an old connection going away after a timeout
      drop();
      const deliver = waiting;
      waiting = undefined;
      deliver?.(error);
    };
    fresh.on('error', fail);
    fresh.on('close', () => fail(new Error('connection closed by policy server')));
    return fresh;
  };

  const once = (attributes: Readonly<Record<string, string>>): Promise<string> =>
    new Promise<string>((resolvePromise) => {
      const timer = options.clock.setTimer(options.timeoutMs, () => finish(new Error('timeout')));
      const finish = (reply: string | Error): void => {
        timer.cancel();
        waiting = undefined;
        if (reply instanceof Error) {
          drop();
          options.log.warn({ event: 'smtp error', server: name, err: reply.message }, `warning: problem talking to server ${name}: ${reply.message}`);
          resolvePromise(options.defaultAction);
          return;
        }
        const action = /^action=(.*)$/m.exec(reply)?.[1];
        if (action === undefined) {
          drop();
          options.log.warn({ event: 'smtp error', server: name }, `warning: ${name}: reply without action=`);
          resolvePromise(options.defaultAction);
          return;
        }
        resolvePromise(action.trim());
      };
      waiting = finish;
      socket ??= connect();
      const lines = Object.entries(attributes).map(([key, value]) => `${key}=${value.replace(/[\r\n]/g, ' ')}\n`);
      socket.write(`${lines.join('')}\n`);
    });

  return {
    ask(attributes) {
      if (queued >= MAX_QUEUED) return Promise.resolve(options.defaultAction);
      queued++;
      const result = chain.then(() => once(attributes));
      chain = result.finally(() => {
        queued--;
      });
      return result;
    },
    close: drop,
  };
}

/** The request attributes for one call (SMTPD_POLICY_README "Policy delegation protocol"). */
export async function policyAttributes(call: RestrictionCall): Promise<Record<string, string>> {
  const request = call.request;
  const names = await call.session.clientNames();
  return {
    request: 'smtpd_access_policy',
    protocol_state: request.command,
    protocol_name: request.protocol,
    helo_name: request.helo,
    queue_id: '',
    sender: request.sender ?? '',
    recipient: request.recipient?.address ?? '',
    recipient_count: String(request.recipientCount),
    client_address: unmapIpv4(request.client.address),
    client_port: String(request.client.port),
    client_name: names.name,
    reverse_client_name: names.reverseName,
    server_address: unmapIpv4(request.local.address),
    server_port: String(request.local.port),
    instance: request.sessionId,
    etrn_domain: request.etrnDomain ?? '',
    size: '0',
  };
}

/** The check_policy_service restriction. */
export async function checkPolicyService(call: RestrictionCall): Promise<RestrictionResult> {
  const target = call.restriction.argument ?? '';
  const action = await call.env.policyService(target).ask(await policyAttributes(call));
  const { what, subject } = subjectOf(call);
  return applyAccessAction(call, parseAccessAction(action), { by: `${call.restriction.written} ${target}`, what, subject, source: target });
}
