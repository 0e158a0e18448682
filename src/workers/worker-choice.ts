/*
 * worker-choice — which worker gets a new connection (mxscreen_workers > 1).
 *
 * Decides: a client about whom per-client state is kept goes to the worker of its address
 * (client-hash.ts), so that state stays exact in one worker; a client about whom none is
 * kept goes to the worker with the fewest connections (ties: round-robin), so one busy
 * trusted host uses every core. None: postscreen_access_list permits it (handed over at
 * once, never cached) and it is in smtpd_client_event_limit_exceptions (anvil ignores it);
 * by default mynetworks. Its postscreen_client_connection_count_limit, held only from
 * connect to that hand-over, is then counted per worker. Behind
 * postscreen_upstream_proxy_protocol the address is the one the PROXY header names.
 * Leaves to others: the hash (client-hash.ts), the hand-off and the counts (worker-pool.ts).
 * Bugs: the access list is evaluated twice (here and in the worker); a table that throws
 * here means the hash (exact, never wrong).
 */
import type { MatchList } from '../config/value.js';
import { evaluateAccessList, type AccessList } from '../screen/access-list.js';
import { matchNetwork } from '../tables/match-list.js';
import { unmapIpv4 } from '../tables/ip-network.js';
import { workerForAddress } from './client-hash.js';

/** What the choice reads of the configuration (screen and smtpd settings; reload replaces it). */
export interface WorkerChoiceSettings {
  readonly accessList: AccessList;
  readonly mynetworks: MatchList;
  /** smtpd_client_event_limit_exceptions */
  readonly limitExceptions: MatchList;
  /** postscreen_upstream_proxy_protocol is on: the owner reads the header first (proxy-peek.ts). */
  readonly proxyProtocol: boolean;
  /** postscreen_upstream_proxy_timeout, ms. */
  readonly proxyTimeoutMs: number;
}

/** `hash`: the worker of the address; `spread`: the least loaded. */
export type WorkerChoice = { readonly kind: 'hash'; readonly worker: number } | { readonly kind: 'spread' };

/** How a connection from client `address` (behind a proxy: the one its PROXY header names) is placed over `workers` workers. Never throws. */
export function chooseWorker(settings: WorkerChoiceSettings, address: string, workers: number): WorkerChoice {
  const client = unmapIpv4(address);
  if (keepsNoState(settings, client)) return { kind: 'spread' };
  return { kind: 'hash', worker: workerForAddress(client, workers) };
}

function keepsNoState(settings: WorkerChoiceSettings, address: string): boolean {
  try {
    return matchNetwork(settings.limitExceptions, address) && evaluateAccessList(settings.accessList, address, settings.mynetworks).decision === 'permit';
  } catch {
    return false;
  }
}
