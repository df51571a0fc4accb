"""RFC 9162 Merkle trees: the test vectors of Certificate Transparency's reference implementation
(RFC 6962 hashing, the same as RFC 9162 2.1), written out by hand, and proofs that must fail."""

from __future__ import annotations

import hashlib

import pytest

from service.domain import merkle

# the eight leaves of the reference tests, as bytes
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
HASHES = [merkle.leaf_hash(data) for data in LEAVES]
OTHER = merkle.leaf_hash(b"not a leaf of the tree")
# MTH of the first n leaves, n = 1..8
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_the_empty_tree_hashes_to_the_sha256_of_nothing() -> None:
    assert merkle.root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.Compact().root() == merkle.root([])


@pytest.mark.parametrize("size", range(1, 9))
def test_the_root_of_each_prefix_is_the_reference_root(size: int) -> None:
    assert merkle.root(HASHES[:size]).hex() == ROOTS[size - 1]


def test_the_compact_tree_follows_the_reference_roots_leaf_by_leaf() -> None:
    tree = merkle.Compact()
    for size, leaf in enumerate(HASHES, 1):
        tree.append(leaf)
        assert (tree.size, tree.root().hex()) == (size, ROOTS[size - 1])


def test_the_audit_path_of_the_first_leaf_of_eight_is_the_reference_path() -> None:
    assert [p.hex() for p in merkle.inclusion_path(0, HASHES)] == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]


def test_the_third_leaf_of_three_has_the_first_pair_as_its_path() -> None:
    pair = hashlib.sha256(b"\x01" + HASHES[0] + HASHES[1]).digest()
    assert merkle.inclusion_path(2, HASHES[:3]) == [pair]
    assert merkle.root_from_inclusion(2, 3, HASHES[2], [pair]) == bytes.fromhex(ROOTS[2])


@pytest.mark.parametrize("size", range(1, 9))
def test_every_leaf_proves_against_its_root_and_no_other_leaf_does(size: int) -> None:
    root = bytes.fromhex(ROOTS[size - 1])
    for index in range(size):
        path = merkle.inclusion_path(index, HASHES[:size])
        assert merkle.root_from_inclusion(index, size, HASHES[index], path) == root
        other = HASHES[(index + 1) % 8]
        assert merkle.root_from_inclusion(index, size, other, path) != root


def test_an_index_outside_the_tree_or_a_path_too_long_proves_nothing() -> None:
    assert merkle.root_from_inclusion(3, 3, HASHES[0], []) is None
    assert merkle.root_from_inclusion(0, 1, HASHES[0], [HASHES[1]]) is None


def test_the_consistency_proof_from_two_to_three_leaves_is_the_third_leaf() -> None:
    assert merkle.consistency_proof(2, HASHES[:3]) == [HASHES[2]]


@pytest.mark.parametrize("second", range(1, 9))
def test_each_prefix_is_consistent_with_each_larger_tree_and_a_changed_root_is_not(second: int) -> None:
    for first in range(1, second + 1):
        proof = merkle.consistency_proof(first, HASHES[:second])
        old, new = bytes.fromhex(ROOTS[first - 1]), bytes.fromhex(ROOTS[second - 1])
        assert merkle.consistent(first, second, old, new, proof)
        assert not merkle.consistent(first, second, old, OTHER, proof)
        assert not merkle.consistent(first, second, OTHER, new, proof)


def test_the_reference_consistency_proof_from_six_to_eight_leaves() -> None:
    assert [p.hex() for p in merkle.consistency_proof(6, HASHES)] == [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]
