#!/usr/bin/env bash
# export_verify.sh — `threadlog export` checked by the independent verifier
# (tools/verify_export.py, standard library + PyNaCl only): it accepts genuine exports of the
# whole log, a project and an account (with the genesis key pinned, with a checkpoint), and
# rejects, naming the first bad event, a flipped byte, a forged line (fields and bytes edited
# together), a removed event, a reordered pair, a changed content, a cut export, a wrong
# pinned key and a rewritten history. Also: the CSV timeline parses back with Python's csv.
#
# usage: export_verify.sh THREADLOG_BINARY SOURCE_DIR
set -euo pipefail
TL="$1"
SRC="$2"
PY=/usr/bin/python3 # Debian's, which has python3-nacl (the default python3 may not)
VERIFY="$SRC/tools/verify_export.py"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# the verifier must not lean on threadlog: only the standard library and PyNaCl
imports=$(grep -E '^\s*(import|from) ' "$VERIFY" | sed -E 's/^\s*//' | sort -u | tr '\n' ';')
[ "$imports" = "from nacl.exceptions import BadSignatureError;from nacl.signing import VerifyKey;import argparse;import base64;import binascii;import hashlib;import json;import sys;" ] \
  || fail "verify_export.py imports more than the standard library and PyNaCl: $imports"

D=$T/log
GENESIS=$("$TL" init "$D")
"$TL" -d "$D" apply > "$T/results" <<'JSON'
{"op":"account.create","id":"acme","name":"Acme"}
{"op":"account.create","id":"beta","name":"Beta"}
{"op":"user.create","id":"alice","role":"member","account":"acme","name":"Alice"}
{"op":"user.create","id":"carl","role":"member","account":"beta","name":"Carl"}
{"op":"user.create","id":"sam","role":"staff","name":"Sam"}
{"op":"user.create","id":"zoe","role":"ambassador","name":"Zoé"}
{"op":"project.create","as":"zoe","id":"o-1","account":"acme","type":"order","title":"Order #1","ambassador":"zoe","ambassador_message":"Size M please"}
{"op":"project.create","as":"carl","id":"b-1","account":"beta","type":"video","title":"Beta video"}
{"op":"project.status","as":"alice","project":"o-1","status":"shipped"}
{"op":"topic.create","as":"alice","id":"t-1","project":"o-1","title":"Shipping","body":"When?","message_id":"m-1"}
{"op":"message.send","as":"sam","id":"m-2","project":"o-1","channel":"chat","topic":"t-1","body":"Tomorrow, \"early\"\nor late"}
{"op":"message.send","as":"alice","id":"s-1","account":"acme","channel":"support","body":"Help with export"}
{"op":"note.add","as":"carl","id":"n-b","project":"b-1","body":"beta note"}
{"op":"attachment.upload","as":"alice","id":"a-1","project":"o-1","name":"label.pdf","mime":"application/pdf","data":"JVBERi0xLjQK"}
{"op":"message.reply","as":"alice","id":"m-3","message":"m-2","body":"Thanks","attachments":["a-1"]}
JSON
grep -q '"ok":false' "$T/results" && fail "the scenario was refused: $(grep '"ok":false' "$T/results")"
"$TL" -d "$D" key rotate > /dev/null
"$TL" -d "$D" apply > /dev/null <<'JSON'
{"op":"note.add","as":"alice","id":"n-1","project":"o-1","body":"Check stock"}
{"op":"message.read","as":"alice","message":"m-2"}
{"op":"message.pin","as":"alice","message":"m-3"}
JSON
cp -a "$D" "$T/fork" # an insider's copy, writer key included
F=$T/fork
"$TL" -d "$D" erase n-1 --reason "erasure request" > /dev/null
"$TL" -d "$D" checkpoint > "$T/cp.json"
"$TL" -d "$D" send --as sam --project o-1 --channel chat --topic t-1 --body "after the checkpoint" > /dev/null

