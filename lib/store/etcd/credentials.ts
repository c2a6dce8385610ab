/**
 * How the etcd store proves itself to etcd: TLS material and etcd's
 * user/password authentication, handed to the `etcd3` client as they are.
 * Kept apart from the client module so the store's public types never name
 * the optional `etcd3` package.
 *
 * @module
 */

/** TLS material of the connection to etcd (etcd3's `credentials`). */
export interface EtcdCredentials {
  /** The certificate authority that signed etcd's certificate. */
  rootCertificate: Buffer;
  /** The client's private key, for client-certificate authentication. */
  privateKey?: Buffer;
  /** The client's certificate chain, for client-certificate authentication. */
  certChain?: Buffer;
}

/** etcd's user/password authentication (etcd3's `auth`). */
export interface EtcdAuth {
  /** The etcd user (etcd's `user add`). */
  username: string;
  /** That user's password. */
  password: string;
}
