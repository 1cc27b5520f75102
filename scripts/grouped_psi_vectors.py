#!/usr/bin/env python3
"""Independent test vectors for grouped PSI (crates/psi/src/grouped), computed with libsodium
(through `rbcl`).

Writes crates/psi/tests/data/grouped_vectors.txt, one vector a line, whitespace-separated:

    grouped <session hex> <label hex> <occurrence> <token hex> <enc(H(session, label, occ, token)) hex>

("-" stands for empty bytes.) H = ristretto255_from_hash(SHA3-512(L(tag) || session ||
L(label) || u64le(occurrence) || L(token))), L(s) = u64le(len s) || s,
tag = "blindlink/v1/psi/grouped", session = the 16 session-id bytes. libsodium's from_hash is
the RFC 9496 one-way map, as curve25519-dalek's.

    python3 -m venv /tmp/venv-grouped-psi && /tmp/venv-grouped-psi/bin/pip install rbcl
    /tmp/venv-grouped-psi/bin/python scripts/grouped_psi_vectors.py
"""

import hashlib
import struct
from pathlib import Path

import rbcl


def framed(s: bytes) -> bytes:
    return struct.pack("<Q", len(s)) + s


def grouped_hash(session: bytes, label: bytes, occurrence: int, token: bytes) -> bytes:
    assert len(session) == 16
    digest = hashlib.sha3_512(
        framed(b"blindlink/v1/psi/grouped")
        + session
        + framed(label)
        + struct.pack("<Q", occurrence)
        + framed(token)
    ).digest()
    return rbcl.crypto_core_ristretto255_from_hash(digest)


def main() -> None:
    session = bytes(range(16))
    other = b"\xff" * 16
    cases = [
        (session, b"pair 0 / kana_name", 0, "ヤマ".encode()),
        (session, b"pair 0 / kana_name", 1, "ヤマ".encode()),  # the second copy: another point
        (session, b"pair 1 / kana_name", 0, "ヤマ".encode()),  # another pair: another point
        (other, b"pair 0 / kana_name", 0, "ヤマ".encode()),  # another session: another point
        (session, b"pair 0 / dob", 0, b"1980-01-01"),
        (session, b"", 0, b""),
        (session, b"a", 0, b"bc"),  # label/token boundary: differs from the next
        (session, b"ab", 0, b"c"),
        (session, b"x" * 300, 2**40, bytes(range(256))),
    ]
    lines = []
    for sid, label, occurrence, token in cases:
        point = grouped_hash(sid, label, occurrence, token)
        lines.append(
            f"grouped {sid.hex()} {label.hex() or '-'} {occurrence} {token.hex() or '-'} {point.hex()}"
        )
    out = Path(__file__).resolve().parent.parent / "crates/psi/tests/data/grouped_vectors.txt"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} vectors to {out}")


if __name__ == "__main__":
    main()
