import { NonRetryableError, RetryableError } from "@/core/errors.js";

/** The chain's RPC failed or answered something a replay cannot use. */
export class ReplayRpcError extends RetryableError {
  override name = "ReplayRpcError";
}

/** The replay was asked something impossible (a block above the head, an unknown chain…). */
export class ReplayInputError extends NonRetryableError {
  override name = "ReplayInputError";
}
