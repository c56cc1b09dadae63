#!/bin/bash
# Store writes from classify-shaped (10-minute) chunks, before and after issue 32, interleaved:
# before = a checkout of 1c3911a (a piece per chunk), after = this checkout, with each
# auroradask.store-piece-minutes value. Run from the repository root, alone on the machine:
#   git worktree add /tmp/before 1c3911a && bash benchmarks/store_pieces.sh /tmp/before
# Prints one line per write, then each configuration's median and spread, which also go to
# $WORK/store-pieces.json (the record of benchmarks/results-issue32-store-pieces.json).
set -euo pipefail
BEFORE=${1:?the path of a checkout of 1c3911a}
WORK=${WORK:-/tmp/auroradask-store-pieces}
PYTHON=${PYTHON:-$PWD/.venv/bin/python}
mkdir -p "$WORK"
rm -f "$WORK/before.txt"
for r in 1 2 3; do
  (cd "$BEFORE" && PYTHONPATH=. taskset -c 0,1 "$PYTHON" -c "
import time, auroradask
from benchmarks.store import synthetic_results
results = synthetic_results(2, 30).chunk({'site': 1, 'time': 200})
summary = auroradask.to_zarr(results, '$WORK/before-$r.zarr', progress=False)
print('round $r, before (1c3911a):', round(2 * 30 * 28800 / summary.seconds), 'slots/s')
" | tee -a "$WORK/before.txt")
  rm -rf "$WORK/before-$r.zarr" "$WORK/before-$r.zarr.staging"
  taskset -c 0,1 "$PYTHON" -m benchmarks.store --sites 2 --days 30 --chunk-minutes 10 \
    --piece-minutes 10,60,120,240,1440 --repeat 1 --workdir "$WORK" \
    --json "$WORK/after-$r.json" | grep "^round" | sed "s/^round 1/round $r/"
done
"$PYTHON" - "$WORK" <<'EOF'
import json, re, statistics, sys
from pathlib import Path

work = Path(sys.argv[1])
text = (work / "before.txt").read_text()
runs = {"before_1c3911a": [int(x) for x in re.findall(r"before \(1c3911a\): (\d+)", text)]}
rounds = [json.loads((work / f"after-{r}.json").read_text()) for r in (1, 2, 3)]
for minutes in rounds[0]["slots_per_s"]:
    runs[f"pieces_{minutes}_min"] = [r["slots_per_s"][minutes]["runs"][0] for r in rounds]
record = {
    **{k: rounds[0][k] for k in ("machine", "sites", "days", "write_chunk_slots", "scheduler")},
    "command": "bash benchmarks/store_pieces.sh /tmp/before",
    "rounds": 3,
    "slots_per_s": {
        k: {"median": round(statistics.median(v)), "min": min(v), "max": max(v), "runs": v}
        for k, v in runs.items()
    },
}
(work / "store-pieces.json").write_text(json.dumps(record, indent=2) + "\n")
for k, v in record["slots_per_s"].items():
    print(f"{k}: median {v['median']:,} slots/s ({v['min']:,}-{v['max']:,})")
EOF
