#!/usr/bin/env python3
# scripts/demo_compare.py SHM_DIR A.json B.json C.json: the demo's byte
# compare (scripts/demo.sh, section 6), also run by tests/cli/demo.sh on
# workspaces it tampered with.
#
# Each JSON file is `wksp query NAME --json`.  B and C must hold the same
# allocations (tag, address range) as A, and the same bytes in them.  The
# bytes are read from the region files under SHM_DIR (a global address is
# an offset into the region file), not through the library that restored
# them.  Prints one line and exits 0 when all three agree; otherwise exits
# 1 with "demo: FAILED: ..." on stderr, naming the first difference.
import json, mmap, os, sys

shm = sys.argv[1]
a, b, c = (json.load(open(p)) for p in sys.argv[2:5])
alloc = lambda d: [x for x in d["partitions"] if x["tag"]]
for d in (b, c):
    if alloc(d) != alloc(a):
        sys.exit(f"demo: FAILED: allocations of {d['name']} differ from {a['name']}")
def region(d):
    with open(os.path.join(shm, d["name"]), "rb") as f:
        return mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
ma, mb, mc = region(a), region(b), region(c)
for x in alloc(a):
    lo, hi = x["gaddr_lo"], x["gaddr_hi"]
    ref = ma[lo:hi]
    for d, m in ((b, mb), (c, mc)):
        if m[lo:hi] != ref:
            sys.exit(f"demo: FAILED: bytes of {d['name']}:0x{lo:x} differ from {a['name']}")
print(f"   same {len(alloc(a))} allocations (tag, address range and bytes) in all three workspaces")
