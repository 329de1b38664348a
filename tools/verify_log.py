#!/usr/bin/python3
"""verify_log.py DIR [--checkpoint FILE] [--key HEX]

An independent verifier of a threadlog log directory, written from docs/FORMAT.md alone
(sections 2-8) by a session that did not read threadlog's sources, to show the document is
enough (SPEC §5); where it was not, FORMAT.md was corrected (2026-11-27). Run by
tests/cli/verify_independent.sh beside `threadlog verify` on a log and on damaged copies.
Needs python3-lmdb and python3-nacl (Debian packages). Prints "ok N events" (exit 0) or "bad event S: reason" for the first bad
event (exit 1). Uses py-lmdb (read-only), PyNaCl (Ed25519) and hashlib's BLAKE2b; its own
strict msgpack decoder (the canonical rules of FORMAT.md §3).
"""
import argparse
import hashlib
import json
import struct
import sys

import lmdb
import nacl.exceptions
import nacl.signing

MIB = 1 << 20


def H(b):
    return hashlib.blake2b(b, digest_size=32).digest()


def u64be(n):
    return struct.pack(">Q", n)


class Corrupt(Exception):
    pass


# ---------------------------------------------------------------- canonical msgpack (§3)
class Nil:
    """nil, distinct from Python None-as-absent."""
    def __repr__(self):
        return "nil"


NIL = Nil()


def valid_utf8(b):
    # Python's strict UTF-8 decoder refuses overlong forms, surrogates, > U+10FFFF, truncation.
    try:
        b.decode("utf-8", "strict")
        return True
    except UnicodeDecodeError:
        return False


class Str(bytes):
    pass


class Bin(bytes):
    pass


class Decoder:
    def __init__(self, data):
        self.d = data
        self.i = 0

    def take(self, n):
        if n > len(self.d) - self.i:  # rule 8
            raise Corrupt("length beyond the end of the event")
        b = self.d[self.i:self.i + n]
        self.i += n
        return b

    def be(self, n):
        return int.from_bytes(self.take(n), "big")

    def value(self, depth):
        if depth > 8:  # rule 6
            raise Corrupt("nesting deeper than 8")
        t = self.take(1)[0]
        if t <= 0x7F:
            return t
        if 0x80 <= t <= 0x8F:
            return self.map(t & 0x0F, depth)
        if 0x90 <= t <= 0x9F:
            return self.array(t & 0x0F, depth)
        if 0xA0 <= t <= 0xBF:
            return self.string(t & 0x1F)
        if t >= 0xE0:  # negative fixint
            return t - 0x100
        if t == 0xC0:
            return NIL
        if t == 0xC2:
            return False
        if t == 0xC3:
            return True
        if t in (0xC4, 0xC5, 0xC6):
            w = {0xC4: 1, 0xC5: 2, 0xC6: 4}[t]
            n = self.be(w)
            if (w == 2 and n <= 0xFF) or (w == 4 and n <= 0xFFFF):
                raise Corrupt("bin length not in its smallest form")
            return Bin(self.take(n))
        if t in (0xCC, 0xCD, 0xCE, 0xCF):
            w = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}[t]
            n = self.be(w)
            lo = {1: 0x80, 2: 0x100, 4: 0x10000, 8: 0x100000000}[w]
            if n < lo:
                raise Corrupt("uint not in its smallest form")
            return n
        if t in (0xD0, 0xD1, 0xD2, 0xD3):
            w = {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}[t]
            n = int.from_bytes(self.take(w), "big", signed=True)
            if n >= 0:
                raise Corrupt("signed encoding of a non-negative value")
            lo = {1: -32, 2: -128, 4: -32768, 8: -(1 << 31)}[w]
            if n >= lo:
                raise Corrupt("int not in its smallest form")
            return n
        if t in (0xD9, 0xDA, 0xDB):
            w = {0xD9: 1, 0xDA: 2, 0xDB: 4}[t]
            n = self.be(w)
            if (w == 1 and n < 32) or (w == 2 and n <= 0xFF) or (w == 4 and n <= 0xFFFF):
                raise Corrupt("str length not in its smallest form")
            return self.string(n)
        if t in (0xDC, 0xDD):
            w = 2 if t == 0xDC else 4
            n = self.be(w)
            if (w == 2 and n <= 15) or (w == 4 and n <= 0xFFFF):
                raise Corrupt("array length not in its smallest form")
            return self.array(n, depth)
        if t in (0xDE, 0xDF):
            w = 2 if t == 0xDE else 4
            n = self.be(w)
            if (w == 2 and n <= 15) or (w == 4 and n <= 0xFFFF):
                raise Corrupt("map length not in its smallest form")
            return self.map(n, depth)
        raise Corrupt("forbidden type byte %02x" % t)  # c1, floats, ext

    def string(self, n):
        b = self.take(n)
        if not valid_utf8(b):
            raise Corrupt("invalid UTF-8")
        return Str(b)

    def array(self, n, depth):
        if n > len(self.d) - self.i:  # every item takes at least one byte (rule 8)
            raise Corrupt("array count beyond the end")
        return [self.value(depth + 1) for _ in range(n)]

    def map(self, n, depth):
        if 2 * n > len(self.d) - self.i:
            raise Corrupt("map count beyond the end")
        out = {}
        prev = None
        for _ in range(n):
            k = self.value(depth + 1)
            if not isinstance(k, Str):
                raise Corrupt("map key not a str")
            k = bytes(k)
            if prev is not None and not (prev < k):  # bytewise ascending and unique
                raise Corrupt("map keys not sorted or not unique")
            prev = k
            out[k.decode()] = self.value(depth + 1)
        return out


