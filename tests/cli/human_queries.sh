#!/usr/bin/env bash
# human_queries.sh — every query's human-readable output (the default without --json), on the
# demo log: each exits 0 and shows what its JSON says (the rows, ids, counts and cursors), so
# a query whose human printer drops, misreads or crashes on a field fails here. The JSON
# shapes themselves are test_projections_cli's.
#
# usage: human_queries.sh THREADLOG_BINARY SOURCE_DIR
set -euo pipefail
TL="$1"
SRC="$2"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
D=$T/log

"$TL" init "$D" > /dev/null
"$TL" -d "$D" apply "$SRC/examples/demo.jsonl" > "$T/results"
[ "$(grep -c '"ok":true' "$T/results")" -ge 30 ] || fail "the demo log was not built: $(cat "$T/results")"
printf '%s\n' '{"op":"account.create","id":"initech","name":"Initech"}' \
  '{"op":"user.create","id":"ian","role":"member","account":"initech","name":"Ian"}' |
  "$TL" -d "$D" apply > /dev/null

# shows WANT COMMAND... : exit 0, and every line of WANT (fixed strings) in stdout
shows() {
  local want=$1 status=0 out
  shift
  out=$("$TL" -d "$D" "$@" 2> "$T/stderr") || status=$?
  [ "$status" = 0 ] || fail "$* exited $status (stderr: $(cat "$T/stderr"))"
  while IFS= read -r line; do
    [ -z "$line" ] && continue
    grep -qF -- "$line" <<< "$out" || fail "$*: no \"$line\" in:
$out"
  done <<< "$want"
}

# every project of the viewer's table, with its unread count
json=$("$TL" -d "$D" --json tracking --as alice)
rows=$(python3 -c 'import json,sys
for r in json.loads(sys.argv[1])["rows"]: print(r["project"], r["unread"])' "$json")
while read -r project unread; do
  out=$("$TL" -d "$D" tracking --as alice)
  grep -Eq "^. ?$project +[a-z]+ +[a-z]+ +$unread " <<< "$out" || fail "tracking: no row $project with $unread unread in:
$out"
done <<< "$rows"
shows "PROJECT" tracking --as sam --sort unread
shows "g-1" tracking --as sam --type order

shows "application — 1 unread
order — 2 unread
video — 2 unread
m-amb-1" dashboard --as alice
shows "order — 2 unread
m-2
m-amb-1" dashboard --as alice --type order --more

total=$("$TL" -d "$D" --json unread --as alice | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
shows "$total unread
support" unread --as alice
shows "o-1: 2 unread
chat         1
ambassador   1" unread --as alice --project o-1

shows "project.created
topic.created
m-amb-1
project.status_changed shipped" history --as alice --project o-1
# a page that is not the last ends with its cursor, which the next page takes
next=$("$TL" -d "$D" --json history --as zoe --project o-1 --limit 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["next"])')
shows "next: $next" history --as zoe --project o-1 --limit 1
shows "m-4" history --as zoe --project o-1 --limit 1 --cursor "$next"

shows "t-ship
Shipping" topics --as alice --project o-1
shows "m-1
m-2
↳m-2 Thanks! Here is the label.  [1 attachment]" messages --as alice --project o-1 --channel chat
shows "s-1
s-2" messages --as alice --account acme --channel support
shows "(no messages)" messages --as sam --project o-2 --channel chat
shows "(no projects)" tracking --as ian

# a refusal without --json: exit 1, one line on stderr naming the code, nothing on stdout
status=0
out=$("$TL" -d "$D" history --as nobody --project o-1 2> "$T/stderr") || status=$?
[ "$status" = 1 ] && [ -z "$out" ] && grep -q "not_found" "$T/stderr" || fail "history --as nobody: exit $status, stdout $out, stderr $(cat "$T/stderr")"
echo "human_queries: ok"
