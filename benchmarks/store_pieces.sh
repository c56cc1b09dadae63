#!/bin/bash
# Store writes from classify-shaped (10-minute) chunks, before and after issue 32, interleaved:
# before = a checkout of 1c3911a (a piece per chunk), after = this checkout, with each
# auroradask.store-piece-minutes value. Run from the repository root, alone on the machine:
#   git worktree add /tmp/before 1c3911a && bash benchmarks/store_pieces.sh /tmp/before
# Prints one line per write; each round's "after" record goes to $WORK/after-ROUND.json.
set -euo pipefail
BEFORE=${1:?the path of a checkout of 1c3911a}
WORK=${WORK:-/tmp/auroradask-store-pieces}
PYTHON=${PYTHON:-$PWD/.venv/bin/python}
mkdir -p "$WORK"
for r in 1 2 3; do
  (cd "$BEFORE" && PYTHONPATH=. taskset -c 0,1 "$PYTHON" -c "
import time, auroradask
from benchmarks.store import synthetic_results
results = synthetic_results(2, 30).chunk({'site': 1, 'time': 200})
summary = auroradask.to_zarr(results, '$WORK/before-$r.zarr', progress=False)
print('round $r, before (1c3911a):', round(2 * 30 * 28800 / summary.seconds), 'slots/s')
")
  rm -rf "$WORK/before-$r.zarr" "$WORK/before-$r.zarr.staging"
  taskset -c 0,1 "$PYTHON" -m benchmarks.store --sites 2 --days 30 --chunk-minutes 10 \
    --piece-minutes 10,60,120,240,1440 --repeat 1 --workdir "$WORK" \
    --json "$WORK/after-$r.json" | grep "^round" | sed "s/^round 1/round $r/"
done
