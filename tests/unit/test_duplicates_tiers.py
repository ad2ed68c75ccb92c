"""The duplicate rules on generated arrays: each tier finds its pairs and keeps look-alikes apart."""

from __future__ import annotations

import numpy as np

from indexer.duplicates.scan import choose_keeper
from indexer.duplicates.tiers import (
    DuplicateGroup,
    Member,
    Rules,
    Signer,
    band_pairs,
    components,
    document_pairs,
    identical_groups,
    same_picture_pairs,
    shingle_hashes,
    similar_shot_pairs,
    star_groups,
)


def _unit(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _flip(h: int, bits: list[int]) -> int:
    for b in bits:
        h ^= 1 << b
    return h


def test_identical_groups_by_content_hash_only() -> None:
    assert identical_groups(["a", "b", "a", "", "", "c", "b"]) == [[0, 2], [1, 6]]


def test_components_and_star_groups() -> None:
    assert components(5, [(0, 1), (1, 2), (3, 4)]) == [[0, 1, 2], [3, 4]]
    # A hub 0 with a chain 3-4 hanging off it: 4 does not match the hub, so it stays out.
    groups = star_groups(5, [(0, 1), (0, 2), (0, 3), (3, 4)])
    assert groups[0] == [0, 1, 2, 3] and [4] not in groups


def test_band_pairs_find_every_pair_within_three_bits_without_comparing_all() -> None:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 2**63, 200, dtype=np.uint64)
    near = np.array([_flip(int(h), list(rng.choice(64, 3, replace=False))) for h in base[:50]], np.uint64)
    hashes = np.concatenate([base, near])
    pairs = {tuple(p) for p in band_pairs(hashes).tolist()}
    for i in range(50):
        assert (i, 200 + i) in pairs
    assert len(pairs) < 250 * 249 // 2 // 20  # far fewer candidates than all pairs


def test_turned_copy_is_found_through_its_turned_hash() -> None:
    rules = Rules()
    upright = np.array([0x1234_5678_9ABC_DEF0, 0x0F0F_F0F0_AAAA_5555, 0x1111_2222_3333_4444], np.uint64)
    turned = np.zeros((3, 3), np.uint64)
    turned[0] = [0xFFFF_0000_FFFF_0000, 0x0, 0x1]
    turned[1] = [0x1234_5678_9ABC_DEF1, 0x2, 0x3]  # item 1 turned by 90° looks like item 0
    turned[2] = [0x5, 0x6, 0x7]
    vectors = np.ones((3, 4), np.float32) / 2
    pairs, bits, _ = same_picture_pairs(upright, turned, vectors, np.ones(3, bool), rules)
    assert pairs.tolist() == [[0, 1]] and bits.tolist() == [1]


def test_same_picture_needs_the_image_model_to_agree() -> None:
    rng = np.random.default_rng(2)
    hashes = np.array([0xABCD_EF01_2345_6789, _flip(0xABCD_EF01_2345_6789, [3, 17])], np.uint64)
    vectors = _unit(rng, 2)  # two unrelated pictures with hashes that happen to be close
    pairs, _bits, _ = same_picture_pairs(hashes, None, vectors, np.ones(2, bool), Rules())
    assert len(pairs) == 0
    vectors[1] = vectors[0]
    pairs, bits, sims = same_picture_pairs(hashes, None, vectors, np.ones(2, bool), Rules())
    assert pairs.tolist() == [[0, 1]] and bits.tolist() == [2] and sims[0] > 0.99


def test_similar_shots_need_closeness_in_time() -> None:
    rng = np.random.default_rng(3)
    scene = _unit(rng, 1)[0]
    vectors = np.stack([scene, scene * 0.98 + _unit(rng, 1)[0] * 0.1, scene, _unit(rng, 1)[0]])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    times = np.array([0.0, 5.0, 10 * 86400.0, 7.0])  # item 2: the same scene ten days later
    pairs, sims = similar_shot_pairs(times, vectors, np.ones(4, bool), Rules())
    assert pairs.tolist() == [[0, 1]] and sims[0] >= Rules().burst_clip


def test_similar_shots_over_many_photos_compare_only_within_windows() -> None:
    rng = np.random.default_rng(4)
    n = 3000
    vectors = _unit(rng, n, 32)
    times = np.arange(n) * 3600.0  # one photo an hour: nothing is within ten minutes of another
    vectors[1] = vectors[0]
    times[1] = times[0] + 30
    pairs, _ = similar_shot_pairs(times, vectors, np.ones(n, bool), Rules(), block=256)
    assert pairs.tolist() == [[0, 1]]


def _doc(words: list[str]) -> str:
    return " ".join(words)


def test_documents_share_text_across_forms_and_look_alikes_stay_apart() -> None:
    rng = np.random.default_rng(5)
    vocab = [f"w{i}" for i in range(300)]
    original = [vocab[i] for i in rng.integers(0, 300, 600)]
    edited = list(original)
    for i in rng.choice(600, 20, replace=False):
        edited[i] = "changed"
    other = [vocab[i] for i in rng.integers(0, 300, 600)]  # the same words, another text
    signer = Signer(64)
    texts = [
        [_doc(original[:300]), _doc(original[300:])],  # passages cut one way
        [_doc(original[:150]), _doc(original[150:])],  # and another (a PDF of the same text)
        [_doc(edited)],
        [_doc(other)],
    ]
    sigs = []
    for passages in texts:
        sig = signer.sign(np.zeros(0, np.uint64))
        for p in passages:
            sig = np.minimum(sig, signer.sign(shingle_hashes([p])))
        sigs.append(sig)
    pairs, share = document_pairs(np.array(sigs), Rules())
    found = {tuple(p) for p in pairs.tolist()}
    assert {(0, 1), (0, 2), (1, 2)} <= found
    assert not any(3 in p for p in found)
    assert share.min() >= 0.5


def test_keeper_rules_preferred_folder_then_resolution_then_oldest() -> None:
    members = [
        Member("/a/small.jpg", 100, 10.0, "h1", "image", 100, 100),
        Member("/b/big.jpg", 90, 20.0, "h2", "image", 400, 300),
        Member("/keep/mid.jpg", 80, 30.0, "h3", "image", 200, 150),
    ]
    group = DuplicateGroup("resaved", "rule", list(members))
    choose_keeper(group, [])
    assert group.members[group.keeper].path == "/b/big.jpg" and "resolution" in group.keeper_why
    assert group.reclaimable == 180
    choose_keeper(group, ["/keep"])
    assert group.members[group.keeper].path == "/keep/mid.jpg" and "preferred" in group.keeper_why
    docs = DuplicateGroup("document", "rule", [Member("/x/new.pdf", 5, 50.0, "a"), Member("/x/old.docx", 5, 5.0, "b")])
    choose_keeper(docs, [])
    assert docs.members[docs.keeper].path == "/x/old.docx" and docs.keeper_why == "Oldest"
