# pragma version 0.4.3
"""
@title Anchor
@notice Stores Merkle roots of batches of EPCIS event hashes, each with the time of the block
        that anchored it. Only allow-listed anchorers may anchor; a root is anchored once.
"""

event Anchored:
    root: indexed(bytes32)
    count: uint256
    anchorer: address
    timestamp: uint256

event AnchorerSet:
    anchorer: indexed(address)
    allowed: bool

owner: public(address)
is_anchorer: public(HashMap[address, bool])
anchored: HashMap[bytes32, uint256]


@deploy
def __init__():
    self.owner = msg.sender
    self.is_anchorer[msg.sender] = True
    log AnchorerSet(anchorer=msg.sender, allowed=True)


@external
def set_anchorer(anchorer: address, allowed: bool):
    """
    @notice Add or remove an address from the anchorers' allow-list (owner only).
    """
    assert msg.sender == self.owner, "not owner"
    self.is_anchorer[anchorer] = allowed
    log AnchorerSet(anchorer=anchorer, allowed=allowed)


@external
def anchor(root: bytes32, count: uint256):
    """
    @notice Record a Merkle root of `count` event hashes at this block's timestamp.
    """
    assert self.is_anchorer[msg.sender], "not anchorer"
    assert self.anchored[root] == 0, "already anchored"
    assert count > 0, "empty batch"
    self.anchored[root] = block.timestamp
    log Anchored(root=root, count=count, anchorer=msg.sender, timestamp=block.timestamp)


@view
@external
def anchored_at(root: bytes32) -> uint256:
    """
    @notice Block timestamp at which `root` was anchored, or 0 if it never was.
    """
    return self.anchored[root]
