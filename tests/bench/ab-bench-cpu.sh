#!/usr/bin/env bash
# Interleaved A/B of bench-cpu between two builds of hybrimoe (say the commit before a kernel
# change and after it), under one kernel variant: runs `bench-cpu --quick` alternately with jar A
# and jar B, ROUNDS times each, and prints per format and token count the median ms of each and
# B's speed over A's (>1: B faster). On a shared machine quote these medians, never single runs.
#
#   tests/bench/ab-bench-cpu.sh A.jar B.jar [avx512|avx2|scalar|auto] [ROUNDS=3]
set -euo pipefail
a="$1"; b="$2"; variant="${3:-auto}"; rounds="${4:-3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for i in $(seq 1 "$rounds"); do
  HMOE_KERNEL="$variant" java -jar "$a" bench-cpu --quick --json "$tmp/a-$i.json" >/dev/null
  HMOE_KERNEL="$variant" java -jar "$b" bench-cpu --quick --json "$tmp/b-$i.json" >/dev/null
done
python3 - "$tmp" "$rounds" "$variant" <<'PY'
import json, statistics, sys
tmp, rounds, variant = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = {}
for side in "ab":
    for i in range(1, rounds + 1):
        d = json.load(open(f"{tmp}/{side}-{i}.json"))
        for r in d["results"]:
            rows.setdefault((r["format"], r["tokens"]), {}).setdefault(side, []).append(r["seconds"] * 1e3)
order = ["f32", "bf16", "int8", "int4"]
print(f"bench-cpu --quick, HMOE_KERNEL={variant}, medians of {rounds} interleaved runs (ms per expert FFN)")
print(f"{'format':6s} {'tokens':>6s} {'A ms':>9s} {'B ms':>9s} {'B speed / A':>12s}")
for (fmt, tok), s in sorted(rows.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
    ma, mb = statistics.median(s["a"]), statistics.median(s["b"])
    print(f"{fmt:6s} {tok:6d} {ma:9.3f} {mb:9.3f} {ma / mb:11.2f}x")
PY