"$TL" -d "$D" export > "$T/all.jsonl"
"$TL" -d "$D" export --project o-1 > "$T/o1.jsonl"
"$TL" -d "$D" export --account acme > "$T/acme.jsonl"
"$TL" -d "$D" export --account beta -o "$T/beta.jsonl"

accept() { # accept FILE [verifier flags...]
  local f="$1"; shift
  "$PY" "$VERIFY" "$@" "$f" > "$T/out" 2> "$T/err" || fail "a genuine export was refused ($f $*): $(cat "$T/err")"
}
accept "$T/all.jsonl"
accept "$T/all.jsonl" --key "$GENESIS" --checkpoint "$T/cp.json"
grep -q "chain" "$T/out" || fail "whole-log verification does not report the chain"
accept "$T/o1.jsonl" --key "$GENESIS"
accept "$T/acme.jsonl" --checkpoint "$T/cp.json"
accept "$T/beta.jsonl"
cat "$T/o1.jsonl" | "$PY" "$VERIFY" --quiet - || fail "reading from standard input"

# scopes hold what they should
"$PY" - "$T" <<'PY' || fail "export scopes"
import json, sys
t = sys.argv[1]
def events(name):
    return [json.loads(l) for l in open("%s/%s" % (t, name)) if json.loads(l)["type"] == "event"]
whole = events("all.jsonl")
assert [e["seq"] for e in whole] == list(range(1, len(whole) + 1))
o1 = events("o1.jsonl")
assert o1 and all(e["project"] == "o-1" for e in o1)
assert [e["seq"] for e in o1] == [e["seq"] for e in whole if e["project"] == "o-1"]
acme = {e["seq"] for e in events("acme.jsonl")}
beta = {e["seq"] for e in events("beta.jsonl")}
assert not (acme & beta)
kinds = {e["kind"] for e in events("acme.jsonl")}
assert {"account.created", "user.created", "project.created", "message.sent", "content.erased"} <= kinds, kinds
assert not any(e["project"] == "b-1" for e in events("acme.jsonl"))
# the erased note: its commitment is there, its content is not
n1 = [e for e in o1 if e["kind"] == "note.added"][0]
assert n1["content"] == {"body_commit": {"erased": True}}, n1["content"]
# the key chain in the header: genesis, then the rotation
hdr = json.loads(open("%s/o1.jsonl" % t).readline())
assert [k["from_seq"] for k in hdr["keys"]][0] == 1 and len(hdr["keys"]) == 2
assert [e["kind"] for e in hdr["key_events"]] == ["log.created", "key.rotated"]
PY

