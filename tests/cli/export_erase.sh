#!/usr/bin/env bash
# export_erase.sh — erasure through public commands only: after `threadlog erase` of a
# message body and of an attachment, `verify` stays green (the chain and every signature
# hold, the commitments stay), and the content is unreadable everywhere: `attachment get`
# refuses it, the export says "erased" (and the independent verifier accepts that), the
# projections (messages, history) show it as erased, a replay gives the live digest, and
# neither the live data file nor a compacted copy of the log (`replay --into`) holds a trace
# of the bytes.
#
# usage: export_erase.sh THREADLOG_BINARY SOURCE_DIR
set -euo pipefail
TL="$1"
SRC="$2"
PY=/usr/bin/python3
VERIFY="$SRC/tools/verify_export.py"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

D=$T/log
"$TL" init "$D" > /dev/null
SECRET="Personal-data-5f3a9c: call me on +33 6 00 00 00 00"
FILE_B64=$(printf 'PDF-bytes-7d21e4 private scan' | base64 -w0)
"$TL" -d "$D" apply > "$T/results" <<JSON
{"op":"account.create","id":"acme","name":"Acme"}
{"op":"user.create","id":"alice","role":"member","account":"acme","name":"Alice"}
{"op":"user.create","id":"sam","role":"staff","name":"Sam"}
{"op":"user.create","id":"aud","role":"auditor","name":"Audrey"}
{"op":"project.create","as":"alice","id":"o-1","account":"acme","type":"order","title":"Order"}
{"op":"topic.create","as":"alice","id":"t-1","project":"o-1","title":"Shipping","body":"When?","message_id":"m-1"}
{"op":"message.send","as":"sam","id":"m-2","project":"o-1","channel":"chat","topic":"t-1","body":"$SECRET"}
{"op":"attachment.upload","as":"alice","id":"a-1","project":"o-1","name":"scan.pdf","data":"$FILE_B64"}
{"op":"message.reply","as":"alice","id":"m-3","message":"m-2","body":"see the scan","attachments":["a-1"]}
{"op":"attachment.upload","as":"alice","id":"m-2","project":"o-1","name":"same-id.txt","data":"aGk="}
JSON
grep -q '"ok":false' "$T/results" && fail "scenario refused: $(cat "$T/results")"

# before: everything readable
"$TL" -d "$D" attachment get a-1 --as alice -o "$T/a1" 2> /dev/null || fail "attachment get before erasure"
"$TL" -d "$D" --json messages --as aud --project o-1 --channel chat | grep -q "Personal-data-5f3a9c" || fail "body not shown before erasure"
LIVE_BEFORE=$("$TL" -d "$D" digest)

# (an attachment shares the id m-2, unused: ids are unique per kind, so erase asks which)
"$TL" -d "$D" erase m-2 --kind message --reason "data subject request #12" > /dev/null
"$TL" -d "$D" erase a-1 --reason "data subject request #12" > /dev/null
# and the bytes are gone from the live data file at once: no freed page, no page's unused
# space keeps them (engine/scrub.c)
grep -qa "Personal-data-5f3a9c" "$D/data.mdb" && fail "erased body still in data.mdb"
grep -qa "PDF-bytes-7d21e4" "$D/data.mdb" && fail "erased attachment still in data.mdb"
# erasing again is a no-op, not an error
"$TL" -d "$D" --json erase m-2 --kind message --reason again | grep -q '"noop":true' || fail "second erase is not a no-op"

# verify stays green: chain, signatures, the commitments of the content still present
"$TL" -d "$D" verify > "$T/out" || fail "verify after erasure: $(cat "$T/out")"

# attachment get: refused, for everyone
for who in alice sam aud; do
  if "$TL" -d "$D" attachment get a-1 --as $who -o "$T/a1.$who" 2> "$T/err"; then fail "attachment get after erasure ($who)"; fi
  grep -qi "erased\|not_found" "$T/err" || fail "attachment get refusal: $(cat "$T/err")"
done

# projections: shown as erased, the body nowhere, even to the auditor
for q in "messages --as aud --project o-1 --channel chat" "history --as aud --project o-1" \
         "messages --as alice --project o-1 --channel chat" "history --as sam --project o-1"; do
  "$TL" -d "$D" --json $q > "$T/q"
  grep -q "Personal-data-5f3a9c" "$T/q" && fail "erased body still shown by: $q"
  grep -q '"erased":true' "$T/q" || fail "no erased mark in: $q: $(cat "$T/q")"
done
"$TL" -d "$D" --json history --as aud --project o-1 | grep -q '"kind":"content.erased"' || fail "the erasure is not in the history"

# export: the commitments say erased, no byte of the content anywhere; the verifier agrees
"$TL" -d "$D" export > "$T/all.jsonl"
"$TL" -d "$D" export --project o-1 --format csv > "$T/o1.csv"
for f in "$T/all.jsonl" "$T/o1.csv"; do
  grep -q "Personal-data-5f3a9c" "$f" && fail "erased body in $f"
  grep -q "PDF-bytes-7d21e4" "$f" && fail "erased attachment in $f"
  grep -q "$FILE_B64" "$f" && fail "erased attachment (base64) in $f"
done
"$PY" - "$T/all.jsonl" <<'PY' || fail "erased marks in the export"
import json, sys
ev = {}
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o["type"] == "event":
        ev.setdefault(o["kind"], []).append(o)
