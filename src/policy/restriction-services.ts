/*
 * restriction-services — the services a restriction may call, as the restrictions see them.
 *
 * Decides: the shapes of the policy delegation client (check_policy_service), the SPF
 * verifier (reject_spf_fail) and the address verifier (reject_unverified_recipient) that
 * RestrictionEnvironment (restriction.ts) hands to the checks. They live apart from the
 * implementations so that the seam imports no check: policy-service.ts, spf-check.ts and
 * address-verify.ts implement these, restriction.ts names them, and no import runs back.
 * Leaves to others: the protocols and caches behind them (those three files).
 */

/** One policy server (SMTPD_POLICY_README). `ask` resolves the action text; never rejects. */
export interface PolicyServiceClient {
  ask(attributes: Readonly<Record<string, string>>): Promise<string>;
  close(): void;
}

/** RFC 7208 §2.6 results. */
export type SpfResult = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'temperror' | 'permerror';

export interface SpfOutcome {
  readonly result: SpfResult;
  /** The `Received-SPF:` header, one line, no CRLF. */
  readonly header: string;
  /** mailauth's explanation, for the reply and logs. */
  readonly comment: string;
}

export interface SpfVerifier {
  verify(request: { ip: string; sender: string; helo: string }): Promise<SpfOutcome>;
}

/** What a verify(8)-style probe says of an address. */
export type VerifyAnswer =
  | { readonly kind: 'deliverable' }
  | { readonly kind: 'undeliverable'; readonly text: string }
  | { readonly kind: 'in-progress' };

/** The address verifier as reject_unverified_recipient uses it (address-verify.ts RecipientVerifier). */
export interface AddressVerifier {
  readonly settings: { readonly rejectCode: number };
  /** The answer for `address` (lower-cased key), from the cache or a probe. Never rejects. */
  verify(address: string): Promise<VerifyAnswer>;
}
