#!/usr/bin/env python3
"""format_vectors.py — the golden vectors of docs/FORMAT.md, rebuilt from the document alone.

An independent encoder of threadlog's canonical event format (docs/FORMAT.md, sections 3-8):
its own minimal msgpack writer, hashlib's BLAKE2b and an Ed25519 from PyNaCl or the
`cryptography` package. It shares no code with threadlog, so when the bytes, hashes and
signatures it prints equal the ones tests/test_codec_golden.c gets from the C encoder, the
document is enough to reproduce the format.

usage: format_vectors.py             print the vectors
       format_vectors.py --check DOC exit 0 when every vector appears in DOC (white space
                                     ignored), 1 naming the first that does not; 77 when no
                                     Ed25519 implementation is installed
"""
import hashlib
import struct
import sys


def ed25519_signer(seed):
    """(public key, sign function) for a 32-byte seed, from whichever library is present."""
    try:
        import nacl.signing
        key = nacl.signing.SigningKey(seed)
        return bytes(key.verify_key), lambda m: key.sign(m).signature
    except ImportError:
        pass
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    key = Ed25519PrivateKey.from_private_bytes(seed)
    pk = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return pk, key.sign


# ---- canonical msgpack, the smallest encoding of each value (FORMAT.md §3)
def uint(n):
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return b"\xcc" + bytes([n])
    if n < 0x10000:
        return b"\xcd" + struct.pack(">H", n)
    if n < 0x100000000:
        return b"\xce" + struct.pack(">I", n)
    return b"\xcf" + struct.pack(">Q", n)


def text(s):
    b = s.encode("utf-8")
    n = len(b)
    if n < 32:
        return bytes([0xA0 | n]) + b
    if n < 0x100:
        return b"\xd9" + bytes([n]) + b
    if n < 0x10000:
        return b"\xda" + struct.pack(">H", n) + b
    return b"\xdb" + struct.pack(">I", n) + b


def binary(b):
    n = len(b)
    if n < 0x100:
        return b"\xc4" + bytes([n]) + b
    if n < 0x10000:
        return b"\xc5" + struct.pack(">H", n) + b
    return b"\xc6" + struct.pack(">I", n) + b


def array(items):
    assert len(items) < 16
    return bytes([0x90 | len(items)]) + b"".join(items)


def mapping(fields):
    """fields: {key: encoded value}; keys sorted by their UTF-8 bytes, unique by construction."""
    keys = sorted(fields, key=lambda k: k.encode("utf-8"))
    assert len(keys) < 16
    return bytes([0x80 | len(keys)]) + b"".join(text(k) + fields[k] for k in keys)


def event(seq, ts, prev, actor, kind, project, payload):
    return array([uint(1), uint(seq), uint(ts), binary(prev), text(actor), text(kind), uint(1),
                  text(project) if project is not None else b"\xc0", mapping(payload)])


def H(b):
    return hashlib.blake2b(b, digest_size=32).digest()


def vectors():
    pk1, sign1 = ed25519_signer(bytes(range(0x00, 0x20)))
    pk2, sign2 = ed25519_signer(bytes(range(0x20, 0x40)))
    ts0 = 1700000000000000
    salt = bytes(range(0x80, 0xA0))
    commit = H(salt + b"Tomorrow")
    e1 = event(1, ts0, bytes(32), "@operator", "log.created", None,
               {"format": uint(1), "public_key": binary(pk1), "max_attachment": uint(26214400),
                "max_body": uint(65536)})
    e2 = event(2, ts0 + 123456, H(e1), "sam", "message.sent", "o-1",
               {"id": text("m-2"), "channel": text("chat"), "topic": text("t-1"),
                "body_commit": binary(commit), "body_size": uint(8),
                "attachments": array([text("a-1")]), "request": binary(b"\x52" * 32)})
    e3 = event(3, ts0 + 200000, H(e2), "@operator", "key.rotated", None, {"public_key": binary(pk2)})
    e4 = event(4, ts0 + 300000, H(e3), "alice", "message.read", "o-1", {"message": text("m-2")})
    out = [("key 1 public", pk1), ("key 2 public", pk2)]
    for i, (e, sign) in enumerate([(e1, sign1), (e2, sign1), (e3, sign1), (e4, sign2)], 1):
        out += [("event %d bytes" % i, e), ("event %d hash" % i, H(e)), ("event %d signature" % i, sign(e))]
    out.append(("content commitment", commit))
    message = b"threadlog-checkpoint-v1" + struct.pack(">Q", 4) + H(e4) + struct.pack(">Q", ts0 + 300000)
    out += [("checkpoint message", message), ("checkpoint signature", sign2(message))]
    return out


def main(argv):
    try:
        vs = vectors()
    except ImportError:
        print("format_vectors: no Ed25519 implementation (PyNaCl or cryptography): skipped")
        return 77
    if len(argv) == 3 and argv[1] == "--check":
        doc = "".join(open(argv[2], encoding="utf-8").read().split()).lower()
        for name, value in vs:
            if value.hex() not in doc:
                print("format_vectors: %s is not in %s: %s" % (name, argv[2], value.hex()))
                return 1
        print("format_vectors: %d vectors rebuilt from the document, all in %s" % (len(vs), argv[2]))
        return 0
    if len(argv) != 1:
        print(__doc__.strip().split("\n\n")[1])
        return 2
    for name, value in vs:
        print("%-22s %s" % (name, value.hex()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
