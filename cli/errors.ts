import { BaseError, NonRetryableError, RetryableError } from "@/core/errors.js";

/**
 * The CLI process's errors. Every one reaches the user as one short line (plus details),
 * and sets the exit code; none is retried automatically except where a loop says so.
 */
export { BaseError, NonRetryableError, RetryableError };

/** A command-line flag or argument is wrong: the message names it and what it expects. */
export class UsageError extends NonRetryableError {
  override name = "UsageError";
}

/** A child process (postgres, anvil, the indexer…) could not be started or died at start-up. */
export class StartupError extends NonRetryableError {
  override name = "StartupError";
}

/**
 * The port picked for the embedded PostgreSQL answered with another server (a second
 * `quasar dev` that picked the same free port at the same moment): pick another one.
 */
export class PortTakenError extends StartupError {
  override name = "PortTakenError";
}

/** Why a keystore was refused; callers branch on this, never on the message. */
export const KEYSTORE_FAILURES = ["wrong-password", "malformed", "unsupported"] as const;
export type KeystoreFailure = (typeof KEYSTORE_FAILURES)[number];

/**
 * A keystore file could not be decrypted: a wrong password (the MAC does not match), a
 * malformed file (not JSON, not hex, no valid key inside), or one it cannot read (another
 * version, cipher, KDF or scrypt parameters beyond the memory cap).
 */
export class KeystoreError extends NonRetryableError {
  override name = "KeystoreError";
  readonly reason: KeystoreFailure;
  constructor(
    reason: KeystoreFailure,
    shortMessage: string,
    options: { cause?: unknown; details?: string } = {},
  ) {
    super(shortMessage, options);
    this.reason = reason;
  }
}

/** No signing key is available, or the one given is not allowed on this chain. */
export class SignerError extends NonRetryableError {
  override name = "SignerError";
}

/** A chain RPC did not answer as expected (wrong chain id, missing `finalized` tag…). */
export class RpcError extends RetryableError {
  override name = "RpcError";
}

/** A table a command needs could not be read; going on without it would report wrong results. */
export class DatabaseReadError extends RetryableError {
  override name = "DatabaseReadError";
}
