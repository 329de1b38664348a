#!/usr/bin/env node
/*
 * bench_hypercore.js - the second peer: Hypercore (npm package `hypercore`, an append-only
 * signed log with its native parts shipped by npm), appending and reading the same records
 * as bench_sqlite: --record-bytes (default 200) random bytes each, in the same run.
 *
 *   - batch 1: `await core.append(record)` one record at a time, records/s, p50/p99;
 *   - batch 1,000: `await core.append([1,000 records])`, records/s;
 *   - read back: `await core.get(i)` for every record in order, records/s.
 *
 * Durability is not the same as threadlog's or SQLite's: Hypercore 11 stores through
 * RocksDB (hypercore-storage) and does not fsync per append (strace of a run: a handful of
 * fdatasync calls for tens of thousands of appends), so its append rates are those of an
 * unsynced log and compare with threadlog's bulk mode, not with its synced commits. Hypercore
 * signs a Merkle tree root per append (ed25519), as threadlog signs each event.
 *
 *   node bench_hypercore.js [--quick] [--runs N] [--record-bytes B]
 * One JSON object per figure on stdout (as every bench/ program), progress on stderr. Each
 * run works in a fresh directory under $TMPDIR (default /tmp), removed at the end.
 */
'use strict'
const fs = require('fs')
const os = require('os')
const path = require('path')
const crypto = require('crypto')
const Hypercore = require('hypercore')

function args () {
  const o = { quick: false, runs: 5, recordBytes: 200 }
  const a = process.argv.slice(2)
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--quick') o.quick = true
    else if (a[i] === '--runs') o.runs = Math.max(1, parseInt(a[++i], 10) || 1)
    else if (a[i] === '--record-bytes') o.recordBytes = Math.max(1, parseInt(a[++i], 10) || 200)
    else { console.error('usage: node bench_hypercore.js [--quick] [--runs N] [--record-bytes B]'); process.exit(2) }
  }
  return o
}

const now = () => Number(process.hrtime.bigint()) / 1e9

function median (xs) {
  const s = xs.slice().sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

function pct (xs, p) {
  if (!xs.length) return 0
  const s = xs.slice().sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}

function report (what, values, unit, lat) {
  const o = { what, value: +median(values).toFixed(1), unit }
  if (lat) { o.p50_us = +pct(lat, 50).toFixed(1); o.p99_us = +pct(lat, 99).toFixed(1) }
  Object.assign(o, { min: +Math.min(...values).toFixed(1), max: +Math.max(...values).toFixed(1), runs: values.length })
  console.log(JSON.stringify(o))
}

async function oneRun (o, lat1) {
  const dir = fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), 'tl-bench-hypercore-'))
  try {
    const core = new Hypercore(path.join(dir, 'core'))
    await core.ready()
    const rec = crypto.randomBytes(o.recordBytes)
    // batch 1: a row count or a time budget, whichever comes first
    const max1 = o.quick ? 2000 : 10000
    const budget1 = o.quick ? 3 : 10
    let n = 0
    let t0 = now()
    while (n < max1 && (n < 20 || now() - t0 < budget1)) {
      const t = now()
      await core.append(rec)
      lat1.push((now() - t) * 1e6)
      n++
    }
    const r1 = n / (now() - t0)
    // batch 1,000
    const batch = new Array(1000).fill(rec)
    const batches = o.quick ? 20 : 100
    t0 = now()
    for (let i = 0; i < batches; i++) await core.append(batch)
    const r1k = (batches * 1000) / (now() - t0)
    // read back in order
    t0 = now()
    const len = core.length
    for (let i = 0; i < len; i++) {
      const b = await core.get(i)
      if (!b || b.length !== o.recordBytes) throw new Error(`record ${i} read back wrong`)
    }
    const rread = len / (now() - t0)
    await core.close()
    return { r1, r1k, rread, len }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

async function main () {
  const o = args()
  const t0 = now()
  const r1 = []; const r1k = []; const rr = []; const lat1 = []
  for (let r = 0; r < o.runs; r++) {
    const x = await oneRun(o, lat1)
    r1.push(x.r1); r1k.push(x.r1k); rr.push(x.rread)
    console.error(`  run ${r + 1}/${o.runs} done (${x.len} records read per pass)`)
  }
  report('hypercore.append.batch1', r1, 'records/s', lat1)
  report('hypercore.append.batch1000', r1k, 'records/s')
  report('hypercore.read_seq', rr, 'records/s')
  console.error(`bench_hypercore: ${(now() - t0).toFixed(1)} s (hypercore ${require('hypercore/package.json').version}, node ${process.version})`)
}

main().catch((e) => { console.error('bench_hypercore:', e && e.stack ? e.stack : e); process.exit(1) })
