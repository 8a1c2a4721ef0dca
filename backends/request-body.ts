import type http from "node:http";

/**
 * Writes one chunk of a streamed request body, waiting for `drain` when the socket is full,
 * so a large body (an upload, a CAR) never buffers whole in memory. Rejects when the request
 * closes first. Shared by the Kubo RPC and IPFS Cluster REST clients.
 */
export function writeRequestChunk(
  req: http.ClientRequest,
  chunk: Uint8Array | string,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (req.destroyed) {
      reject(new Error("request closed while sending its body"));
      return;
    }
    if (req.write(chunk)) {
      resolve();
      return;
    }
    const onDrain = () => {
      req.off("close", onClose);
      resolve();
    };
    const onClose = () => {
      req.off("drain", onDrain);
      reject(new Error("request closed while sending its body"));
    };
    req.once("drain", onDrain);
    req.once("close", onClose);
  });
}
