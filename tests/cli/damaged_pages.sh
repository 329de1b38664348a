#!/usr/bin/env bash
# damaged_pages.sh — random bytes written over pages of a real log's data.mdb (a seeded
# sweep: 1-4 patches of 1-16 bytes on pages past the two meta pages), then the operator's
# commands on each damaged copy: verify, log, tracking, messages, digest; then each page
# header field of the demo's log, one at a time, with verify and digest. Every run must end
# with an exit status of 0 (the damage missed what it read), 1 (a clear error on stderr) or 2
# — never a signal. Some damage makes LMDB itself fault (it trusts its page pointers) or
# fail one of its assertions (abort); the CLI's guard (tools/main.c) turns that into `corrupt`. Skipped in the sanitizer build, which
# leaves those signals to the sanitizer on purpose.
#
# usage: damaged_pages.sh THREADLOG_BINARY SOURCE_DIR [CASES]
set -euo pipefail
TL="$1" SRC="$2" CASES="${3:-60}"
build=$(dirname "$TL")
if grep -q '^TL_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  echo "damaged pages: skipped in the sanitizer build (the CLI's fault guard is off there)"
  exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$TL" init "$T/base" > /dev/null
{
  cat <<'JSON'
{"op":"account.create","id":"acme","name":"Acme"}
{"op":"user.create","id":"alice","role":"member","account":"acme","name":"Alice"}
{"op":"user.create","id":"sam","role":"staff","name":"Sam"}
{"op":"project.create","as":"alice","id":"o-1","account":"acme","type":"order","title":"O"}
{"op":"topic.create","as":"alice","id":"t-1","project":"o-1","title":"T","body":"When?"}
JSON
  for i in $(seq 1 1500); do
    who=alice; [ $((i % 2)) -eq 0 ] && who=sam
    printf '{"op":"message.send","as":"%s","project":"o-1","channel":"chat","topic":"t-1","body":"message %d of the damaged-pages test"}\n' "$who" "$i"
  done
} | "$TL" -d "$T/base" apply > /dev/null
/usr/bin/env python3 - "$T" "$TL" "$CASES" "$SRC" <<'PY'
import os, random, shutil, subprocess, sys
tmp, cli, cases, src = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
base = os.path.join(tmp, "base")
pages = os.path.getsize(os.path.join(base, "data.mdb")) // 4096
rnd = random.Random(20261125)
bad, seen = [], {}
for i in range(cases):
    d = os.path.join(tmp, "copy")
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(base, d)
    with open(os.path.join(d, "data.mdb"), "r+b") as f:
        for _ in range(rnd.randint(1, 4)):
            f.seek(rnd.randrange(2, pages) * 4096 + rnd.randrange(4096))
            f.write(bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 16))))
    for cmd in (["verify"], ["log"], ["tracking", "--as", "sam"],
                ["messages", "--as", "sam", "--project", "o-1", "--channel", "chat"], ["digest"]):
        r = subprocess.run([cli, "-d", d] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        seen[r.returncode] = seen.get(r.returncode, 0) + 1
        if r.returncode not in (0, 1, 2):
            bad.append(f"case {i}: {cmd[0]} ended with {r.returncode}: {r.stderr.decode(errors='replace')[-200:]}")
        elif r.returncode == 1 and not r.stderr.strip():
            bad.append(f"case {i}: {cmd[0]} failed without saying why")
print(f"damaged pages: {cases} copies x 5 commands, exit statuses {dict(sorted(seen.items()))}")

# Then every page of the demo's small log (examples/demo.jsonl, 25 pages), each header field
# at a time: flags (offset 10), lower and upper bounds (12, 14), the first node pointers (16,
# 18). Some of that damage trips LMDB's internal assertions (abort(), e.g. "Assertion
# 'IS_LEAF(mp)' failed in mdb_cursor_next()" for page 21 +12) rather than a fault; the guard
# answers `corrupt` for those too. One copy, each byte put back after its runs.
d = os.path.join(tmp, "demo")
subprocess.run([cli, "init", d], stdout=subprocess.DEVNULL, check=True)
with open(os.path.join(src, "examples", "demo.jsonl"), "rb") as f:
    subprocess.run([cli, "-d", d, "apply"], stdin=f, stdout=subprocess.DEVNULL, check=True)
path, runs, aborts = os.path.join(d, "data.mdb"), 0, 0
for page in range(2, os.path.getsize(path) // 4096):
    for off in (10, 12, 14, 16, 18):
        with open(path, "r+b") as f:
            f.seek(page * 4096 + off)
            old = f.read(1)
            f.seek(page * 4096 + off)
            f.write(bytes([old[0] ^ 0xff]))
        for cmd in (["verify"], ["digest"]):
            r = subprocess.run([cli, "-d", d] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
            runs += 1
            aborts += b"Assertion" in r.stderr
            if r.returncode not in (0, 1, 2):
                bad.append(f"page {page} +{off}: {cmd[0]} ended with {r.returncode}: {r.stderr.decode(errors='replace')[-200:]}")
            elif r.returncode == 1 and not r.stderr.strip():
                bad.append(f"page {page} +{off}: {cmd[0]} failed without saying why")
        # apply (a writer, on a copy) answers in JSON lines, --json or not: a damaged page that
        # stops it inside LMDB still answers its command, `corrupt` (it once wrote nothing)
        w = os.path.join(tmp, "w")
        shutil.rmtree(w, ignore_errors=True)
        os.makedirs(w, mode=0o700)
        for name in ("data.mdb", "writer.key"):
            shutil.copy(os.path.join(d, name), os.path.join(w, name))
        r = subprocess.run([cli, "-d", w, "apply"], input=b'{"op":"account.create","id":"zz","name":"Z"}\n',
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        runs += 1
        if r.returncode not in (0, 1):
            bad.append(f"page {page} +{off}: apply ended with {r.returncode}: {r.stderr.decode(errors='replace')[-200:]}")
        elif (b"Assertion" in r.stderr or b"faulted" in r.stderr) and b'"error":"corrupt"' not in r.stdout:
            bad.append(f"page {page} +{off}: apply stopped inside LMDB without a result line: {r.stdout[:200]!r}")
        with open(path, "r+b") as f:
            f.seek(page * 4096 + off)
            f.write(old)
print(f"damaged page headers: {runs} runs, {aborts} of them stopped by an assertion inside LMDB")
if bad:
    print("\n".join(bad[:20]), file=sys.stderr)
    sys.exit(1)
PY
# A projection's keys out of order in place (a catalog key "aacme\0o-3\0" rewritten to sort
# before its neighbour "aacme\0o-2\0", same length, on its page): LMDB reads it without
# complaint, so only the digest's own order check can see the damage. The digest must refuse
# (exit 1, "keys do not increase"), not print a digest of what it read, while verify, which
# reads the log alone, still passes.
"$TL" init "$T/order" > /dev/null
"$TL" -d "$T/order" apply > /dev/null <<'JSON'
{"op":"account.create","id":"acme","name":"Acme"}
{"op":"user.create","id":"alice","role":"member","account":"acme","name":"Alice"}
{"op":"project.create","as":"alice","id":"o-1","account":"acme","type":"order","title":"O"}
{"op":"project.create","as":"alice","id":"o-2","account":"acme","type":"order","title":"O"}
{"op":"project.create","as":"alice","id":"o-3","account":"acme","type":"order","title":"O"}
JSON
"$TL" -d "$T/order" digest > /dev/null || { echo "FAIL: the undamaged log's digest" >&2; exit 1; }
python3 - "$T/order/data.mdb" <<'PY'
import sys
p = sys.argv[1]
data = bytearray(open(p, "rb").read())
n = data.count(b"aacme\x00o-3\x00")
if n == 0:
    sys.exit("FAIL: the catalog key was not found in data.mdb")
open(p, "wb").write(bytes(data.replace(b"aacme\x00o-3\x00", b"aacme\x00o-0\x00")))
PY
"$TL" -d "$T/order" verify > /dev/null || { echo "FAIL: verify refused a log whose projections alone are damaged" >&2; exit 1; }
if "$TL" -d "$T/order" digest > "$T/order.out" 2> "$T/order.err"; then
  echo "FAIL: digest of a projection with keys out of order answered: $(cat "$T/order.out")" >&2; exit 1
fi
grep -q "keys do not increase" "$T/order.err" || { echo "FAIL: digest said: $(cat "$T/order.err")" >&2; exit 1; }
echo "digest of keys out of order: refused"