# ---- tampering: each must fail, naming the event
tamper() { # tamper NAME SOURCE PYTHON-EDIT EXPECTED-SEQ-OR-TEXT [verifier flags...]
  local name="$1" src="$2" edit="$3" want="$4"; shift 4
  "$PY" - "$src" "$T/$name.jsonl" "$edit" <<'PY'
import base64, hashlib, json, sys
src, dst, edit = sys.argv[1], sys.argv[2], sys.argv[3]
lines = open(src).read().splitlines()
objs = [json.loads(l) for l in lines]
ev = [i for i, o in enumerate(objs) if o["type"] == "event"]
def find(kind, nth=0):
    return [i for i in ev if objs[i]["kind"] == kind][nth]
def b64(b): return base64.b64encode(b).decode()
def rehash(o): o["hash"] = hashlib.blake2b(base64.b64decode(o["bytes"]), digest_size=32).hexdigest()
exec(edit)
open(dst, "w").write("\n".join(json.dumps(o, ensure_ascii=False) if isinstance(o, dict) else o for o in lines) + "\n")
PY
  if "$PY" "$VERIFY" "$@" "$T/$name.jsonl" > "$T/out" 2> "$T/err"; then fail "tampered export accepted: $name"; fi
  grep -q -- "$want" "$T/err" || fail "$name: expected \"$want\" in: $(cat "$T/err")"
}
# the seq of the first message.sent, for the expectations below
MSEQ=$("$PY" -c 'import json,sys; print([json.loads(l)["seq"] for l in open(sys.argv[1]) if "\"kind\": \"message.sent\"" in l or "\"kind\":\"message.sent\"" in l][0])' "$T/all.jsonl")
# a flipped byte in an event's stored bytes (the line's fields left alone)
tamper flip "$T/all.jsonl" '
i = find("message.sent"); o = objs[i]; b = bytearray(base64.b64decode(o["bytes"])); b[-3] ^= 1
o["bytes"] = b64(bytes(b)); lines[i] = o' "FAILED at event $MSEQ"
# a forgery: the body commitment changed in the bytes and the line alike (only the signature holds)
tamper forge "$T/all.jsonl" '
i = find("message.sent"); o = objs[i]; raw = base64.b64decode(o["bytes"]); c = bytes.fromhex(o["payload"]["body_commit"])
c2 = bytes([c[0] ^ 1]) + c[1:]; o["bytes"] = b64(raw.replace(c, c2)); o["payload"]["body_commit"] = c2.hex(); rehash(o); lines[i] = o' \
  "FAILED at event $MSEQ: bad signature"
tamper forge_project "$T/o1.jsonl" '
i = find("message.sent"); o = objs[i]; raw = base64.b64decode(o["bytes"]); c = bytes.fromhex(o["payload"]["body_commit"])
c2 = bytes([c[0] ^ 1]) + c[1:]; o["bytes"] = b64(raw.replace(c, c2)); o["payload"]["body_commit"] = c2.hex(); rehash(o); lines[i] = o' \
  "FAILED at event $MSEQ: bad signature"
# the decoded fields edited, the bytes left alone
tamper field "$T/o1.jsonl" 'i = find("message.sent"); objs[i]["actor"] = "alice"; lines[i] = objs[i]' "FAILED at event $MSEQ: actor"
# a removed event
tamper remove "$T/all.jsonl" 'i = find("message.sent"); del lines[i]' "FAILED at event $MSEQ: event $MSEQ is missing"
# a reordered pair
tamper reorder "$T/all.jsonl" 'i = find("message.sent"); lines[i], lines[i + 1] = lines[i + 1], lines[i]' "FAILED at event $MSEQ"
tamper reorder_project "$T/o1.jsonl" 'i = find("message.sent"); lines[i], lines[i + 1] = lines[i + 1], lines[i]' "FAILED at event $MSEQ: .*out of order"
# a changed content (the bytes of the message, or the attachment, or its salt)
tamper content "$T/all.jsonl" '
i = find("message.sent"); o = objs[i]; o["content"]["body_commit"]["data"] = b64(b"Tomorrow, \"late\"\nor never"); lines[i] = o' \
  "FAILED at event $MSEQ: body_commit: the content does not match its commitment"
tamper attachment "$T/o1.jsonl" '
i = find("attachment.uploaded"); o = objs[i]; d = bytearray(base64.b64decode(o["content"]["data_commit"]["data"])); d[0] ^= 1
o["content"]["data_commit"]["data"] = b64(bytes(d)); lines[i] = o' "data_commit: the content does not match"
tamper content_dropped "$T/o1.jsonl" 'i = find("message.sent"); del objs[i]["content"]; lines[i] = objs[i]' "FAILED at event $MSEQ: the content listed"
# cut short, and the trailer edited to match: the head in the header still tells
tamper cut "$T/all.jsonl" 'del lines[-3:]' "cut short"
tamper cut_trailer "$T/all.jsonl" '
del lines[-3:-1]; t = objs[-1]; t["events"] -= 2; t["last_seq"] -= 2; lines[-1] = t' "is missing (the header's head"
# the key: a line naming another key, a pinned key that is not the log's
tamper wrong_key "$T/o1.jsonl" '
i = find("project.created"); objs[i]["key"] = objs[0]["keys"][1]["public_key"]; lines[i] = objs[i]' "key in the line is not the key"
cp "$T/all.jsonl" "$T/pinned.jsonl"
if "$PY" "$VERIFY" --key "$(printf '%064d' 0)" "$T/pinned.jsonl" 2> "$T/err" > /dev/null; then fail "a wrong pinned key was accepted"; fi
grep -q "pinned key" "$T/err" || fail "pinned key: $(cat "$T/err")"
# the key chain: the rotation's signature
tamper rotation "$T/o1.jsonl" '
h = objs[0]; k = h["key_events"][1]; s = bytearray(bytes.fromhex(k["signature"])); s[0] ^= 1; k["signature"] = bytes(s).hex(); lines[0] = h' "bad signature"

