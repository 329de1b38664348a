#!/usr/bin/env bash
# domain_oneshot.sh — the one-shot domain commands of the CLI (account, user, project,
# status, topic, send, reply, note, read, mark-unread, pin, unpin, delete, attach,
# attachment get, erase): same semantics as `apply` (the same events, in the same order),
# human output by default and the spec's JSON with --json (before or after the command),
# exit status 0 done / 1 refused (error object on stdout with --json, a line on stderr
# without) / 2 usage; init refusing an existing log; attach refusing an over-limit file
# before reading it; attachment bytes coming back only to the channel's audience.
#
# usage: domain_oneshot.sh THREADLOG_BINARY SOURCE_DIR
set -euo pipefail
TL="$1"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
D=$T/log

# expect STATUS WANT_STDOUT -- COMMAND...   (stdout compared exactly)
expect() {
  local want_status=$1 want_out=$2 status=0 out
  shift 3
  out=$("$@" 2> "$T/stderr") || status=$?
  [ "$status" = "$want_status" ] || fail "$* exited $status, want $want_status (stdout: $out; stderr: $(cat "$T/stderr"))"
  [ "$out" = "$want_out" ] || fail "$*: stdout $out, want $want_out"
}
# refused COMMAND... : exit 1, {"ok":false,"error":CODE,...} on stdout with --json
refused() {
  local code=$1 status=0 out
  shift
  out=$("$@" 2> /dev/null) || status=$?
  [ "$status" = 1 ] || fail "$* exited $status, want 1 ($out)"
  python3 -c 'import json,sys; o=json.loads(sys.argv[1]); assert o["ok"] is False and o["error"]==sys.argv[2] and o["message"], o' \
    "$out" "$code" || fail "$*: want $code, got $out"
}

"$TL" init "$D" > "$T/pubkey"
grep -Eq '^[0-9a-f]{64}$' "$T/pubkey" || fail "init did not print a public key"
expect 1 "" -- "$TL" init "$D"
refused exists "$TL" --json init "$D"

expect 0 "ok seq 2 id acme" -- "$TL" -d "$D" account --id acme --name Acme
expect 0 '{"ok":true,"seq":3,"id":"alice"}' -- "$TL" -d "$D" --json user --id alice --role member --account acme --name Alice
expect 0 '{"ok":true,"seq":4,"id":"sam"}' -- "$TL" -d "$D" user --id sam --role staff --name Sam --json
expect 0 '{"ok":true,"seq":5,"id":"zoe"}' -- "$TL" --json -d "$D" user --id zoe --role ambassador --name "Zoé"
expect 0 '{"ok":true,"seq":6,"id":"carl"}' -- "$TL" -d "$D" user --json --id carl --role member --account acme --name Carl
expect 0 '{"ok":true,"seq":7,"id":"o-1"}' -- "$TL" -d "$D" --json project --as zoe --id o-1 --account acme --type order \
  --title "Order #1" --ambassador zoe --ambassador-message "Size M please"
expect 0 '{"ok":true,"seq":8}' -- "$TL" -d "$D" --json status --as alice --project o-1 --status shipped
# `project status` is the same command; setting the current status again is a no-op
expect 0 '{"ok":true,"noop":true}' -- "$TL" -d "$D" --json project status --as alice --project o-1 --status shipped
expect 0 '{"ok":true,"seq":9,"id":"t-1","message_id":"m-1"}' -- "$TL" -d "$D" --json topic --as alice --project o-1 --id t-1 \
  --title Shipping --body "When?" --message-id m-1
expect 0 '{"ok":true,"seq":10,"id":"m-2"}' -- "$TL" -d "$D" --json send --as sam --id m-2 --project o-1 --channel chat \
  --topic t-1 --body Tomorrow
expect 0 '{"ok":true,"seq":11,"id":"s-1"}' -- "$TL" -d "$D" --json send --as alice --id s-1 --account acme --channel support \
  --body "Help with export"
