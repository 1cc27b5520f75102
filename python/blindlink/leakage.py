"""Attacks on record-linkage encodings and the metrics of their success (``blindlink-leakage``).

The data are synthetic (:class:`LinkedFiles`: a victim file whose encodings are attacked and a
reference file the attacker holds in plaintext, with the ground truth); the encodings are made
exactly as a party makes them (:class:`EncodingConfig`). Filters are ``uint8`` arrays, one
filter per row. A guess is ``(candidate indices, confidence)``.

- :func:`key_holder_decode_records`, :func:`key_holder_decode_fields`: the dictionary attack of
  whoever holds the linkage secret (the peer);
- :func:`frequency_attack`, :func:`pattern_mining_attack`: Christen et al. (PAKDD 2017/2018);
- :func:`graph_matching_attack`: Vidanage et al. (CIKM 2020), from similarity graphs alone;
- :func:`attack_score`, :func:`score_links`, :func:`dice`, :func:`link_greedy`: the metrics;
- :func:`run_attacks`, :func:`clk_linkage`, :func:`token_linkage`: one configuration of
  ``blindlink bench leakage`` end to end.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _native
from ._native import EncodingConfig, LinkedFiles

__all__ = [
    "LinkedFiles",
    "EncodingConfig",
    "Guess",
    "BENCH_SECRET",
    "encode",
    "key_holder_decode_records",
    "key_holder_decode_fields",
    "frequency_attack",
    "pattern_mining_attack",
    "similarity_graph",
    "graph_matching_attack",
    "attack_score",
    "dice",
    "link_greedy",
    "score_links",
    "run_attacks",
    "clk_linkage",
    "token_linkage",
    "quasi_identifiers",
]

Guess = Tuple[List[int], float]

#: The fixed key of ``blindlink bench leakage`` (the attacks model who holds a key, not how it
#: was made).
BENCH_SECRET = b"blindlink bench leakage linkage key"


def _flat(filters: Any) -> Tuple[bytes, int]:
    array = np.ascontiguousarray(filters, dtype=np.uint8)
    if array.ndim != 2:
        raise _native.InputError(f"expected a 2-d uint8 array of filters, got {array.ndim}-d")
    return array.tobytes(), array.shape[1]


def _array(result: Tuple[bytearray, int, int]) -> np.ndarray:
    data, count, width = result
    return np.frombuffer(data, dtype=np.uint8).reshape(count, width)


def encode(
    config: EncodingConfig,
    files: LinkedFiles,
    which: str,
    secret: Any,
    blip_seed: Optional[bytes] = None,
) -> np.ndarray:
    """Encodes the ``"victim"`` or ``"reference"`` table of ``files`` as its party would
    (record index = row); ``blip_seed`` (32 bytes) fixes BLIP's flips."""
    return _array(config.encode(files, which, secret, blip_seed))


def key_holder_decode_records(
    files: LinkedFiles, config: EncodingConfig, secret: Any, victim: Any,
    blip_seed: Optional[bytes] = None,
) -> List[Guess]:
    """The key holder's record decode: per victim filter, the nearest reference records."""
    data, width = _flat(victim)
    return _native.key_holder_decode_records(files, config, secret, data, width, blip_seed)


def key_holder_decode_fields(
    files: LinkedFiles, config: EncodingConfig, secret: Any, victim: Any,
    blip_seed: Optional[bytes] = None,
) -> List[Tuple[List[Guess], List[str]]]:
    """The key holder's field decode of a per-field encoding: per field, (guesses, dictionary)."""
    data, width = _flat(victim)
    return _native.key_holder_decode_fields(files, config, secret, data, width, blip_seed)