# a history rewritten with the writer key from before the checkpoint on: self-consistent
# (chain and signatures hold), caught only by the checkpoint
"$TL" -d "$F" apply > /dev/null <<'JSON'
{"op":"note.add","as":"alice","id":"n-x","project":"o-1","body":"another past"}
{"op":"note.add","as":"alice","id":"n-y","project":"o-1","body":"another past"}
{"op":"note.add","as":"alice","id":"n-z","project":"o-1","body":"another past"}
{"op":"note.add","as":"alice","id":"n-w","project":"o-1","body":"another past"}
JSON
"$TL" -d "$F" export > "$T/fork.jsonl"
CPSEQ=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["seq"])' "$T/cp.json")
accept "$T/fork.jsonl" # on its own, the rewritten log is consistent
if "$PY" "$VERIFY" --checkpoint "$T/cp.json" "$T/fork.jsonl" > /dev/null 2> "$T/err"; then fail "a rewritten history passed the checkpoint"; fi
grep -q "FAILED at event $CPSEQ: .*rewritten" "$T/err" || fail "fork: $(cat "$T/err")"
# threadlog's own verify agrees
if "$TL" -d "$F" verify --checkpoint "$T/cp.json" > /dev/null 2>&1; then fail "threadlog verify accepted the rewritten history"; fi

# ---- CSV: one project's timeline, parsed back by a standard CSV reader
"$TL" -d "$D" export --project o-1 --format csv > "$T/o1.csv"
"$PY" - "$T/o1.csv" "$T/o1.jsonl" <<'PY' || fail "CSV timeline"
import csv, json, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows[0] == ["time", "seq", "who", "channel", "what"], rows[0]
events = [json.loads(l) for l in open(sys.argv[2]) if json.loads(l)["type"] == "event"]
assert len(rows) - 1 == len(events), (len(rows), len(events))
by_seq = {int(r[1]): r for r in rows[1:]}
for e in events:
    r = by_seq[e["seq"]]
    assert r[2] == e["actor"] and r[4].startswith(e["kind"]), (r, e["kind"])
    assert r[0].endswith("Z") and "T" in r[0]
m2 = [r for r in rows[1:] if r[4].startswith("message.sent m-2")][0]
assert m2[3] == "chat" and m2[4].endswith('Tomorrow, "early"\nor late'), m2
n1 = [r for r in rows[1:] if r[4].startswith("note.added n-1")][0]
assert n1[3] == "notes" and n1[4].endswith("[erased]"), n1
PY

# ---- usage
if "$TL" -d "$D" export --project o-1 --account acme > /dev/null 2>&1; then fail "--project with --account accepted"; fi
if "$TL" -d "$D" export --format xml > /dev/null 2>&1; then fail "--format xml accepted"; fi
set +e
"$TL" -d "$D" --json export --project nope > "$T/out"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q '"error":"not_found"' "$T/out" || fail "unknown project: rc $rc $(cat "$T/out")"
echo "export_verify: ok"
