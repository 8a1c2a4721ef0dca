import { ponder } from "ponder:registry";
import { event as eventTable } from "ponder:schema";
import type { Hex } from "../events.js";
import { type LogMeta, pinHashRow, registrationRow } from "./rows.js";

/**
 * Handlers only insert, keyed by Ponder's event id: a replayed event finds its row and
 * does nothing; a reorged one is removed by Ponder itself.
 */

type PonderEvent = {
  id: string;
  block: { number: bigint; hash: Hex; timestamp: bigint };
  transaction: { hash: Hex };
  log: { logIndex: number; address: Hex };
};

function meta(event: PonderEvent, chainId: number): LogMeta {
  return {
    id: event.id,
    chainId,
    blockNumber: event.block.number,
    blockHash: event.block.hash,
    blockTimestamp: event.block.timestamp,
    transactionHash: event.transaction.hash,
    logIndex: event.log.logIndex,
    contract: event.log.address,
  };
}

ponder.on("Registry:Register", async ({ event, context }) => {
  await context.db
    .insert(eventTable)
    .values(registrationRow(meta(event, context.chain.id), "register", event.args.contractAddress))
    .onConflictDoNothing();
});

ponder.on("Registry:Unregister", async ({ event, context }) => {
  await context.db
    .insert(eventTable)
    .values(
      registrationRow(meta(event, context.chain.id), "unregister", event.args.contractAddress),
    )
    .onConflictDoNothing();
});

ponder.on("Storage:PinHash", async ({ event, context }) => {
  await context.db
    .insert(eventTable)
    .values(pinHashRow(meta(event, context.chain.id), event.args.cid))
    .onConflictDoNothing();
});
