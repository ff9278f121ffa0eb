// Certificates for the local clusters (Temporal's secured one, the Kubernetes one) from openssl: a CA, and leaves it
// signs with the extensions each needs. Made once per directory and kept for restarts.
import { writeFileSync } from 'node:fs';
import { run } from './cluster-postgres';

const DAYS = ['-days', '30'];

/** A self-signed CA certificate and its key. */
export function makeCa(cert: string, key: string, cn: string): void {
  run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    ...DAYS,
    '-subj',
    `/CN=${cn}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

/** A key and a certificate for `subject` (e.g. `/CN=admin/O=system:masters`), signed by the CA, with `ext` (openssl x509 extension lines). */
export function makeLeaf(
  ca: { cert: string; key: string },
  cert: string,
  key: string,
  subject: string,
  ext: string,
): void {
  const csr = `${cert}.csr`;
  const extFile = `${cert}.ext`;
  writeFileSync(extFile, ext);
  run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', subject]);
  run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-out',
    cert,
    ...DAYS,
    '-extfile',
    extFile,
  ]);
}
