#!/usr/bin/env python3
"""verify_export.py -- check a threadlog export without trusting threadlog.

An independent verifier for `threadlog export` (docs/EXPORT.md). It imports nothing of
threadlog: the Python standard library (json, base64, hashlib's BLAKE2b) and PyNaCl for
Ed25519 (Debian: python3-nacl). Its msgpack decoder is its own, written from docs/FORMAT.md,
and strict: it accepts only the canonical encoding threadlog writes.

What it checks, for every event line:
  - "bytes" (base64) decode to exactly one canonical msgpack array of nine items
    [format=1, seq, ts, prev (bin 32), actor, kind, schema, project|nil, payload map],
    and every decoded field equals the line's (seq, ts, prev, actor, kind, schema, project,
    payload with bin rendered as lowercase hex), and "hash" is BLAKE2b-256 of the bytes;
  - the Ed25519 signature over the bytes, by the key the key chain says was current at that
    sequence (the chain: the genesis key, then each key.rotated event -- signed by the old
    key -- hands over to the key it names; all carried whole in the header); the line's
    "key" must be that key. With --key, the pinned key must be in the chain;
  - sequence order: strictly increasing; for a whole-log export, exactly 1, 2, 3, ... with
    each event's prev equal to the BLAKE2b-256 of the previous event's bytes, ending at the
    header's head; times never decrease;
  - every commitment (a bin *_commit of the payload, not an extension's) is 32 bytes with an
    unsigned *_size, and every content present matches it: BLAKE2b-256(salt || content) equals
    the payload's *_commit and the length its *_size; "erased" content is reported, not failed,
    when a content.erased event of the export (or, for a cut copy, the header's
    cut_erasures) names its commitment -- content dropped without an erasure fails;
  - the trailer's count, so a cut export is noticed;
  - with --checkpoint FILE: the checkpoint's signature, its key being in the chain, and the
    exported event at its sequence having its hash (a rewritten history is refused).

Exit status: 0 verified; 1 the export fails (the first bad sequence number is named);
2 usage or unreadable input.
"""
import argparse
import base64
import binascii
import hashlib
import json
import sys

try:
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey
except ImportError:  # pragma: no cover
    sys.stderr.write("verify_export.py needs PyNaCl (Debian: apt-get install python3-nacl)\n")
    sys.exit(2)

FORMAT_VERSION = 1
CHECKPOINT_CONTEXT = b"threadlog-checkpoint-v1"
COMMITS = {"body_commit": "body_size", "data_commit": "data_size"}
MAX_DEPTH = 8


class Bad(Exception):
    """The export fails verification at seq (None: before any event)."""

    def __init__(self, seq, why):
        super().__init__(why)
        self.seq = seq
        self.why = why


# ---------------------------------------------------------------- msgpack, canonical only