def is_uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def short_name(v):
    return isinstance(v, Str) and 1 <= len(v) <= 64 and b"\0" not in v


def decode_event(b):
    """(event dict) or raise Corrupt; follows §3."""
    if len(b) > MIB:
        raise Corrupt("event longer than 1 MiB")
    d = Decoder(b)
    ev = d.value(1)
    if d.i != len(b):
        raise Corrupt("trailing bytes after the event")
    if not isinstance(ev, list) or len(ev) != 9:
        raise Corrupt("not an array of 9 items")
    fmt, seq, ts, prev, actor, kind, schema, project, payload = ev
    if not is_uint(fmt):
        raise Corrupt("format not a uint")
    if fmt != 1:
        raise Corrupt("unsupported_version: format %d" % fmt)
    if not is_uint(seq) or seq < 1:
        raise Corrupt("bad seq")
    if not is_uint(ts):
        raise Corrupt("bad ts")
    if not isinstance(prev, Bin) or len(prev) != 32:
        raise Corrupt("prev not bin 32")
    if not short_name(actor):
        raise Corrupt("bad actor")
    if not short_name(kind):
        raise Corrupt("bad kind")
    if not is_uint(schema) or schema < 1:
        raise Corrupt("bad schema")
    if not (project is NIL or short_name(project)):
        raise Corrupt("bad project")
    if not isinstance(payload, dict):
        raise Corrupt("payload not a map")
    kind_s = bytes(kind).decode()
    if not kind_s.startswith("x."):
        # rule 7: domain events never carry nil except the envelope's project
        def no_nil(v):
            if v is NIL:
                return False
            if isinstance(v, list):
                return all(no_nil(x) for x in v)
            if isinstance(v, dict):
                return all(no_nil(x) for x in v.values())
            return True
        if not no_nil(payload):
            raise Corrupt("nil in a domain payload")
    return dict(seq=seq, ts=ts, prev=bytes(prev), actor=bytes(actor).decode(), kind=kind_s,
                schema=schema, project=project, payload=payload)


