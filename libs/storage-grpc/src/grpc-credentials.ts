import { credentials, ServerCredentials, type ChannelCredentials } from '@grpc/grpc-js';

/** The server's identity for TLS, PEM. */
export interface GrpcServerTls {
  /** PEM certificate chain of the server. */
  cert: Buffer;
  /** PEM private key of the server. */
  key: Buffer;
}

/**
 * A client's TLS: an object connects with TLS, trusting `ca` when given and the system roots
 * otherwise; `false` connects in plaintext.
 */
export type GrpcClientTls = { ca?: Buffer } | false;

/** TLS with this identity, or plaintext. Clients authenticate with the shared token, not with certificates. */
export function grpcServerCredentials(tls: GrpcServerTls | undefined): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(null, [{ private_key: tls.key, cert_chain: tls.cert }], false);
}

export function grpcChannelCredentials(tls: GrpcClientTls | undefined): ChannelCredentials {
  return tls ? credentials.createSsl(tls.ca ?? null) : credentials.createInsecure();
}
