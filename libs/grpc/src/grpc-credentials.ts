import { readFileSync } from 'node:fs';
import { credentials, ServerCredentials, type ChannelCredentials } from '@grpc/grpc-js';

/** The server's identity for TLS, PEM. */
export interface GrpcServerTls {
  /** PEM certificate chain of the server. */
  cert: Buffer;
  /** PEM private key of the server. */
  key: Buffer;
}

/** The server's identity from its two PEM files (`TLS_CERT_FILE`, `TLS_KEY_FILE`), read now; plaintext without both. */
export function grpcServerTls(
  certFile: string | undefined,
  keyFile: string | undefined,
): GrpcServerTls | undefined {
  if (!certFile || !keyFile) return undefined;
  return { cert: readFileSync(certFile), key: readFileSync(keyFile) };
}

/**
 * A client's TLS: an object connects with TLS, trusting `ca` when given and the system roots
 * otherwise; `false` connects in plaintext.
 */
export type GrpcClientTls = { ca?: Buffer } | false;

/**
 * A client's TLS from its two variables (`STORAGE_TLS` and `STORAGE_TLS_CA_FILE`, say): TLS when
 * either is set, trusting the CA file (PEM, read now) instead of the system roots when given.
 */
export function grpcClientTls(enabled: boolean, caFile: string | undefined): GrpcClientTls {
  if (!enabled && !caFile) return false;
  return caFile ? { ca: readFileSync(caFile) } : {};
}

/** TLS with this identity, or plaintext. Clients authenticate with the shared token, not with certificates. */
export function grpcServerCredentials(tls: GrpcServerTls | undefined): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(null, [{ private_key: tls.key, cert_chain: tls.cert }], false);
}

export function grpcChannelCredentials(tls: GrpcClientTls | undefined): ChannelCredentials {
  return tls ? credentials.createSsl(tls.ca ?? null) : credentials.createInsecure();
}
