#!/usr/bin/env python3
"""Independent test vectors for crates/psi, computed with libsodium (through `rbcl`).

Writes crates/psi/tests/data/vectors.txt, one vector a line, whitespace-separated hex:

    hash   <key name> <element hex> <enc(H_k(e)) hex>
    link   <key name> <element hex> <scalar a hex> <scalar b hex> <enc(b·a·H_k(e)) hex> <link id hex>

H_k(e) = ristretto255_from_hash(SHA3-512(L(tag) || L(k) || L(e))), L(s) = u64le(len s) || s,
tag = "blindlink/v1/psi/hash-to-group"; link id = SHA3-256(L("blindlink/v1/psi/link-id") ||
L(k) || enc). libsodium's from_hash is the RFC 9496 one-way map, as curve25519-dalek's.

    python3 -m venv /tmp/venv-psi && /tmp/venv-psi/bin/pip install rbcl
    /tmp/venv-psi/bin/python scripts/psi_vectors.py
"""

import hashlib
import struct
from pathlib import Path

import rbcl


def framed(s: bytes) -> bytes:
    return struct.pack("<Q", len(s)) + s


def hash_to_group(key: str, element: bytes) -> bytes:
    digest = hashlib.sha3_512(
        framed(b"blindlink/v1/psi/hash-to-group") + framed(key.encode()) + framed(element)
    ).digest()
    return rbcl.crypto_core_ristretto255_from_hash(digest)


def link_id(key: str, doubled: bytes) -> bytes:
    return hashlib.sha3_256(
        framed(b"blindlink/v1/psi/link-id") + framed(key.encode()) + doubled
    ).digest()


def scalar(seed: int) -> bytes:
    # A fixed, reduced scalar derived from a small seed (not secret: test vectors only).
    return rbcl.crypto_core_ristretto255_scalar_reduce(hashlib.sha3_512(bytes([seed])).digest())


def main() -> None:
    cases = [
        ("my_number", b"123456789018"),
        ("my_number", b""),
        ("kana+dob+sex", "ヤマダタロウ|19800101|1".encode()),
        ("kanji+dob+postcode", "山田太郎|1980-01-01|1000001".encode()),
        ("k", bytes(range(256))),
    ]
    lines = []
    for key, element in cases:
        lines.append(f"hash {key} {element.hex() or '-'} {hash_to_group(key, element).hex()}")
    for i, (key, element) in enumerate(cases):
        a, b = scalar(2 * i + 1), scalar(2 * i + 2)
        point = hash_to_group(key, element)
        doubled = rbcl.crypto_scalarmult_ristretto255(b, rbcl.crypto_scalarmult_ristretto255(a, point))
        lines.append(
            f"link {key} {element.hex() or '-'} {a.hex()} {b.hex()} {doubled.hex()} "
            f"{link_id(key, doubled).hex()}"
        )
    out = Path(__file__).resolve().parent.parent / "crates/psi/tests/data/vectors.txt"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} vectors to {out}")


if __name__ == "__main__":
    main()
