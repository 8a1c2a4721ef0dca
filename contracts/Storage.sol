// SPDX-License-Identifier: MIT
pragma solidity ^0.8.37;

import {DataStore} from "./DataStore.sol";

/// @title Storage
/// @notice A demo storage contract: records CIDs under keys and asks Quasar to pin them.
/// @dev Writing is limited to the deployer (the owner), mirroring the role that guarded
///      registerData in the production Aragon app; the demo and the benchmarks write from
///      the deploying account. registerData(bytes32,string) keeps the original selector
///      0x49b29bd6; getRegisteredData(bytes32) is 0x4f03f391. CIDs are not validated on
///      chain: Quasar validates them off chain and must survive garbage here, so tests can
///      emit invalid ones on purpose.
contract Storage is DataStore {
    /// @notice The caller is not the owner.
    error NotOwner(address caller);

    /// @notice The only account allowed to write.
    address public immutable owner;

    mapping(bytes32 => string) private _data;

    constructor() {
        owner = msg.sender;
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    /// @notice Stores `cid` under `key` (replacing any previous value) and emits PinHash(cid).
    function registerData(bytes32 key, string calldata cid) external onlyOwner {
        _data[key] = cid;
        emit PinHash(cid);
    }

    /// @notice The CID last stored under `key`, or "" if none.
    function getRegisteredData(bytes32 key) external view returns (string memory) {
        return _data[key];
    }

    /// @notice Emits one PinHash per item, in order, without storing anything: a cheap way
    ///         for load tests and benchmarks to produce many pin requests in one transaction.
    function pinMany(string[] calldata cids) external onlyOwner {
        for (uint256 i = 0; i < cids.length; ++i) {
            emit PinHash(cids[i]);
        }
    }
}
