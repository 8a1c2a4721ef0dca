// SPDX-License-Identifier: MIT
pragma solidity ^0.8.37;

/// @title DataStore
/// @notice The event every storage contract emits to ask Quasar to pin a CID.
/// @dev The signature must stay byte-for-byte `PinHash(string)` with `cid` NOT indexed:
///      contracts deployed for the original Quasar emit exactly this, and topic0
///      0x6ac5d58c9f1fa0cd3c0efff23b49c6f231e09070e80bb5a8ec87014724a841fd is what the
///      indexer filters on. An indexed string would only log its hash, losing the CID.
interface DataStore {
    event PinHash(string cid);
}
