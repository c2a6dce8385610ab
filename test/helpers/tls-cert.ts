/**
 * Test certificates made at test time with the `openssl` command (Node has
 * no X.509 generator): a throwaway CA and a server certificate it signs for
 * `localhost` and 127.0.0.1, written to a fresh temporary folder that
 * {@link TestPki.remove} deletes. P-256 keys keep generation fast.
 *
 * ```
 *   ca.key ─ self-signs ─▶ ca.crt (CN=netloop test CA)
 *   server.key ─ csr ─ signed by ca ─▶ server.crt (SAN DNS:localhost, IP:127.0.0.1)
 *   other-ca.crt: an unrelated CA, to test a failed verification
 * ```
 *
 * @module
 */

import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findExecutable } from './redis-server.js';

/** PEM material of a test PKI. */
export interface TestPki {
  ca: Buffer;
  otherCa: Buffer;
  key: Buffer;
  cert: Buffer;
  remove(): Promise<void>;
}

function run(cmd: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, timeout: 20_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr || err.message}`));
      else resolve();
    });
  });
}

/** Generates the PKI; throws a clear error when `openssl` is not on the PATH. */
export async function makeTestPki(): Promise<TestPki> {
  const openssl = findExecutable('openssl');
  if (openssl === null) throw new Error('the TLS tests need the openssl command on the PATH (Debian package "openssl")');
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'netloop-'));
  try {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    await Promise.all([
      run(openssl, ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=netloop test CA'], dir),
      run(openssl, ['req', '-x509', ...ec, '-keyout', 'other.key', '-out', 'other-ca.crt', '-days', '2', '-subj', '/CN=netloop other CA'], dir),
      run(openssl, ['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir),
      fsp.writeFile(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n'),
    ]);
    await run(
      openssl,
      ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'ext.cnf'],
      dir,
    );
    const [ca, otherCa, key, cert] = await Promise.all(
      ['ca.crt', 'other-ca.crt', 'server.key', 'server.crt'].map((f) => fsp.readFile(path.join(dir, f))),
    );
    return { ca: ca!, otherCa: otherCa!, key: key!, cert: cert!, remove: () => fsp.rm(dir, { recursive: true, force: true }) };
  } catch (err) {
    await fsp.rm(dir, { recursive: true, force: true });
    throw err;
  }
}