expect 0 '{"ok":true,"seq":12,"id":"n-1"}' -- "$TL" -d "$D" --json note --as alice --project o-1 --id n-1 --body "Check stock"
printf '%%PDF-1.4\n' > "$T/label.pdf"
expect 0 '{"ok":true,"seq":13,"id":"a-1"}' -- "$TL" -d "$D" --json attach --as alice --project o-1 --id a-1 \
  --mime application/pdf "$T/label.pdf"
expect 0 '{"ok":true,"seq":14,"id":"m-3"}' -- "$TL" -d "$D" --json reply --as alice m-2 --id m-3 --body Thanks --attachments a-1
"$TL" -d "$D" attachment get a-1 --as sam -o "$T/back.pdf" 2> /dev/null
cmp -s "$T/label.pdf" "$T/back.pdf" || fail "attachment get returned other bytes"
refused forbidden "$TL" -d "$D" --json attachment get a-1 --as zoe -o "$T/no.pdf"
# a write that fails (a full device) is an error, also for a file smaller than stdio's buffer
# (written only when it is closed)
if [ -w /dev/full ]; then
  expect 1 "" -- "$TL" -d "$D" attachment get a-1 --as sam -o /dev/full
  st=0; "$TL" -d "$D" attachment get a-1 --as sam -o - > /dev/full 2> /dev/null || st=$?
  [ "$st" = 1 ] || fail "attachment get -o - to a full stdout exited $st"
fi
expect 0 '{"ok":true,"seq":15}' -- "$TL" -d "$D" --json read --as alice m-2
expect 0 '{"ok":true,"noop":true}' -- "$TL" -d "$D" --json read --as alice m-2
expect 0 "ok (nothing to do)" -- "$TL" -d "$D" read --as alice m-3
expect 0 '{"ok":true,"seq":16}' -- "$TL" -d "$D" --json mark-unread --as alice m-2
expect 0 '{"ok":true,"seq":17}' -- "$TL" -d "$D" --json pin --as alice m-3
refused already_pinned "$TL" -d "$D" --json pin --as sam m-3
expect 0 '{"ok":true,"seq":18}' -- "$TL" -d "$D" --json unpin --as sam m-3
refused not_pinned "$TL" -d "$D" --json unpin --as sam m-3
refused has_replies "$TL" -d "$D" --json delete --as sam m-2
refused forbidden "$TL" -d "$D" --json delete --as carl m-3
refused forbidden "$TL" -d "$D" --json note --as sam --project o-1 --body x
expect 0 '{"ok":true,"seq":19,"id":"m-4"}' -- "$TL" -d "$D" --json send --as zoe --id m-4 --project o-1 --channel ambassador --body hi
refused conflict "$TL" -d "$D" --json status --as alice --project o-1 --status delivered --expect 3
expect 0 '{"ok":true,"seq":20}' -- "$TL" -d "$D" --json status --as alice --project o-1 --status delivered --expect 19
refused not_found "$TL" -d "$D" --json read --as nobody m-2
refused invalid_input "$TL" -d "$D" --json send --as alice --project o-1 --channel chat --body "no topic"
refused invalid_input "$TL" -d "$D" --json note --as alice --project o-1 --body x --colour red
refused invalid_input "$TL" -d "$D" --json account --as alice --id beta --name Beta
refused exists "$TL" -d "$D" --json account --id acme --name Other
expect 0 '{"ok":true,"seq":2,"id":"acme","duplicate":true}' -- "$TL" -d "$D" --json account --id acme --name Acme
expect 0 '{"ok":true,"seq":21}' -- "$TL" -d "$D" --json delete --as alice m-3
refused deleted "$TL" -d "$D" --json read --as sam m-3

# without --json: refusals go to stderr as one line, nothing on stdout, exit 1
status=0
out=$("$TL" -d "$D" delete --as carl m-2 2> "$T/stderr") || status=$?
[ "$status" = 1 ] && [ -z "$out" ] || fail "human refusal: status $status, stdout $out"
grep -q 'forbidden' "$T/stderr" || fail "human refusal: stderr $(cat "$T/stderr")"