class Decoder:
    """A strict msgpack decoder: nil, bool, int, str, bin, array, map -- each in the
    smallest encoding, map keys strings in strictly ascending byte order. No float, no ext."""

    def __init__(self, data):
        self.b = data
        self.i = 0

    def take(self, n):
        if n > len(self.b) - self.i:
            raise ValueError("truncated")
        out = self.b[self.i:self.i + n]
        self.i += n
        return out

    def uint(self, width):
        return int.from_bytes(self.take(width), "big")

    def value(self, depth=1):
        if depth > MAX_DEPTH:
            raise ValueError("nested too deeply")
        t = self.take(1)[0]
        if t <= 0x7F:
            return t
        if t >= 0xE0:
            return t - 0x100
        if 0xA0 <= t <= 0xBF:
            return self.string(t & 0x1F)
        if 0x90 <= t <= 0x9F:
            return self.array(t & 0x0F, depth)
        if 0x80 <= t <= 0x8F:
            return self.map(t & 0x0F, depth)
        if t == 0xC0:
            return None
        if t in (0xC2, 0xC3):
            return t == 0xC3
        widths = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
        if t in widths:
            w = widths[t]
            v = self.uint(w)
            if v < {1: 0x80, 2: 0x100, 4: 0x10000, 8: 0x100000000}[w]:
                raise ValueError("integer not in its smallest encoding")
            return v
        swidths = {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
        if t in swidths:
            w = swidths[t]
            v = int.from_bytes(self.take(w), "big", signed=True)
            if v >= {1: -32, 2: -128, 4: -32768, 8: -2147483648}[w]:
                raise ValueError("integer not in its smallest encoding")
            return v
        if t in (0xD9, 0xDA, 0xDB):
            w = {0xD9: 1, 0xDA: 2, 0xDB: 4}[t]
            n = self.uint(w)
            if n < {1: 32, 2: 0x100, 4: 0x10000}[w]:
                raise ValueError("string length not in its smallest encoding")
            return self.string(n)
        if t in (0xC4, 0xC5, 0xC6):
            w = {0xC4: 1, 0xC5: 2, 0xC6: 4}[t]
            n = self.uint(w)
            if n < {1: 0, 2: 0x100, 4: 0x10000}[w]:
                raise ValueError("bin length not in its smallest encoding")
            return bytes(self.take(n))
        if t in (0xDC, 0xDD):
            n = self.uint(2 if t == 0xDC else 4)
            if n < (16 if t == 0xDC else 0x10000):
                raise ValueError("array count not in its smallest encoding")
            return self.array(n, depth)
        if t in (0xDE, 0xDF):
            n = self.uint(2 if t == 0xDE else 4)
            if n < (16 if t == 0xDE else 0x10000):
                raise ValueError("map count not in its smallest encoding")
            return self.map(n, depth)
        raise ValueError("type byte 0x%02x is not used by threadlog" % t)

    def string(self, n):
        return self.take(n).decode("utf-8")  # strict: invalid UTF-8 raises

    def array(self, n, depth):
        return [self.value(depth + 1) for _ in range(n)]

    def map(self, n, depth):
        out = {}
        last = None
        for _ in range(n):
            k = self.value(depth + 1)
            if not isinstance(k, str):
                raise ValueError("map key is not a string")
            kb = k.encode("utf-8")
            if last is not None and kb <= last:
                raise ValueError("map keys not in strictly ascending order")
            last = kb
            out[k] = self.value(depth + 1)
        return out


MAX_EVENT = 1 << 20


def name_ok(s, nil_ok=False):
    """actor, kind, project: 1-64 bytes of UTF-8 without NUL (project may be nil)."""
    if s is None:
        return nil_ok
    return isinstance(s, str) and 1 <= len(s.encode("utf-8")) <= 64 and "\x00" not in s


def holds_nil(v):
    if v is None:
        return True
    if isinstance(v, list):
        return any(holds_nil(x) for x in v)
    if isinstance(v, dict):
        return any(holds_nil(x) for x in v.values())
    return False


def decode_event(data):
    if len(data) > MAX_EVENT:
        raise ValueError("event longer than 1 MiB")
    d = Decoder(data)
    ev = d.value()
    if d.i != len(data):
        raise ValueError("trailing bytes after the event")
    if not isinstance(ev, list) or len(ev) != 9:
        raise ValueError("not an array of 9 items")
    fmt, seq, ts, prev, actor, kind, schema, project, payload = ev
    if fmt != FORMAT_VERSION:
        raise ValueError("format version %r is not 1" % (fmt,))
    if not (isinstance(seq, int) and not isinstance(seq, bool) and seq >= 1):
        raise ValueError("sequence is not a positive integer")
    if not (isinstance(ts, int) and not isinstance(ts, bool) and ts >= 0):
        raise ValueError("time is not an integer")
    if not (isinstance(prev, bytes) and len(prev) == 32):
        raise ValueError("prev is not 32 bytes")
    if not name_ok(actor) or not name_ok(kind):
        raise ValueError("actor or kind is not 1-64 bytes without NUL")
    if not (isinstance(schema, int) and not isinstance(schema, bool) and schema >= 1):
        raise ValueError("schema is not a positive integer")
    if not name_ok(project, nil_ok=True):
        raise ValueError("project is neither nil nor 1-64 bytes without NUL")
    if not isinstance(payload, dict):
        raise ValueError("payload is not a map")
    # canonical rule 7: absent fields are omitted; only extension payloads may carry nil
    if not kind.startswith("x.") and holds_nil(payload):
        raise ValueError("a %s event carries nil in its payload (absent fields are omitted)" % kind)
    return {"seq": seq, "ts": ts, "prev": prev, "actor": actor, "kind": kind,
            "schema": schema, "project": project, "payload": payload}


def as_json(v):
    """A decoded value as the export renders it: bin as lowercase hex."""
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, list):
        return [as_json(x) for x in v]
    if isinstance(v, dict):
        return {k: as_json(x) for k, x in v.items()}
    return v


