/*
 * certificate — a self-signed certificate and key for TLS tests, made with openssl(1).
 *
 * Decides: an EC P-256 key and a certificate for `commonName`, valid two days, written as
 * cert.pem and key.pem into a directory the caller owns. undefined when openssl is not
 * installed or fails, so a test can skip.
 * Leaves to others: what the certificate is used for (STARTTLS servers in tests).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** Paths of the PEM files written into `directory`, or undefined without openssl. */
export function makeCertificate(directory: string, commonName = 'mx1.example.net'): { cert: string; key: string } | undefined {
  const cert = join(directory, 'cert.pem');
  const key = join(directory, 'key.pem');
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-subj', `/CN=${commonName}`, '-days', '2'], { stdio: 'ignore', timeout: 10_000 });
    return { cert, key };
  } catch {
    return undefined;
  }
}
