#!/usr/bin/env python3
"""Independent golden vectors for crates/protocol (key-check value, schema and parameter
digests), computed with Python's standard library only. Run: python3 scripts/protocol_vectors.py
The printed hex strings are pasted into crates/protocol/src/tests.rs."""
import hashlib
import hmac


def text(s: str) -> bytes:
    raw = s.encode()
    return len(raw).to_bytes(2, "big") + raw


session = bytes([7] * 16)
for role, byte in (("initiator", 1), ("responder", 2)):
    msg = b"blindlink/v1/key-check\x00" + session + bytes([byte])
    print("key-check", role, hmac.new(b"secret", msg, hashlib.sha256).hexdigest())

schema = bytes([2]) + text("name") + text("text") + text("dob") + text("date")
print("schema digest", hashlib.sha256(b"blindlink/v1/schema-digest\x00" + schema).hexdigest())

params = bytes([1]) + text("filter_bits") + text("1024")
print("parameter digest", hashlib.sha256(b"blindlink/v1/parameter-digest\x00" + params).hexdigest())