# a malformed command line is a refusal: invalid_input, exit 1, nothing changed; an unknown
# command: exit 2. Stray arguments are refused by every command (`key rotate EXTRA` rotated
# the key), a flag given twice too (which one was meant?), and so is an empty item of a list.
before=$("$TL" -d "$D" --json digest)
for args in "read --as alice m-2 extra" "status --as alice --project o-1 --status x --expect soon" \
            "attach --as alice --project o-1" "tracking --as alice --limit abc" "tracking --as alice --bogus 1" \
            "key rotate EXTRA" "replay $T/elsewhere" "export o-1" "stats x" "verify x" "checkpoint x" "log x" \
            "digest x" "verify --threads 0" "replay --into $T/r --until-time 99999999999999999999999" \
            "send --as alice --as sam --channel chat --project o-1 --topic t-1 --body hi" \
            "tracking --as alice --limit 1 --limit 2" "note --as alice --project o-1 --body x --attachments a,,b" \
            "note --as alice --project o-1 --body x --attachments ," "apply $T" "-d $T/other digest" \
            "status --as alice --project o-1 --status x --expect +20" "status --as alice --project o-1 --status x --expect -1" \
            "status --as alice --project o-1 --status x --expect 0x14" \
            "attach --as alice --project o-1 --id a-9 --data aGk= $T/label.pdf"; do
  status=0
  # shellcheck disable=SC2086
  out=$("$TL" -d "$D" --json $args 2> /dev/null) || status=$?
  [ "$status" = 1 ] || fail "malformed '$args' exited $status, want 1"
  python3 -c 'import json,sys; o=json.loads(sys.argv[1]); assert o == {"ok": False, "error": "invalid_input", "message": o["message"]}' "$out" \
    || fail "malformed '$args' printed $out"
done
[ "$("$TL" -d "$D" --json digest)" = "$before" ] || fail "a malformed command line changed the log"
# the command line is checked before the log is opened: on a directory that holds no log, a
# malformed one is still invalid_input (SPEC "When several rules are broken": invalid_input first)
for args in "erase n-1" "erase n-1 --kind message" "attachment get a-1 -o $T/x" "attachment get a-1 --as" \
            "attach --as alice --project o-1 --data aGk= $T/label.pdf" "tracking --as alice --limit -1"; do
  status=0
  # shellcheck disable=SC2086
  out=$("$TL" -d "$T/nolog" --json $args 2> /dev/null) || status=$?
  [ "$status" = 1 ] && python3 -c 'import json,sys; o=json.loads(sys.argv[1]); assert o["error"] == "invalid_input"' "$out" \
    || fail "malformed '$args' on no log exited $status with $out, want invalid_input"
done
status=0
out=$("$TL" -d "$D" frobnicate --json 2> /dev/null) || status=$?
[ "$status" = 2 ] || fail "an unknown command exited $status, want 2"
python3 -c 'import json,sys; o=json.loads(sys.argv[1]); assert o["ok"] is False and o["error"] == "invalid_input"' "$out" \
  || fail "an unknown command with --json printed $out"
for args in "verify --bogus x" "stats --limit 3" "export --projects p" "log --foo 1" "checkpoint --x 1" "digest --bogus"; do
  status=0
  # shellcheck disable=SC2086
  out=$("$TL" -d "$D" --json $args 2> /dev/null) || status=$?
  [ "$status" = 1 ] && python3 -c 'import json,sys; o=json.loads(sys.argv[1]); assert o["error"] == "invalid_input" and "unknown flag" in o["message"]' "$out" \
    || fail "'$args' exited $status with $out, want an unknown-flag refusal"
done

# an argument that is not UTF-8 still gives a valid JSON error line (the bytes as U+FFFD)
for args in "tracking --as a$(printf '\xff')" "history --as alice --project p$(printf '\xc3')" "send --as alice --channel chat --project o-1 --topic t-1 --body $(printf '\xed\xa0\x80')"; do
  status=0
  # shellcheck disable=SC2086
  out=$("$TL" -d "$D" --json $args 2> /dev/null) || status=$?
  [ "$status" = 1 ] && printf '%s' "$out" | python3 -c 'import json,sys; o=json.loads(sys.stdin.buffer.read().decode("utf-8")); assert o["ok"] is False and o["error"] == "invalid_input"' \
    || fail "'$args' exited $status with $out, want a JSON invalid_input in UTF-8"
