"""Run by test_store in a subprocess: classify the sample into a store, one line per chunk.

Usage: python store_writer.py STORE [SAMPLE_ROOT]
"""

import sys

import auroradask

store = sys.argv[1]
root = sys.argv[2] if len(sys.argv) > 2 else auroradask.sample_archive()
frames = auroradask.open_themis(
    root, "gill", "2014-03-10T06:00", "2014-03-10T06:06", chunk_minutes=1
)
results = auroradask.classify(frames, auroradask.demo_model())
print("start", flush=True)
# "chunk" once one has been written (to_zarr also reports once before the first is done)
auroradask.to_zarr(
    results, store, progress=lambda s: s.written and print("chunk", s.written, flush=True)
)
print("done", flush=True)
