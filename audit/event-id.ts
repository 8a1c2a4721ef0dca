/**
 * The auditors' own rendering of a log's position, byte-for-byte what Ponder 0.17 uses as
 * its event id (its checkpoint): timestamp(10) chainId(16) blockNumber(16)
 * transactionIndex(16) eventType(1, logs = 5) logIndex(16). Written here rather than imported
 * from Ponder so a chain replay trusts nothing of the indexer; a test checks both agree.
 */
export type LogPosition = {
  blockTimestamp: bigint;
  chainId: number;
  blockNumber: bigint;
  transactionIndex: number;
  logIndex: number;
};

/** Ponder's event type digit for logs. */
const LOG_EVENT_TYPE = 5;

export function eventIdOf(position: LogPosition): string {
  return [
    position.blockTimestamp.toString().padStart(10, "0"),
    position.chainId.toString().padStart(16, "0"),
    position.blockNumber.toString().padStart(16, "0"),
    position.transactionIndex.toString().padStart(16, "0"),
    String(LOG_EVENT_TYPE),
    position.logIndex.toString().padStart(16, "0"),
  ].join("");
}