done

# attachments: over the limit refused before reading; the bytes back to the audience only
D2=$T/small
"$TL" init --max-attachment 10 "$D2" > /dev/null
"$TL" -d "$D2" apply > /dev/null <<'JSON'
{"op":"account.create","id":"acme","name":"Acme"}
{"op":"user.create","id":"alice","role":"member","account":"acme","name":"Alice"}
{"op":"project.create","as":"alice","id":"p","account":"acme","type":"video","title":"V"}
JSON
head -c 10 /dev/zero > "$T/ten"
head -c 11 /dev/zero > "$T/eleven"
: > "$T/empty"
expect 0 '{"ok":true,"seq":5,"id":"f10"}' -- "$TL" -d "$D2" --json attach --as alice --project p --id f10 "$T/ten"
expect 0 '{"ok":true,"seq":6,"id":"f0"}' -- "$TL" -d "$D2" --json attach --as alice --project p --id f0 "$T/empty"
refused too_large "$TL" -d "$D2" --json attach --as alice --project p --id f11 "$T/eleven"
# a file over the limit is not read (a sparse 64 GiB one answers at once), yet the other
# fields' invalid_input still comes first, as in apply; too_large comes before exists
truncate -s 64G "$T/huge"
refused too_large "$TL" -d "$D2" --json attach --as alice --project p --id fh "$T/huge"
refused invalid_input "$TL" -d "$D2" --json attach --as alice --project p --id "bad id" "$T/eleven"
refused invalid_input "$TL" -d "$D2" --json attach --as alice --project p --account acme "$T/huge"
refused invalid_input "$TL" -d "$D2" --json attach --as alice --project p --mime "not a mime" "$T/eleven"
refused too_large "$TL" -d "$D2" --json attach --as alice --project p --id f10 "$T/eleven"
refused too_large "$TL" -d "$D2" --json attach --as alice --project nope "$T/eleven"
refused invalid_input "$TL" -d "$D2" --json attach --as alice --project p --id fd "$T"
expect 0 '{"ok":true,"seq":7,"id":"ff"}' -- "$TL" -d "$D2" --json attach --as alice --project p --id ff --file "$T/ten"
expect 0 '{"ok":true,"seq":8,"id":"fb"}' -- "$TL" -d "$D2" --json attach --as alice --project p --id fb --name b.bin --data aGk=
refused too_large "$TL" -d "$D2" --json attach --as alice --project p --id fe --name e.bin --data AAAAAAAAAAAAAAAA
# a file whose size says 0 but which holds bytes (procfs): read to its end, not to its size
if [ -r /proc/sys/kernel/ostype ] && [ "$(stat -c %s /proc/sys/kernel/ostype)" = 0 ]; then
  expect 0 '{"ok":true,"seq":9,"id":"fo"}' -- "$TL" -d "$D2" --json attach --as alice --project p --id fo /proc/sys/kernel/ostype
  "$TL" -d "$D2" attachment get fo --as alice -o "$T/ostype" 2> /dev/null
  [ "$(cat /proc/sys/kernel/ostype)" = "$(cat "$T/ostype")" ] && [ -s "$T/ostype" ] || fail "a procfs file was uploaded as $(wc -c < "$T/ostype") bytes"
  refused too_large "$TL" -d "$D2" --json attach --as alice --project p --id fm /proc/self/maps
fi

# (a-1 rides on m-3, deleted above: its bytes are now the auditors' alone)
refused deleted "$TL" -d "$D" --json attachment get a-1 --as sam -o "$T/gone.pdf"
refused forbidden "$TL" -d "$D" --json attachment get a-1 --as zoe -o "$T/no.pdf"

# erase: the body is gone, the chain still verifies, a retry of that note is now `exists`
refused invalid_input "$TL" -d "$D" --json erase n-1 --reason "GDPR request" --kind video
refused not_found "$TL" -d "$D" --json erase n-1 --reason "GDPR request" --kind attachment
expect 0 '{"ok":true,"seq":22,"id":"n-1"}' -- "$TL" -d "$D" --json erase n-1 --reason "GDPR request" --kind message
refused exists "$TL" -d "$D" --json note --as alice --project o-1 --id n-1 --body "Check stock"
"$TL" -d "$D" verify > /dev/null || fail "verify after erase"

