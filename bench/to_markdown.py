#!/usr/bin/env python3
"""bench/to_markdown.py — one run of bench/run (its JSON) as the Markdown that docs/BENCHMARKS.md
shows: the machine, the command, and the table (each threadlog figure beside the limit or peer
measured in the same run, the ratio and the target).

  bench/to_markdown.py bench/results/runs/RUN.json > table.md
"""
import json, sys

# The limits and peers, as an operator reads them.
BASELINES = {
    "threadlog.apply.sign_1t": "ed25519 sign, 1 thread (bursts beside each run)",
    "limits.ed25519_sign.1t": "ed25519 sign, 1 thread",
    "limits.ed25519_sign.2t": "ed25519 sign, 2 threads",
    "limits.ed25519_verify.1t": "ed25519 verify, 1 thread",
    "limits.ed25519_verify.2t": "ed25519 verify, 2 threads",
    "limits.blake2b256": "BLAKE2b-256 of an event-sized record",
    "limits.lmdb_append.batch1000.sync": "raw LMDB append, batches of 1,000, synced",
    "limits.lmdb_scan": "LMDB scan of the records",
    "limits.lmdb_commit.sync": "one synced LMDB commit (latency, p50)",
    "raw_ed25519_verify_2t_before": "raw ed25519 verify, 2 threads, burst before each replay",
    "raw_ed25519_verify_2t_after": "raw ed25519 verify, 2 threads, burst after each replay",
    "limits.lmdb_append.batch1.sync": "raw LMDB append, batch 1, synced",
    "limits.lmdb_append.batch1000.nosync": "raw LMDB append, batches of 1,000, unsynced",
    "limits.lmdb_scan_hash": "LMDB scan + BLAKE2b of each record",
    "raw_scan_decode_hash": "raw scan + msgpack decode + BLAKE2b of the same log (after each run)",
    "sqlite.insert.concurrent.16t": "SQLite WAL FULL, 16 threads, a commit per row",
    "sqlite.insert.concurrent.64t": "SQLite WAL FULL, 64 threads, a commit per row",
    "raw_ed25519_verify_1t": "raw ed25519 verify, 1 thread (bursts around each run)",
    "raw_ed25519_verify_2t": "raw ed25519 verify, 2 threads (bursts around each run)",
    "sqlite.insert.batch1": "SQLite WAL FULL, a commit per row, 1 thread",
    "sqlite.insert.batch1000": "SQLite WAL FULL, batches of 1,000 rows",
    "sqlite.read_seq": "SQLite read back (rowid order)",
    "hypercore.append.batch1000": "Hypercore append, batches of 1,000",
    "hypercore.append.batch1": "Hypercore append of one record (unsynced)",
    "hypercore.read_seq": "Hypercore read back",
    "signed event bytes": "the signed events' own bytes",
    "3 synced LMDB commits (p50 each)": "3 synced LMDB commits (p50 each)",
}

def fmt(v, digits=3):
    if v is None:
        return ""
    if isinstance(v, (int, float)) and abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"

def machine_lines(run):
    m = run.get("machine", {})
    fields = {}
    for line in (m.get("lscpu") or "").splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip()] = v.strip()
    cpu = fields.get("Model name", m.get("cpu", "?"))
    hv = fields.get("Hypervisor vendor")
    out = [f"- CPU: {cpu}, {m.get('cores', '?')} CPUs ({fields.get('Thread(s) per core', '?')} thread(s) per core)"
           + (f", virtualised ({hv})" if hv else "")
           + (f"; caches L1d {fields['L1d cache']}, L2 {fields['L2 cache']}, L3 {fields['L3 cache']}"
              if "L1d cache" in fields and "L2 cache" in fields and "L3 cache" in fields else "")]
    if m.get("memory_gib"):
        out.append(f"- Memory: {m['memory_gib']} GiB")
    if m.get("disk"):
        rows = m["disk"].splitlines()
        if len(rows) >= 2:
            parts = rows[1].split()
            out.append(f"- Disk (the benchmark logs): {parts[0]}, {parts[1]}, {parts[2]} in all")
    out.append(f"- Kernel: {m.get('kernel', '?')}")
    return out

def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        sys.exit(2)
    with open(sys.argv[1]) as f:
        run = json.load(f)
    print(f"Run: {run.get('when', '?')}, `{run.get('command', 'bench/run')}`"
          + (f", commit `{run['commit']}`" if run.get("commit") else "")
          + (", QUICK sizes" if run.get("quick") else "") + f", {run.get('runs', '?')} runs per figure.")
    if run.get("failed"):
        print(f"**Failed programs: {'; '.join(run['failed'])}** (their rows are missing).")
    print()
    for line in machine_lines(run):
        print(line)
    print()
    print("| what | figure | spread (runs) | unit | p50 / p99 µs | limit or peer (same run) | ratio | target |")
    print("|---|---|---|---|---|---|---|---|")
    for r in run["table"]:
        spread = f"{fmt(r.get('min'))}–{fmt(r.get('max'))} ({r['runs']})" if r.get("runs") and r.get("min") is not None else ""
        lat = f"{fmt(r.get('p50_us'))} / {fmt(r.get('p99_us'))}" if r.get("p99_us") is not None else ""
        base = ""
        if r.get("baseline") and r.get("baseline_value") is not None and not str(r["baseline"]).startswith("p99 target"):
            base = f"{fmt(r['baseline_value'])} {BASELINES.get(r['baseline'], r['baseline'])}"
        target = ""
        if r.get("target") is not None:
            is_query = str(r.get("baseline", "")).startswith("p99 target")
            target = (f"p99 ≤ {fmt(r['target'])} µs" if is_query else
                      f"≤ {fmt(r['target'])}" if r.get("target_is_max") or r["what"].startswith("disk")
                      else f"≥ {fmt(r['target'])}")
            target += {True: " ✔", False: " ✘", None: ""}[r.get("met")]
        figure = fmt(r["figure"])
        what = r["what"]
        if str(r.get("unit", "")).startswith("KiB"):
            figure, unit = f"{r['figure'] / 1024.0:,.0f}", "MiB"
            what = "peak RSS: " + what[len("rss."):-len("_kib")] if what.startswith("rss.") and what.endswith("_kib") else what
        else:
            unit = r.get("unit") or ""
        print(f"| {what} | {figure} | {spread} | {unit} | {lat} | {base} | {fmt(r.get('ratio'))} | {target} |")
    figs = run.get("figures") or {}
    own = [k for k in figs if k.startswith(("limits.", "sqlite.", "hypercore.", "raw_ed25519_"))]
    if own:
        print()
        print("Every limit and peer measured in this run (median of the runs, lowest–highest):")
        print()
        print("| limit or peer | figure | spread (runs) | unit | p50 / p99 µs |")
        print("|---|---|---|---|---|")
        for k in own:
            f = figs[k]
            spread = f"{fmt(f.get('min'))}–{fmt(f.get('max'))} ({f['runs']})" if f.get("runs") and f.get("min") is not None else ""
            lat = f"{fmt(f.get('p50_us'))} / {fmt(f.get('p99_us'))}" if f.get("p99_us") is not None else ""
            print(f"| {BASELINES.get(k, k)} | {fmt(f.get('value'))} | {spread} | {f.get('unit') or ''} | {lat} |")
    t = run.get("timings_s")
    if t:
        print()
        print("Program wall times (s): " + ", ".join(f"{k.split('/')[-1]} {v}" for k, v in t.items()) + ".")

if __name__ == "__main__":
    main()