# ---------------------------------------------------------------- helpers

def blake2b256(data):
    return hashlib.blake2b(data, digest_size=32).digest()


def unhex(s, n, what, seq):
    try:
        b = bytes.fromhex(s) if isinstance(s, str) else None
    except ValueError:
        b = None
    if b is None or len(b) != n or s != b.hex():
        raise Bad(seq, "%s is not %d bytes of lowercase hex" % (what, n))
    return b


def unb64(s, what, seq):
    try:
        return base64.b64decode(s, validate=True) if isinstance(s, str) else None
    except (binascii.Error, ValueError):
        raise Bad(seq, "%s is not standard base64" % what)


def same(a, b):
    """Equality that also compares types: 1 is not true, 1.0 is not 1."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError("duplicate key %r" % k)
        out[k] = v
    return out


def sig_ok(pk, sig, data):
    try:
        VerifyKey(pk).verify(data, sig)
        return True
    except BadSignatureError:
        return False
    except Exception:  # a malformed key
        return False


# ---------------------------------------------------------------- the checks

class Verifier:
    def __init__(self, pinned=None, checkpoint=None):
        self.pinned = pinned
        self.checkpoint = checkpoint
        self.keys = []           # [(from_seq, pk, introduced_by)]
        self.key_events = {}     # seq -> bytes of genesis / key.rotated events
        self.erased_marks = []   # (seq, commitment) of content marked erased
        self.erasures = set()    # commitments named by content.erased events (or a cut copy's header)
        self.whole = False
        self.head = None
        self.events = 0
        self.contents = 0
        self.erased = 0
        self.last_seq = 0
        self.last_hash = bytes(32)
        self.last_ts = 0
        self.seen_hash = {}      # seq -> hash (for the checkpoint)
        self.seen_ts = {}        # seq -> ts (the checkpoint names it too)

    def key_for(self, seq):
        pk = self.keys[0][1]
        for from_seq, k, _ in self.keys:
            if from_seq <= seq:
                pk = k
        return pk

    def check_line_event(self, line, seq_hint, signer=None):
        """Decode and check one event object against its bytes; returns (decoded, bytes)."""
        seq = line.get("seq") if isinstance(line.get("seq"), int) else seq_hint
        data = unb64(line.get("bytes"), "bytes", seq)
        if data is None:
            raise Bad(seq, "no bytes")
        try:
            ev = decode_event(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise Bad(seq, "the bytes do not decode: %s" % e)
        for f in ("seq", "ts", "actor", "kind", "schema", "project"):
            if not same(line.get(f, "<absent>"), ev[f]):
                raise Bad(seq, "%s in the line (%r) differs from the signed bytes (%r)" % (f, line.get(f), ev[f]))
        if line.get("prev") != ev["prev"].hex():
            raise Bad(seq, "prev in the line differs from the signed bytes")
        if not same(line.get("payload"), as_json(ev["payload"])):
            raise Bad(seq, "the payload in the line differs from the signed bytes")
        h = blake2b256(data)
        if "hash" in line and line["hash"] != h.hex():
            raise Bad(seq, "hash in the line is not BLAKE2b-256 of the bytes")
        sig = unhex(line.get("signature"), 64, "signature", seq)
        pk = signer if signer is not None else self.key_for(ev["seq"])
        if line.get("key") != pk.hex():
            raise Bad(seq, "key in the line is not the key the key chain names for this event")
        if not sig_ok(pk, sig, data):
            raise Bad(seq, "bad signature")
        return ev, data, h

    def header(self, hdr):
        if hdr.get("type") != "header" or hdr.get("threadlog_export") != 1:
            raise Bad(None, "the first line is not a threadlog export header")
        if hdr.get("format") != FORMAT_VERSION:
            raise Bad(None, "unknown log format %r" % hdr.get("format"))
        scope = hdr.get("scope")
        if not isinstance(scope, dict):
            raise Bad(None, "the header has no scope")
        self.whole = scope == {"log": True}
        self.scope_project = scope.get("project") if len(scope) == 1 else None
        self.scope_account = scope.get("account") if len(scope) == 1 else None
        if not (self.whole or isinstance(self.scope_project, str) or isinstance(self.scope_account, str)):
            raise Bad(None, "the header's scope is not {\"log\":true}, {\"project\":P} or {\"account\":A}")
        if hdr.get("chain") != ("complete" if self.whole else "per_event"):
            raise Bad(None, "the header's chain is not %s for this scope"
                      % ("complete" if self.whole else "per_event"))
        self.account_projects = set()  # an account export: its projects, as their creation shows them
        head = hdr.get("head")
        if not isinstance(head, dict) or not isinstance(head.get("seq"), int):
            raise Bad(None, "the header has no head")
        self.head = (head["seq"], unhex(head.get("hash"), 32, "head hash", None))
        kevs = hdr.get("key_events")
        if not isinstance(kevs, list) or not kevs:
            raise Bad(None, "the header has no key chain")
        # the key chain: genesis (self-signed), then rotations signed by the key before them
        last = 0  # the previous key event's seq (a rotation may follow another at once)
        for i, kl in enumerate(kevs):
            if not isinstance(kl, dict):
                raise Bad(None, "a key event is not an object")
            seq = kl.get("seq")
            if i == 0:
                if seq != 1 or kl.get("kind") != "log.created":
                    raise Bad(1, "the key chain does not start with the genesis event")
                pk = unhex((kl.get("payload") or {}).get("public_key"), 32, "genesis public key", 1)
                ev, data, _ = self.check_line_event(kl, 1, signer=pk)
                if ev["payload"].get("public_key") != pk:  # a bin of 32 bytes, not its hex in a str
                    raise Bad(1, "the genesis event has no 32-byte public key")
                if not same(ev["payload"].get("format"), FORMAT_VERSION):
                    raise Bad(1, "the genesis event names another format")
                self.keys.append((1, pk, 1))
            else:
                if kl.get("kind") != "key.rotated" or not isinstance(seq, int) or seq <= last:
                    raise Bad(seq, "the key chain's events are not rotations in order")
                if seq > self.head[0]:  # not an event of the log: its key is none of the log's
                    raise Bad(seq, "the key chain's event %d lies beyond the header's head" % seq)
                ev, data, _ = self.check_line_event(kl, seq, signer=self.keys[-1][1])
                pk = ev["payload"].get("public_key")
                if not isinstance(pk, bytes) or len(pk) != 32:
                    raise Bad(seq, "key.rotated without a 32-byte public key")
                self.keys.append((seq + 1, pk, seq))
            self.key_events[ev["seq"]] = data
            last = seq
        listed = hdr.get("keys")
        want = [{"public_key": pk.hex(), "from_seq": s, "introduced_by": by} for s, pk, by in self.keys]
        got = [{f: k.get(f) for f in ("public_key", "from_seq", "introduced_by")} for k in listed or []
               if isinstance(k, dict)]
        if not isinstance(listed, list) or got != want or len(got) != len(listed):
            raise Bad(None, "the header's key list does not match its key events")
        # the header's other unsigned copies must say what the signed events say
        if hdr.get("genesis_key") != self.keys[0][1].hex():
            raise Bad(None, "the header's genesis_key is not the genesis event's key")
        self.head_ts = head.get("ts")
        if not isinstance(self.head_ts, int) or isinstance(self.head_ts, bool):
            raise Bad(None, "the header's head has no time")
        if self.pinned is not None and self.pinned not in [pk for _, pk, _ in self.keys]:
            raise Bad(1, "the pinned key is neither the genesis key nor a rotated key")
        # a replica's records from replica_since on came without their content
        self.replica_since = hdr.get("replica_since")
        if self.replica_since is not None and (not isinstance(self.replica_since, int) or self.replica_since < 1):
            raise Bad(None, "replica_since is not a sequence number")
        # a copy cut at N keeps erased what was erased after N: the erasures the cut removed
        cut = hdr.get("cut_erasures", [])
        if not isinstance(cut, list):
            raise Bad(None, "cut_erasures is not a list")
        for ce in cut:
            if not isinstance(ce, dict) or not isinstance(ce.get("seq"), int) or ce["seq"] <= self.head[0]:
                raise Bad(None, "a cut erasure must name an event beyond the head")
            self.erasures.add(unhex(ce.get("commitment"), 32, "cut erasure commitment", None))
        if self.checkpoint is not None:
            self.check_checkpoint_signature()

    def check_checkpoint_signature(self):
        cp = self.checkpoint
        try:
            seq, ts = cp["seq"], cp["ts"]
            hsh = unhex(cp["hash"], 32, "checkpoint hash", None)
            key = unhex(cp["key"], 32, "checkpoint key", None)
            sig = unhex(cp["signature"], 64, "checkpoint signature", None)
        except (KeyError, TypeError):
            raise Bad(None, "the checkpoint is not {seq, hash, ts, key, signature}")
        msg = CHECKPOINT_CONTEXT + seq.to_bytes(8, "big") + hsh + ts.to_bytes(8, "big")
        if not sig_ok(key, sig, msg):
            raise Bad(seq, "the checkpoint's signature is not valid")
        if key not in [pk for _, pk, _ in self.keys]:
            raise Bad(seq, "the checkpoint is signed by a key the log never used")
        # the key current at seq: the one that signs seq + 1 (a checkpoint beyond the head
        # fails at the end, as a missing or out-of-scope event)
        if seq <= self.head[0] and key != self.key_for(seq + 1):
            raise Bad(seq, "the checkpoint is not signed by the key current at its sequence")
        self.cp = (seq, hsh, ts)

    def event(self, line):
        seq = line.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise Bad(self.last_seq + 1, "an event line without a sequence number")
        # order first: a missing or swapped event is named by the sequence expected there
        if self.whole and seq != self.last_seq + 1:
            expect = self.last_seq + 1
            raise Bad(expect, ("event %d is missing" if seq > expect else "event %d is out of order") % expect)
        if seq <= self.last_seq:
            raise Bad(seq, "event %d comes after event %d: out of order" % (seq, self.last_seq))
        ev, data, h = self.check_line_event(line, seq)
        self.check_scope(ev, seq)
        if self.whole and ev["prev"] != self.last_hash:
            raise Bad(seq, "event %d does not chain to the previous event" % seq)
        if ev["ts"] < self.last_ts:
            raise Bad(seq, "event %d goes back in time" % seq)
        if seq in self.key_events and self.key_events[seq] != data:
            raise Bad(seq, "event %d differs from the header's key chain" % seq)
        if ev["kind"] in ("log.created", "key.rotated") and seq not in self.key_events:
            raise Bad(seq, "event %d changes the key but is not in the header's key chain" % seq)
        self.check_content(line, ev, seq)
        if ev["kind"] == "content.erased":
            c = ev["payload"].get("commitment")
            if not isinstance(c, bytes) or len(c) != 32:
                raise Bad(seq, "content.erased without a 32-byte commitment")
            self.erasures.add(c)
        self.last_seq, self.last_hash, self.last_ts = seq, h, ev["ts"]
        self.seen_hash[seq] = h
        self.seen_ts[seq] = ev["ts"]
        self.events += 1

    def check_scope(self, ev, seq):
        """The event belongs to the header's scope (EXPORT.md, Scopes): an export with another
        project's or account's events added, or relabelled, is not the export it claims."""
        if self.whole:
            return
        pl = ev["payload"]
        if self.scope_project is not None:
            if ev["project"] != self.scope_project:
                raise Bad(seq, "event %d is not of project %s, the export's scope" % (seq, self.scope_project))
            return
        a = self.scope_account
        kind = ev["kind"]
        if kind == "project.created" and pl.get("account") == a:
            self.account_projects.add(pl.get("id"))
        ours = ((kind == "account.created" and pl.get("id") == a)
                or (kind == "user.created" and pl.get("account") == a)
                or (ev["project"] is not None and ev["project"] in self.account_projects)
                or (ev["project"] is None and pl.get("account") == a))
        if not ours:
            raise Bad(seq, "event %d is not of account %s, the export's scope" % (seq, a))

    def check_content(self, line, ev, seq):
        content = line.get("content", {})
        if not isinstance(content, dict):
            raise Bad(seq, "content is not an object")
        # an extension's (x.*) payload is its own: fields named like commitments commit to nothing;
        # nor does a field that is not a bin. A bin is a commitment: 32 bytes, with its size an
        # unsigned integer, whether or not the content is still there (FORMAT.md §6 check 7)
        pl = ev["payload"]
        fields = [] if ev["kind"].startswith("x.") else [f for f in COMMITS if isinstance(pl.get(f), bytes)]
        for f in fields:
            size = pl.get(COMMITS[f])
            if len(pl[f]) != 32 or not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise Bad(seq, "%s: not a 32-byte commitment with an unsigned %s" % (f, COMMITS[f]))
        if sorted(content) != sorted(fields):
            raise Bad(seq, "the content listed does not match the payload's commitments")
        for f in fields:
            commit, size = ev["payload"][f], ev["payload"].get(COMMITS[f])
            c = content[f]
            if not isinstance(c, dict):
                raise Bad(seq, "%s: content is not an object" % f)
            # members the format does not define are ignored (unsigned: they prove nothing)
            if c.get("erased") is True and "salt" not in c and "data" not in c:
                self.erased += 1
                self.erased_marks.append((seq, commit))
                continue
            salt = unhex(c.get("salt"), 32, f + " salt", seq)
            data = unb64(c.get("data"), f + " data", seq)
            if data is None:
                raise Bad(seq, "%s: neither content nor \"erased\"" % f)
            if blake2b256(salt + data) != commit:
                raise Bad(seq, "%s: the content does not match its commitment" % f)
            if len(data) != size:
                raise Bad(seq, "%s: the content is %d bytes, the event says %r" % (f, len(data), size))
            self.contents += 1

    def end(self, trailer):
        if trailer is None:
            raise Bad(self.last_seq + 1, "the export is cut short (no trailer)")
        if trailer.get("events") != self.events or trailer.get("last_seq") != self.last_seq:
            raise Bad(self.last_seq + 1, "the trailer counts %r events up to %r; the export holds %d up to %d"
                      % (trailer.get("events"), trailer.get("last_seq"), self.events, self.last_seq))
        if self.whole:
            if self.last_seq != self.head[0]:
                raise Bad(self.last_seq + 1, "event %d is missing (the header's head is %d)"
                          % (self.last_seq + 1, self.head[0]))
            if self.last_hash != self.head[1]:
                raise Bad(self.last_seq, "event %d is not the head the header names" % self.last_seq)
            if self.last_ts != self.head_ts:
                raise Bad(self.last_seq, "event %d's time is not the header's head time" % self.last_seq)
        if self.checkpoint is not None:
            seq, hsh, ts = self.cp
            if seq in self.seen_hash:
                if self.seen_hash[seq] != hsh:
                    raise Bad(seq, "event %d differs from the checkpoint: the history was rewritten" % seq)
                if self.seen_ts[seq] != ts:
                    raise Bad(seq, "event %d's time differs from the checkpoint's" % seq)
            elif self.whole and seq > self.last_seq:
                raise Bad(self.last_seq + 1, "event %d is missing: the export ends before the checkpoint"
                          % (self.last_seq + 1))
            elif self.whole or self.head[0] < seq:
                raise Bad(seq, "event %d (the checkpoint's) is not in the export" % seq)
            else:
                self.cp_note = "the checkpoint's event %d is outside this export's scope" % seq
        # (after the checks of a cut or rewritten export, which explain a missing erasure better)
        # content gone without an erasure is not an erasure (the erasure of a project's or an
        # account's content is in the same scope: it carries the same project or account)
        for seq, commit in self.erased_marks:
            if commit not in self.erasures and not (self.replica_since and seq >= self.replica_since):
                raise Bad(seq, "content marked erased, yet no content.erased event names its commitment")



def verify(lines, pinned=None, checkpoint=None):
    v = Verifier(pinned, checkpoint)
    trailer = None
    first = True
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw, object_pairs_hook=no_duplicates)
        except ValueError as e:
            raise Bad(v.last_seq + 1 if not first else None, "line %d is not JSON: %s" % (n, e))
        if not isinstance(obj, dict):
            raise Bad(None, "line %d is not a JSON object" % n)
        if first:
            v.header(obj)
            first = False
            continue
        if trailer is not None:
            raise Bad(v.last_seq + 1, "line %d comes after the trailer" % n)
        t = obj.get("type")
        if t == "event":
            v.event(obj)
        elif t == "end":
            trailer = obj
        else:
            raise Bad(v.last_seq + 1, "line %d has unknown type %r" % (n, t))
    if first:
        raise Bad(None, "the export is empty")
    v.end(trailer)
    return v


def main(argv=None):
    ap = argparse.ArgumentParser(description="Check a threadlog export (JSON lines) without threadlog.")
    ap.add_argument("export", help="the export file, or - for standard input")
    ap.add_argument("--key", help="pin this public key (hex): it must be the genesis key or a rotated key")
    ap.add_argument("--checkpoint", help="a checkpoint JSON file the exported history must still match")
    ap.add_argument("--quiet", action="store_true", help="print nothing on success")
    a = ap.parse_args(argv)
    try:
        pinned = None
        if a.key is not None:
            pinned = bytes.fromhex(a.key)
            if len(pinned) != 32:
                raise ValueError
    except ValueError:
        sys.stderr.write("verify_export.py: --key takes a 64-digit hex public key\n")
        return 2
    checkpoint = None
    try:
        if a.checkpoint:
            with open(a.checkpoint, "r", encoding="utf-8") as f:
                checkpoint = json.loads(f.read(), object_pairs_hook=no_duplicates)
        f = sys.stdin if a.export == "-" else open(a.export, "r", encoding="utf-8")
    except (OSError, ValueError) as e:
        sys.stderr.write("verify_export.py: %s\n" % e)
        return 2
    try:
        with f:
            v = verify(f, pinned, checkpoint)
    except Bad as e:
        where = "event %d" % e.seq if e.seq is not None else "the header"
        sys.stderr.write("FAILED at %s: %s\n" % (where, e.why))
        if e.seq is not None:
            print("first_bad_seq %d" % e.seq)
        return 1
    except UnicodeDecodeError as e:
        sys.stderr.write("FAILED: the export is not UTF-8 (%s)\n" % e)
        return 1
    if not a.quiet:
        print("ok: %d events verified (bytes, signatures along the key chain%s), %d contents match their "
              "commitments, %d erased%s%s" % (
                  v.events, ", chain" if v.whole else "; chain not checkable in a partial export",
                  v.contents, v.erased,
                  ", the checkpoint holds" if checkpoint is not None and not hasattr(v, "cp_note") else "",
                  "; " + v.cp_note if hasattr(v, "cp_note") else ""))
        if v.replica_since:
            print("note: a replica's export: the content of events from %d on stays with the log they came from"
                  " (marked erased, not checked)" % v.replica_since)
    return 0


if __name__ == "__main__":
    sys.exit(main())
