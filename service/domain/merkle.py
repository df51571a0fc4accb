"""Merkle trees over a writer's chain, exactly as RFC 9162 section 2.1 defines them.  Pure.

Leaf ``i`` of writer W's tree is the chain hash (``service.domain.record.chain_hash``, as its 32
bytes) of W's record ``seq = i + 1``; hashes are SHA-256 with the RFC's domain separation::

    leaf hash = SHA-256(0x00 || chain hash)        node hash = SHA-256(0x01 || left || right)

``root`` is MTH (2.1.1), ``inclusion_path`` is PATH (2.1.3.1), ``consistency_proof`` is PROOF
(2.1.4.1); ``root_from_inclusion`` and ``consistent`` are the verification algorithms of
2.1.3.2 and 2.1.4.2, step for step.  ``Compact`` keeps the perfect subtrees of a growing tree
(O(log n) hashes), so the signer never holds every leaf.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}): the root of a tree of no leaves


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of the given leaf hashes."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(root(leaves[:k]), root(leaves[k:]))


def inclusion_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the audit path of leaf ``index`` in the tree of ``leaves``, leaf's sibling first."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"leaf {index} is not in a tree of {n} leaves")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return [*inclusion_path(index, leaves[:k]), root(leaves[k:])]
    return [*inclusion_path(index - k, leaves[k:]), root(leaves[:k])]


def consistency_proof(first: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]): that the tree of the first ``first`` leaves is a prefix of the tree of ``leaves``."""
    if not 0 < first <= len(leaves):
        raise ValueError(f"no consistency proof from {first} to {len(leaves)} leaves")
    return _subproof(first, leaves, True)


def _subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], whole), root(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root(leaves[:k])]


def root_from_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """RFC 9162 2.1.3.2: the root ``path`` leads to from leaf ``index`` of a tree of ``size``; None
    when the path cannot be one of such a tree (then the proof fails whatever the root)."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def consistent(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 2.1.4.2: whether ``proof`` shows the tree of ``first`` leaves (``first_root``) is a prefix
    of the tree of ``second`` leaves (``second_root``).  Equal sizes need an empty proof and equal roots;
    an empty first tree is a prefix of any."""
    if first == 0 or first == second:
        return not proof and (first != second or first_root == second_root)
    if not 0 < first < second or not proof:
        return False
    path = [first_root, *proof] if first & (first - 1) == 0 else list(proof)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_root and sr == second_root and sn == 0


class Compact:
    """A growing tree kept as the roots of its perfect subtrees, largest first: appending a leaf and
    taking the root cost O(log n) hashes, so the signer follows its chain without holding it."""

    def __init__(self) -> None:
        self.size = 0
        self._peaks: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        self._peaks.append(leaf)
        size = self.size
        while size & 1:  # the new leaf completes a perfect subtree as often as size ends in 1 bits
            right = self._peaks.pop()
            self._peaks[-1] = node_hash(self._peaks[-1], right)
            size >>= 1
        self.size += 1

    def root(self) -> bytes:
        """MTH of the leaves so far: the peaks folded from the smallest (rightmost) up."""
        if not self._peaks:
            return EMPTY_ROOT
        r = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            r = node_hash(peak, r)
        return r
