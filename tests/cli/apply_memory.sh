#!/usr/bin/env bash
# apply_memory.sh — `threadlog apply`'s memory is bounded by its group's bytes, not by the
# number of commands a group may hold: 40 uploads of 6 MiB (a group of 40 by count, 320 MB of
# lines) stay well under what holding them all would take (~2.4 times their lines), and every
# upload is answered and stored. Peak RSS is read with getrusage(RUSAGE_CHILDREN).
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
import json, resource, subprocess, sys
tl, d, src, out = sys.argv[1:]
with open(src) as i, open(out, "w") as o:
    rc = subprocess.run([tl, "-d", d, "apply"], stdin=i, stdout=o).returncode
assert rc == 0, "apply exited %d" % rc
peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
res = [json.loads(l) for l in open(out)]
assert len(res) == 43 and all(r["ok"] for r in res), res[:3]
# holding all 40 (320 MB of lines) would take ~770 MB; one 64 MiB group ~160 MB
assert peak_mb < 400, "peak RSS %.0f MB" % peak_mb
print("apply_memory: peak RSS %.0f MB for 320 MB of uploads" % peak_mb)
PY
"$TL" -d "$D" verify > /dev/null || fail "verify"
echo "apply_memory: ok"
