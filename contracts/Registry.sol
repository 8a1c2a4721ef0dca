// SPDX-License-Identifier: MIT
pragma solidity ^0.8.37;

import {StorageRegistry} from "./StorageRegistry.sol";

/// @title Registry
/// @notice Decides which storage contracts' PinHash events Quasar honours.
/// @dev The original Registry let anyone register a contract and so obtain permanent
///      pinning at the operator's expense; here only the owner may change the set.
///      Function selectors match the original: registerContract(address) 0x22a5dde4,
///      unregisterContract(address) 0xfac2c621.
///
///      Duplicate calls revert instead of being silently accepted: registering an already
///      registered contract reverts with AlreadyRegistered, unregistering a contract that is
///      not registered reverts with NotRegistered. That way every Register/Unregister event
///      in the log is a real change of state, which keeps the indexer's derivation simple.
///      Zero addresses are refused. Addresses without code are accepted on purpose: a
///      storage contract may be registered before it is deployed (e.g. with CREATE2).
contract Registry is StorageRegistry {
    /// @notice Emitted at construction (from the zero address) and on every transfer.
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    /// @notice The caller is not the owner.
    error NotOwner(address caller);
    /// @notice The zero address cannot be an owner or a storage contract.
    error ZeroAddress();
    /// @notice The contract is already registered; nothing changed.
    error AlreadyRegistered(address contractAddress);
    /// @notice The contract is not registered; nothing changed.
    error NotRegistered(address contractAddress);

    address private _owner;
    mapping(address => bool) private _registered;

    constructor() {
        _owner = msg.sender;
        emit OwnershipTransferred(address(0), msg.sender);
    }

    modifier onlyOwner() {
        if (msg.sender != _owner) revert NotOwner(msg.sender);
        _;
    }

    /// @notice The only account allowed to register and unregister storage contracts.
    function owner() external view returns (address) {
        return _owner;
    }

    /// @notice Hands the registry to another account. The zero address is refused so the
    ///         registry can never be left without an owner by mistake.
    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        address previous = _owner;
        _owner = newOwner;
        emit OwnershipTransferred(previous, newOwner);
    }

    /// @notice Starts honouring PinHash events of `contractAddress`.
    function registerContract(address contractAddress) external onlyOwner {
        if (contractAddress == address(0)) revert ZeroAddress();
        if (_registered[contractAddress]) revert AlreadyRegistered(contractAddress);
        _registered[contractAddress] = true;
        emit Register(contractAddress);
    }

    /// @notice Stops honouring PinHash events of `contractAddress`; Quasar releases its pins.
    function unregisterContract(address contractAddress) external onlyOwner {
        if (!_registered[contractAddress]) revert NotRegistered(contractAddress);
        _registered[contractAddress] = false;
        emit Unregister(contractAddress);
    }

    /// @notice Whether `contractAddress` is currently registered.
    function isRegistered(address contractAddress) external view returns (bool) {
        return _registered[contractAddress];
    }
}