# one-shots and apply record the same events: replay the same actions through apply
D3=$T/apply
"$TL" init "$D3" > /dev/null
"$TL" -d "$D3" apply > /dev/null <<'JSON'
{"op":"account.create","id":"acme","name":"Acme"}
{"op":"user.create","id":"alice","role":"member","account":"acme","name":"Alice"}
{"op":"user.create","id":"sam","role":"staff","name":"Sam"}
{"op":"user.create","id":"zoe","role":"ambassador","name":"Zoé"}
{"op":"user.create","id":"carl","role":"member","account":"acme","name":"Carl"}
{"op":"project.create","as":"zoe","id":"o-1","account":"acme","type":"order","title":"Order #1","ambassador":"zoe","ambassador_message":"Size M please"}
{"op":"project.status","as":"alice","project":"o-1","status":"shipped"}
{"op":"topic.create","as":"alice","id":"t-1","project":"o-1","title":"Shipping","body":"When?","message_id":"m-1"}
{"op":"message.send","as":"sam","id":"m-2","project":"o-1","channel":"chat","topic":"t-1","body":"Tomorrow"}
{"op":"message.send","as":"alice","id":"s-1","account":"acme","channel":"support","body":"Help with export"}
{"op":"note.add","as":"alice","id":"n-1","project":"o-1","body":"Check stock"}
{"op":"attachment.upload","as":"alice","id":"a-1","project":"o-1","name":"label.pdf","mime":"application/pdf","data":"JVBERi0xLjQK"}
{"op":"message.reply","as":"alice","id":"m-3","message":"m-2","body":"Thanks","attachments":["a-1"]}
{"op":"message.read","as":"alice","message":"m-2"}
{"op":"message.unread","as":"alice","message":"m-2"}
{"op":"message.pin","as":"alice","message":"m-3"}
{"op":"message.unpin","as":"sam","message":"m-3"}
{"op":"message.send","as":"zoe","id":"m-4","project":"o-1","channel":"ambassador","body":"hi"}
{"op":"project.status","as":"alice","project":"o-1","status":"delivered","expect":19}
{"op":"message.delete","as":"alice","message":"m-3"}
JSON
"$TL" -d "$D3" erase n-1 --reason "GDPR request" > /dev/null
shape() { "$TL" -d "$1" --json log | python3 -c '
import json, sys
for line in sys.stdin:
    o = json.loads(line)
    p = {k: v for k, v in o["payload"].items() if k not in ("body_commit", "data_commit", "request", "commitment", "key", "public_key", "pubkey")}
    print(o["seq"], o["actor"], o["kind"], o.get("project"), json.dumps(p, sort_keys=True) if o["seq"] > 1 else "")
'; }
shape "$D" > "$T/oneshot.shape"
shape "$D3" > "$T/apply.shape"
diff -u "$T/apply.shape" "$T/oneshot.shape" || fail "one-shot commands and apply recorded different events"

# SPEC "Settled details": every event about a project, or about a message of a project,
# carries the project's id in `log --json`; events of the support conversation and of the
# operator's accounts and users carry none. The expectation comes from the scenario above
# (everything after the users is about o-1, but the support conversation's events), plus a
# read, a pin and an upload in the support conversation.
"$TL" -d "$D3" apply > /dev/null <<'JSON'
{"op":"message.read","as":"sam","message":"s-1"}
{"op":"message.pin","as":"sam","message":"s-1"}
{"op":"attachment.upload","as":"alice","id":"a-s","account":"acme","name":"x.txt","data":"aGk="}
{"op":"message.read","as":"alice","message":"m-2"}
JSON
"$TL" -d "$D3" --json log | python3 -c '
import json, sys
support = {"s-1", "a-s"}
bad, kinds = [], set()
for line in sys.stdin:
    o = json.loads(line)
    k, p = o["kind"], o["payload"]
    about = p.get("message") or p.get("target") or p.get("id")
    if k in ("log.created", "account.created", "user.created", "key.rotated") or about in support:
        want = None
    else:
        want = "o-1"
    kinds.add(k)
    if o.get("project") != want:
        bad.append("seq %d %s: project %r, want %r" % (o["seq"], k, o.get("project"), want))
missing = {"project.created", "project.status_changed", "topic.created", "message.sent", "message.replied", "message.read",
           "message.unread", "message.pinned", "message.unpinned", "message.deleted", "note.added", "attachment.uploaded",
           "content.erased"} - kinds
if missing: bad.append(f"kinds not exercised: {sorted(missing)}")
if bad: print("\n".join(bad)); sys.exit(1)
' || fail "log --json: events and their project field"

# --attachments a,b is a list of two ids, as "attachments":["a","b"] in apply
D4=$T/multi
"$TL" init "$D4" > /dev/null
"$TL" -d "$D4" apply > /dev/null <<'JSON'
{"op":"account.create","id":"acme","name":"Acme"}
{"op":"user.create","id":"alice","role":"member","account":"acme","name":"Alice"}
{"op":"project.create","as":"alice","id":"p","account":"acme","type":"video","title":"V"}
{"op":"attachment.upload","as":"alice","id":"x-1","project":"p","name":"1.txt","data":"aGk="}
{"op":"attachment.upload","as":"alice","id":"x-2","project":"p","name":"2.txt","data":"aGk="}
JSON
expect 0 '{"ok":true,"seq":7,"id":"nx"}' -- "$TL" -d "$D4" --json note --as alice --project p --id nx --body two --attachments x-1,x-2
"$TL" -d "$D4" --json messages --as alice --project p --channel notes | python3 -c '
import json, sys
m = json.load(sys.stdin)["messages"]
assert [a["id"] for a in m[0]["attachments"]] == ["x-1", "x-2"], m
' || fail "note --attachments x-1,x-2 did not carry both attachments"

# a one-shot command's op is its name: a flag --op is unknown, not a way to run another
# command (`send --op account.create` created an account)
refused invalid_input "$TL" -d "$D4" --json send --op account.create --id zz --name Z
refused invalid_input "$TL" -d "$D4" --json read --as alice nx --op message.pin
[ "$("$TL" -d "$D4" --json log --from 8 | wc -l)" = 0 ] || fail "a refused --op flag appended an event"

# flags a command does not take are refused, not ignored: --file names attach's file only,
# and a one-shot command has no unsynced mode (--nosync is apply's)
refused invalid_input "$TL" -d "$D4" --json read --as alice nx --file /dev/null
refused invalid_input "$TL" -d "$D4" --json read --as alice nx --nosync
refused invalid_input "$TL" -d "$D4" --json note --as alice --project p --body x --file "$T/label.pdf"
[ "$("$TL" -d "$D4" --json log --from 8 | wc -l)" = 0 ] || fail "a refused --file or --nosync flag appended an event"

# one field given twice, by two spellings of a flag or by a flag and the positional, is
# refused as a flag given twice is (which one was meant?), not decided by the last one
refused invalid_input "$TL" -d "$D4" --json read --as alice nx --message x-1
refused invalid_input "$TL" -d "$D4" --json note --as alice --project p --body x --id n-a --attachment x-1 --attachments x-2
refused invalid_input "$TL" -d "$D4" --json topic --as alice --project p --title T --body x --message-id m-a --message_id m-b
[ "$("$TL" -d "$D4" --json log --from 8 | wc -l)" = 0 ] || fail "a field given twice appended an event"

# a flag's value is data, never a switch: `--body --json` is a note saying "--json", answered
# in the human form (the CLI's early scan for --json took the value for the switch)
OUT=$("$TL" -d "$D4" note --as alice --project p --id n-dash --body --json) || fail "note --body --json: $OUT"
grep -q "^ok seq 8 id n-dash" <<< "$OUT" || fail "note --body --json was not answered in the human form: $OUT"
"$TL" -d "$D4" --json messages --as alice --project p --channel notes | grep -q '"id":"n-dash",[^}]*"body":"--json"' \
  || fail "the note's body is not --json: $("$TL" -d "$D4" --json messages --as alice --project p --channel notes)"

echo "domain_oneshot: ok"