def frequency_attack(victim: Any, sample: Sequence[Sequence[str]], **params: Any) -> Tuple[List[str], List[Guess]]:
    """The frequency attack: (distinct plaintext values of ``sample``, a guess per filter).
    ``params``: ``q``, ``exact_fields``, ``gap``, ``stop_gap``, ``min_partition``, ``qgrams``, ``max_candidates``."""
    data, width = _flat(victim)
    return _native.frequency_attack(data, width, [list(r) for r in sample], **params)


def pattern_mining_attack(victim: Any, sample: Sequence[Sequence[str]], **params: Any) -> Tuple[List[str], List[Guess]]:
    """The pattern-mining attack, as :func:`frequency_attack`."""
    data, width = _flat(victim)
    return _native.pattern_mining_attack(data, width, [list(r) for r in sample], **params)


def similarity_graph(filters: Any) -> np.ndarray:
    """The dense Dice similarity matrix of the filters (``float32``, diagonal 1)."""
    data, width = _flat(filters)
    return np.asarray(_native.similarity_graph(data, width), dtype=np.float32)


def graph_matching_attack(victim: Any, own: Any, **params: Any) -> List[Guess]:
    """The graph matching attack: the victim's filters against the attacker's own encodings of
    its plaintext; a guess per victim filter. ``params``: ``profile``, ``first_anchors``,
    ``rounds``, ``max_anchors``."""
    vd, vw = _flat(victim)
    od, ow = _flat(own)
    return _native.graph_matching_attack(vd, vw, od, ow, **params)


def attack_score(guesses: Sequence[Guess], m: int, is_right: Callable[[int, int], bool]) -> Dict[str, Any]:
    """Scores guesses naming at most ``m`` candidates; ``is_right(target, candidate)``."""
    return _native.attack_score([(list(c), float(p)) for c, p in guesses], m, is_right)


def dice(a: Any, b: Any) -> float:
    """The Dice similarity of two filters."""
    return _native.dice(np.ascontiguousarray(a, dtype=np.uint8).tobytes(), np.ascontiguousarray(b, dtype=np.uint8).tobytes())


def link_greedy(left: Any, right: Any, threshold: float) -> List[Tuple[int, int]]:
    """Greedy one-to-one links (left, right) with Dice at least ``threshold``."""
    ld, lw = _flat(left)
    rd, rw = _flat(right)
    return _native.link_greedy(ld, lw, rd, rw, threshold)


def score_links(links: Sequence[Tuple[int, int]], true_pairs: Sequence[Tuple[int, int]], same_person: Callable[[int, int], bool]) -> Dict[str, Any]:
    """Precision, recall, F and mislink rate of links (reference, victim)."""
    return _native.score_links(list(links), list(true_pairs), same_person)


def run_attacks(files: LinkedFiles, config: EncodingConfig, secret: Any = BENCH_SECRET, **kwargs: Any) -> List[Tuple[str, Dict[str, Any]]]:
    """The attacks one disclosure allows on one configuration: ``[(attack, score)]`` as the
    rows of ``leakage.csv``. ``kwargs``: ``blip`` (``"fresh"``/``"keyed"``),
    ``encodings_to_key_holder``, ``encodings_outside``, and the graph attack's parameters."""
    return _native.run_attacks(files, config, secret, **kwargs)


def clk_linkage(files: LinkedFiles, config: EncodingConfig, secret: Any = BENCH_SECRET) -> Tuple[float, Dict[str, Any]]:
    """Linkage quality of the encoding: (best threshold, linkage score)."""
    return _native.clk_linkage(files, config, secret)


def token_linkage(files: LinkedFiles, fields: Sequence[int] = (0, 1, 2, 3, 4), q: int = 2) -> Tuple[float, Dict[str, Any]]:
    """Linkage quality of q-gram token sets (``validate``/``fuzzy``): (threshold, score)."""
    return _native.token_linkage(files, list(fields), q)


def quasi_identifiers(locale: str = "ja") -> List[str]:
    """The quasi-identifier columns of ``locale``, in field-index order."""
    return _native.quasi_identifiers(locale)
