#!/usr/bin/env bash
# apply_memory.sh — `threadlog apply`'s memory is bounded by its group's bytes, not by the
# number of commands a group may hold: 40 uploads of 6 MiB (a group of 40 by count, 320 MB of
# lines) stay well under what holding them all would take (~2.4 times their lines), and every
# upload is answered and stored. And refused lines end a group too: 1,000,000 malformed lines
# that never pause are answered in groups of --sync-every, not held until the end (~420 MB,
# once), and the valid line after them runs. Peak RSS is read with getrusage(RUSAGE_CHILDREN).
#
# usage: apply_memory.sh THREADLOG_BINARY SOURCE_DIR
set -euo pipefail
TL="$1"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

D=$T/log
"$TL" init "$D" > /dev/null
/usr/bin/python3 - "$T/in.jsonl" <<'PY'
import base64, json, os, sys
with open(sys.argv[1], "w") as f:
    f.write('{"op":"account.create","id":"acme","name":"Acme"}\n')
    f.write('{"op":"user.create","id":"alice","role":"member","account":"acme","name":"Alice"}\n')
    f.write('{"op":"project.create","as":"alice","id":"p","account":"acme","type":"video","title":"V"}\n')
    data = base64.b64encode(os.urandom(6 << 20)).decode()
    for i in range(40):
        f.write(json.dumps({"op": "attachment.upload", "as": "alice", "id": "f%d" % i, "project": "p",
                            "name": "f.bin", "data": data}) + "\n")
PY
/usr/bin/python3 - "$TL" "$D" "$T/in.jsonl" "$T/out" <<'PY' || fail "apply's memory"
import json, os, resource, subprocess, sys
tl, d, src, out = sys.argv[1:]
env = dict(os.environ)
if "ASAN_OPTIONS" in env:  # a sanitizer build: its quarantine of freed memory (256 MB) is not ours
    env["ASAN_OPTIONS"] += ":quarantine_size_mb=8"
with open(src) as i, open(out, "w") as o:
    rc = subprocess.run([tl, "-d", d, "apply"], stdin=i, stdout=o, env=env).returncode
assert rc == 0, "apply exited %d" % rc
peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
res = [json.loads(l) for l in open(out)]
assert len(res) == 43 and all(r["ok"] for r in res), res[:3]
# holding all 40 (320 MB of lines) would take ~770 MB; one 64 MiB group ~160 MB
assert peak_mb < 400, "peak RSS %.0f MB" % peak_mb
print("apply_memory: peak RSS %.0f MB for 320 MB of uploads" % peak_mb)
PY
"$TL" -d "$D" verify > /dev/null || fail "verify"
/usr/bin/python3 - "$TL" "$D" "$T" <<'PY' || fail "apply's memory for refused lines"
import json, os, resource, subprocess, sys
tl, d, t = sys.argv[1:]
src = t + "/refused.jsonl"
with open(src, "w") as f:
    f.write("x\n" * 1000000)
    f.write('{"op":"note.add","as":"alice","id":"after","project":"p","body":"still runs"}\n')
env = dict(os.environ)
if "ASAN_OPTIONS" in env:  # a sanitizer build: its quarantine of freed memory (256 MB) is not ours
    env["ASAN_OPTIONS"] += ":quarantine_size_mb=8"
with open(src) as i, open(t + "/refused.out", "w") as o:
    rc = subprocess.run([tl, "-d", d, "apply", "--sync-every", "100"], stdin=i, stdout=o, env=env).returncode
assert rc == 0, "apply exited %d" % rc
peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # this process has one child
n = 0
with open(t + "/refused.out") as o:
    for line in o:
        n += 1
        last = line
assert n == 1000001, "%d result lines" % n
assert json.loads(last)["ok"] and json.loads(last)["id"] == "after", last
# held until the end: ~420 MB; in groups of 100: a few MB (more under a sanitizer)
assert peak_mb < 150, "peak RSS %.0f MB for refused lines" % peak_mb
print("apply_memory: 1,000,000 refused lines, peak RSS %.0f MB" % peak_mb)
PY
"$TL" -d "$D" verify > /dev/null || fail "verify"
echo "apply_memory: ok"
