#!/usr/bin/env bash
# The main job: a realistic back office on a fresh log — an account with colleagues, the
# platform's staff, ambassadors and an auditor; projects of the three types; conversations with
# replies, pins, attachments and reads — then the screens (projections) as different users see
# them, a signed checkpoint, verification, and a replay whose digest must equal the live one.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tl="${1:-$here/../build/threadlog}"
dir="$(mktemp -d /tmp/threadlog-demo.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
log="$dir/log"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "init: a new log and its writer key"
"$tl" init "$log"
export THREADLOG_DIR="$log"

step "apply: $(grep -c . "$here/demo.jsonl") commands (three are refused on purpose: an ambassador channel that does not exist, a topic of another project, staff writing a note)"
"$tl" apply "$here/demo.jsonl"

step "tracking table as alice (member of acme), unread first"
"$tl" tracking --as alice --sort unread
step "tracking table as sam (platform staff): notes never move a project for staff"
"$tl" tracking --as sam
step "tracking table as zoe (ambassador): only her projects"
"$tl" tracking --as zoe
step "dashboard as bob"
"$tl" dashboard --as bob
step "unread counts as bob"
"$tl" unread --as bob
step "chat of order o-1 as alice (pinned first)"
"$tl" messages --as alice --project o-1 --channel chat
step "history of v-1 as audrey (auditor: sees the deleted message's body)"
"$tl" history --as audrey --project v-1
step "history of app-1 as sam (staff: no internal notes)"
"$tl" history --as sam --project app-1
step "the attachment back, checked against its commitment"
"$tl" attachment get a-label --as bob -o "$dir/label.pdf" && head -c 8 "$dir/label.pdf" && echo

step "log (first events)"
"$tl" log --limit 5
step "checkpoint, then verify (chain, signatures, key chain, content)"
"$tl" checkpoint > "$dir/checkpoint.json"
cat "$dir/checkpoint.json"
"$tl" verify --checkpoint "$dir/checkpoint.json"

step "replay into a copy; its digest must equal the live digest"
live=$("$tl" digest)
"$tl" replay --into "$dir/replayed"
copy=$("$tl" -d "$dir/replayed" digest)
echo "live:     $live"
echo "replayed: $copy"
[ "$live" = "$copy" ] && echo "digests equal" || { echo "DIGESTS DIFFER"; exit 1; }

step "stats"
"$tl" stats
