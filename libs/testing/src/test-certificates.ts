import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import forge from 'node-forge';

/** A PEM certificate and its PEM private key. */
export interface PemPair {
  cert: Buffer;
  key: Buffer;
}

export interface TestCertificates {
  /** The certificate authority clients trust (`*_TLS_CA_FILE`). */
  ca: PemPair;
  /** A server certificate the CA signed, for `127.0.0.1`, `::1` and `localhost`. */
  server: PemPair;
}

export interface TestCertificateFiles {
  /** PEM of the CA certificate. */
  caFile: string;
  /** PEM of the server certificate (`TLS_CERT_FILE`). */
  certFile: string;
  /** PEM of the server key (`TLS_KEY_FILE`). */
  keyFile: string;
}

export interface CreateTestCertificatesOptions {
  /** Names the server certificate is valid for, beside 127.0.0.1, ::1 and localhost. Default: none. */
  dnsNames?: readonly string[];
  /** Common name of the CA, to tell two CAs apart in handshake errors. Default: `modproxy test CA`. */
  caName?: string;
}

const DAY_MS = 24 * 3_600_000;

function rsaKeys(): forge.pki.rsa.KeyPair {
  // node:crypto makes the key (fast, native); forge only builds and signs the certificates.
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return {
    privateKey: forge.pki.privateKeyFromPem(privateKey),
    publicKey: forge.pki.publicKeyFromPem(publicKey),
  };
}

function newCertificate(publicKey: forge.pki.PublicKey): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // A positive serial: the first byte's high bit clear.
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  // Valid from a minute ago, so clock steps between processes do not matter.
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + DAY_MS);
  return cert;
}

function pem(cert: forge.pki.Certificate, keys: forge.pki.rsa.KeyPair): PemPair {
  return {
    cert: Buffer.from(forge.pki.certificateToPem(cert)),
    key: Buffer.from(forge.pki.privateKeyToPem(keys.privateKey)),
  };
}

/**
 * A throw-away CA and a server certificate it signed, valid for one day for the loopback
 * addresses: what a TLS test needs, made in the test (no openssl on PATH required). Each call
 * makes a new CA, so a second call is "a CA the server does not know".
 */
export function createTestCertificates(options: CreateTestCertificatesOptions = {}): TestCertificates {
  const caKeys = rsaKeys();
  const ca = newCertificate(caKeys.publicKey);
  const caSubject = [{ name: 'commonName', value: options.caName ?? 'modproxy test CA' }];
  ca.setSubject(caSubject);
  ca.setIssuer(caSubject);
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ca.sign(caKeys.privateKey, forge.md.sha256.create());

  const serverKeys = rsaKeys();
  const server = newCertificate(serverKeys.publicKey);
  server.setSubject([{ name: 'commonName', value: 'localhost' }]);
  server.setIssuer(caSubject);
  server.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        { type: 2, value: 'localhost' },
        ...(options.dnsNames ?? []).map((value) => ({ type: 2, value })),
        { type: 7, ip: '127.0.0.1' },
        { type: 7, ip: '::1' },
      ],
    },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
  ]);
  server.sign(caKeys.privateKey, forge.md.sha256.create());

  return { ca: pem(ca, caKeys), server: pem(server, serverKeys) };
}

/** {@link createTestCertificates} written as PEM files into `dir`, for apps configured by file names. */
export async function writeTestCertificates(
  dir: string,
  options: CreateTestCertificatesOptions = {},
): Promise<TestCertificates & TestCertificateFiles> {
  const certificates = createTestCertificates(options);
  const files: TestCertificateFiles = {
    caFile: join(dir, 'ca.pem'),
    certFile: join(dir, 'server-cert.pem'),
    keyFile: join(dir, 'server-key.pem'),
  };
  await writeFile(files.caFile, certificates.ca.cert);
  await writeFile(files.certFile, certificates.server.cert);
  await writeFile(files.keyFile, certificates.server.key, { mode: 0o600 });
  return { ...certificates, ...files };
}