# ---------------------------------------------------------------- the verifier (§6)
class Verifier:
    def __init__(self, path):
        self.env = lmdb.open(path, readonly=True, lock=False, max_dbs=64, subdir=True)
        self.bad = {}  # seq -> reason (first reason kept)

    def fail(self, seq, why):
        if seq not in self.bad:
            self.bad[seq] = why

    def run(self, checkpoint=None, pinned=None):
        env = self.env
        with env.begin() as txn:
            def db(name):
                try:
                    return env.open_db(name, txn=txn, create=False)
                except lmdb.NotFoundError:
                    return None
            logdb, metadb, contentdb = db(b"log"), db(b"meta"), db(b"content")
            meta = dict(txn.cursor(metadb).iternext()) if metadb else {}
            if meta.get(b"format") != u64be(1):
                return "unsupported_version or corrupt: meta format is %r" % meta.get(b"format"), None

            events = {}   # seq -> (hash, ts, kind, payload)
            keys = []     # key chain: (introduced at seq, pk)
            expected = 1
            prev_hash = b"\0" * 32
            prev_ts = None
            last = 0
            stop = None   # first missing / out-of-order sequence (check 1)
            commits = []  # (seq, commitment, size)
            erased = set()
            cur = txn.cursor(logdb) if logdb else None
            for k, rec in (cur.iternext() if cur else []):
                if len(k) != 8 or struct.unpack(">Q", k)[0] != expected:
                    # check 1: a missing key names the missing sequence; out of order: the expected
                    self.fail(expected, "log key %s where %d was expected" % (k.hex(), expected))
                    stop = expected
                    break
                seq = expected
                expected += 1
                last = seq
                # check 2
                if len(rec) <= 64 or len(rec) > MIB + 64:
                    self.fail(seq, "record length %d" % len(rec))
                    stop = seq
                    break
                evb, sig = rec[:-64], rec[-64:]
                h = H(evb)
                try:
                    ev = decode_event(evb)
                except Corrupt as e:
                    self.fail(seq, "corrupt event: %s" % e)
                    # its hash still chains (check 3 of the next event uses the stored bytes)
                    prev_hash = h
                    events[seq] = (h, None, None, None)
                    continue
                if ev["seq"] != seq:
                    self.fail(seq, "event seq %d under key %d" % (ev["seq"], seq))
                # check 3
                if ev["prev"] != prev_hash:
                    self.fail(seq, "prev is not the hash of event %d" % (seq - 1))
                # check 4
                if prev_ts is not None and ev["ts"] < prev_ts:
                    self.fail(seq, "ts goes backwards")
                prev_ts = ev["ts"]
                prev_hash = h
                p = ev["payload"]
                # check 5
                if seq == 1:
                    if ev["kind"] != "log.created":
                        self.fail(1, "seq 1 is not log.created")
                    else:
                        pk = p.get("public_key")
                        if p.get("format") != 1 or not isinstance(p.get("format"), int) \
                                or isinstance(p.get("format"), bool):
                            self.fail(1, "genesis format is not 1")
                        if not (isinstance(pk, Bin) and len(pk) == 32):
                            self.fail(1, "genesis public_key not bin 32")
                        else:
                            keys.append((1, bytes(pk)))
                            if meta.get(b"genesis_key") != bytes(pk):
                                self.fail(1, "meta genesis_key differs from the genesis event's")
                        ma = p.get("max_attachment")
                        if not is_uint(ma) or meta.get(b"max_attachment") != u64be(ma):
                            self.fail(1, "meta max_attachment differs from the genesis event's")
                elif ev["kind"] == "log.created":
                    self.fail(seq, "a second log.created")
                # check 6: the signing key is the last one introduced before this event
                signer = keys[-1][1] if keys else None
                if signer is None:
                    self.fail(seq, "no key to check the signature with")
                else:
                    try:
                        nacl.signing.VerifyKey(signer).verify(evb, sig)
                    except nacl.exceptions.BadSignatureError:
                        self.fail(seq, "bad signature")
                if ev["kind"] == "key.rotated":
                    pk = p.get("public_key")
                    if isinstance(pk, Bin) and len(pk) == 32:
                        keys.append((seq, bytes(pk)))
                    else:
                        self.fail(seq, "key.rotated without a 32-byte public_key")
                # check 7 (collect) and check 9 (erasures)
                # content.erased is exempt too (not in FORMAT.md §6 check 7; found by testing
                # `threadlog verify`, confirmed in engine/content_audit.c)
                if not ev["kind"].startswith("x.") and ev["kind"] != "content.erased":
                    for cf, sf in (("body_commit", "body_size"), ("data_commit", "data_size")):
                        c = p.get(cf)
                        if isinstance(c, Bin):
                            if len(c) != 32 or not is_uint(p.get(sf)):
                                self.fail(seq, "%s not 32 bytes or %s missing" % (cf, sf))
                            else:
                                commits.append((seq, bytes(c), p[sf]))
                if ev["kind"] == "content.erased":
                    c = p.get("commitment")
                    if isinstance(c, Bin) and len(c) == 32:
                        erased.add(bytes(c))
                    else:
                        self.fail(seq, "content.erased without a 32-byte commitment")
                events[seq] = (h, ev["ts"], ev["kind"], p)

            # check 8: the head
            if stop is None:
                head = meta.get(b"head")
                chain_end = keys[-1][1] if keys else None
                if head is None:
                    if last >= 1:
                        self.fail(1, "no head record")
                elif len(head) != 80:
                    self.fail(last if last else 1, "head record is %d bytes" % len(head))
                else:
                    hseq, hhash, hts, hkey = (struct.unpack(">Q", head[:8])[0], head[8:40],
                                              struct.unpack(">Q", head[40:48])[0], head[48:])
                    if hseq < last:
                        self.fail(hseq + 1, "event beyond the head (head names %d)" % hseq)
                    elif hseq > last:
                        self.fail(last + 1, "head names %d, the log ends at %d" % (hseq, last))
                    else:
                        if last and (hhash != events[last][0] or hts != events[last][1]):
                            self.fail(last, "head hash/ts differ from the last event's")
                        if last and hkey != chain_end:
                            self.fail(last, "head key is not the key chain's last key")

            # check 7: content still stored must match its commitment
            replica_since = meta.get(b"replica_since")
            replica_since = struct.unpack(">Q", replica_since)[0] if replica_since else None
            missing = []
            for seq, c, size in commits:
                val = txn.get(c, db=contentdb) if contentdb else None
                if val is not None:
                    if len(val) < 32 or H(val) != c or len(val) - 32 != size:
                        self.fail(seq, "stored content does not match its commitment")
                    continue
                # check 9: absent content must have been erased
                if c in erased:
                    continue
                cut = meta.get(b"erased/" + c)
                if cut is not None and len(cut) == 8 and struct.unpack(">Q", cut)[0] > last:
                    continue
                if replica_since is not None and seq >= replica_since:
                    continue
                missing.append((seq, "content deleted without an erasure"))

            # Checks 1-8 (and 7) name the smallest failing sequence. Checks 9, 10 and 11 are
            # stages after them, in that order: a later stage is only reached when every
            # earlier one passed, whatever the sequence numbers (found by testing `threadlog
            # verify`; §6 says "the smallest sequence number that fails any check").
            if self.bad:
                s = min(self.bad)
                return "bad event %d: %s" % (s, self.bad[s]), s
            # check 9
            if missing:
                s, why = min(missing)
                return "bad event %d: %s" % (s, why), s
            # check 10 (the sequence named is not documented; threadlog names 1)
            if pinned is not None and all(pk != pinned for _, pk in keys):
                return "bad event 1: pinned key is not in the key chain", 1
            # check 11 (§7)
            if checkpoint is not None:
                self.check_checkpoint(checkpoint, keys, events, last, stop)
                if self.bad:
                    s = min(self.bad)
                    return "bad event %d: %s" % (s, self.bad[s]), s
            return "ok %d events" % last, None

    def check_checkpoint(self, cp, keys, events, last, stop):
        try:
            seq, hsh, ts = int(cp["seq"]), bytes.fromhex(cp["hash"]), int(cp["ts"])
            key, sig = bytes.fromhex(cp["key"]), bytes.fromhex(cp["signature"])
        except (KeyError, ValueError, TypeError) as e:
            self.fail(1, "checkpoint unreadable: %s" % e)  # not documented
            return
        msg = b"threadlog-checkpoint-v1" + u64be(seq) + hsh + u64be(ts)
        try:
            nacl.signing.VerifyKey(key).verify(msg, sig)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
                nacl.exceptions.TypeError):
            self.fail(seq, "checkpoint signature does not verify with its key")
            return
        if all(pk != key for _, pk in keys):
            self.fail(seq, "checkpoint key is not in the key chain")
            return
        if last < seq:
            self.fail(last + 1, "the log was cut before the checkpoint at %d" % seq)
            return
        current = [pk for at, pk in keys if at <= seq][-1]
        if current != key:
            self.fail(seq, "checkpoint key is not the key current at %d" % seq)
            return
        if events[seq][0] != hsh:
            self.fail(seq, "the log was rewritten at or before the checkpoint")
            return
        if events[seq][1] != ts:
            self.fail(seq, "checkpoint ts differs")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--checkpoint")
    ap.add_argument("--key")
    a = ap.parse_args()
    cp = None
    if a.checkpoint:
        try:
            with open(a.checkpoint) as f:
                cp = json.loads(f.read())
            assert isinstance(cp, dict) and all(x in cp for x in ("seq", "hash", "ts", "key", "signature"))
        except (OSError, ValueError, AssertionError):
            print("invalid_input: the checkpoint is not {seq, hash, ts, key, signature}")
            sys.exit(1)
    pinned = bytes.fromhex(a.key) if a.key else None
    msg, bad = Verifier(a.dir).run(cp, pinned)
    print(msg)
    sys.exit(0 if bad is None and msg.startswith("ok") else 1)


if __name__ == "__main__":
    main()
