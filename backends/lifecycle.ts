/**
 * What every backend role shares: who it is and whether it runs. A pin backend and a content
 * backend both extend this, and a backend playing both roles (helia, Kubo) gives them one
 * lifecycle over one node: opening either opens the node, closing either closes it.
 *
 * Every method of every role honours `signal` (aborts promptly, leaving no half-done state it
 * reports as done) and throws BackendError subclasses (backends/errors.ts): whether to retry
 * is decided by the class, never by the message.
 */
export interface BackendLifecycle {
  /** designator + "-" + a hash of the connection string without secrets: stable when a token rotates. */
  readonly id: string;
  /** The scheme before an optional "+": "ipfs", "helia", later "psa", "cluster". */
  readonly designator: string;
  /** The connection string with every secret masked, safe for logs and answers. */
  readonly label: string;

  /**
   * Connects or starts the node. Idempotent; may be called again after close(). Throws
   * BackendUnavailableError when the node cannot be reached or started.
   */
  open(): Promise<void>;
  /** Releases every resource. Idempotent; never throws for a node already closed. */
  close(): Promise<void>;
  /** Cheap liveness probe: true when the backend answers now. Never throws. */
  ping(signal?: AbortSignal): Promise<boolean>;
}