m2 = [e for e in ev["message.sent"] if e["payload"]["id"] == "m-2"][0]
assert m2["content"] == {"body_commit": {"erased": True}}, m2.get("content")
a1 = ev["attachment.uploaded"][0]
assert a1["content"] == {"data_commit": {"erased": True}}, a1.get("content")
m3 = [e for e in ev["message.replied"]][0]
assert "data" in m3["content"]["body_commit"]  # untouched content stays
er = ev["content.erased"]
assert [e["payload"]["target"] for e in er] == ["m-2", "a-1"], er
assert er[0]["payload"]["commitment"] == m2["payload"]["body_commit"]
assert er[0]["payload"]["reason"] == "data subject request #12"
PY
"$PY" "$VERIFY" "$T/all.jsonl" > "$T/out" || fail "verifier refused an export with erasures"
grep -q "2 erased" "$T/out" || fail "verifier does not count the erased contents: $(cat "$T/out")"
grep -q "content.erased.*data subject request" "$T/o1.csv" || fail "CSV lacks the erasure"
grep -q "message.sent m-2.*\[erased\]" "$T/o1.csv" || fail "CSV does not show m-2 as erased"
# the erasure's row is in the message's channel, not in its namesake attachment's
"$PY" - "$T/o1.csv" <<'PY' || fail "CSV erasure row: $(grep content.erased "$T/o1.csv")"
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if "content.erased message m-2" in r[-1]]
assert len(rows) == 1 and rows[0][3] == "chat", rows
PY

# export's command line: one scope at most, a format it knows; anything else is refused with
# the error object (exit 1) and exports nothing
for args in "--project o-1 --account acme" "--account acme --project o-1" "--format xml" "--format JSONL" \
            "--project=" "--account=" "--project o-1 --project o-1" "o-1"; do
  st=0
  # shellcheck disable=SC2086
  out=$("$TL" -d "$D" --json export $args 2> /dev/null) || st=$?
  [ "$st" = 1 ] && "$PY" -c 'import json,sys; o=json.loads(sys.argv[1]); assert o == {"ok": False, "error": "invalid_input", "message": o["message"]}' "$out" \
    || fail "export $args: exit $st, $(head -c 300 <<< "$out")"
done
# an export that cannot be written (a file size limit stands in for a full disk) fails: the
# storage error object, exit 1, and no file under the name asked for
st=0
out=$( (trap '' XFSZ; ulimit -f 1; exec "$TL" -d "$D" --json export -o "$T/cut.jsonl") 2> /dev/null) || st=$?
[ "$st" = 1 ] && "$PY" -c 'import json,sys; o=json.loads(sys.argv[1]); assert o["ok"] is False and o["error"] == "storage"' "$out" \
  || fail "export past the file size limit: exit $st, $out"
[ ! -e "$T/cut.jsonl" ] || fail "a failed export left $T/cut.jsonl"

# replay: the projections rebuilt from the log equal the live ones
LIVE=$("$TL" -d "$D" digest)
[ "$LIVE" != "$LIVE_BEFORE" ] || fail "erasure changed no projection"
"$TL" -d "$D" replay --verify > "$T/out"
grep -q "digest $LIVE" "$T/out" || fail "replay digest differs from live $LIVE: $(cat "$T/out")"
[ "$("$TL" -d "$D" digest)" = "$LIVE" ] || fail "digest moved after replay"

# a compacted copy holds no trace of the erased bytes either
"$TL" -d "$D" replay --into "$T/copy" > /dev/null
grep -qa "Personal-data-5f3a9c" "$T/copy/data.mdb" && fail "erased body in a compacted copy"
grep -qa "PDF-bytes-7d21e4" "$T/copy/data.mdb" && fail "erased attachment in a compacted copy"
"$TL" -d "$T/copy" verify > /dev/null || fail "the copy does not verify"
# content the store cannot read is not content erased (EXPORT.md, `content`): a note's body
# big enough for an overflow page, its content node's page number pointed past the file's
# end; the export must say {"unreadable":true} for it, which the verifier refuses, never
# {"erased":true}, which it accepts
U=$T/unreadable
"$TL" init "$U" > /dev/null
"$TL" -d "$U" apply > /dev/null <<JSON
{"op":"account.create","id":"acme","name":"Acme"}
{"op":"user.create","id":"alice","role":"member","account":"acme","name":"Alice"}
{"op":"project.create","as":"alice","id":"o-1","account":"acme","type":"order","title":"Order"}
{"op":"note.add","as":"alice","id":"n-1","project":"o-1","body":"$(head -c 3000 /dev/zero | tr '\0' q)"}
JSON
"$TL" -d "$U" export > "$T/u.jsonl"
"$PY" - "$U/data.mdb" "$T/u.jsonl" <<'PY' || fail "could not point the content node elsewhere"
import json, sys
commit = next(o for o in map(json.loads, open(sys.argv[2])) if o.get("kind") == "note.added")["payload"]["body_commit"]
d = bytearray(open(sys.argv[1], "rb").read())
i = d.find(b"\x01\x00\x20\x00" + bytes.fromhex(commit))  # F_BIGDATA, a 32-byte key: the content node
assert i > 0 and d.find(b"\x01\x00\x20\x00" + bytes.fromhex(commit), i + 1) < 0
d[i + 36:i + 44] = b"\xff" * 8
open(sys.argv[1], "wb").write(bytes(d))
PY
"$TL" -d "$U" export > "$T/u.jsonl" 2> /dev/null || true
grep -q '"kind":"note.added".*"content":{"body_commit":{"unreadable":true}}' "$T/u.jsonl" \
  || fail "unreadable content exported as: $(grep -o '"content":{[^}]*}' "$T/u.jsonl")"
# and the export fails naming the damaged read, not as a full disk ("cannot write the export")
st=0
last=$("$TL" -d "$U" --json export 2> /dev/null | tail -1) || st=$?
"$PY" -c 'import json,sys; o=json.loads(sys.argv[1]); assert o["ok"] is False and "cannot write" not in o["message"], o' "$last" \
  || fail "export of a damaged store answered: $last"
echo "export_erase: ok"
