// SPDX-License-Identifier: MIT
pragma solidity ^0.8.37;

/// @title StorageRegistry
/// @notice The events that tell Quasar which storage contracts count.
/// @dev Signatures must stay byte-for-byte as in the original Quasar (address NOT indexed),
///      so registries already deployed for it are indexed unchanged:
///      Register   topic0 0xeeda149c76076b34d4b9d8896c2f7efc0d33d1c7b53ea3c5db490d64613f603a
///      Unregister topic0 0x1a9a87235a10fa2f6c7079baa2546a99fac817e63099fe89535f08b9aaa76af7
interface StorageRegistry {
    event Register(address contractAddress);
    event Unregister(address contractAddress);
}
