#!/usr/bin/env bash
# scripts/demo.sh WKSP_BIN: the wksp demo (`make demo`).
#
# Creates a workspace (1 GiB; WKSP_DEMO_SIZE overrides, e.g. 32M), fills it
# through the CLI with a realistic mix of allocations (log-like text, binary
# numeric tables, zeros, random bytes; some freed again to leave holes),
# checkpoints it (v3, LZ4, verified and sealed), restores the checkpoint into a second workspace
# from the file and into a third through a pipe (checkpt - | restore -),
# verifies every allocation byte for byte, prints sizes, compression ratio
# and throughputs, shows `wksp map` and `wksp list`, and removes everything
# it made, also when interrupted.
#
# Environment: WKSP_DEMO_SIZE (workspace size, default 1G), WKSP_DEMO_SEED
# (content seed, default 1), WKSP_SHMEM_DIR (where workspaces live), TMPDIR
# (where the checkpoint file goes).
set -euo pipefail

wksp=${1:?usage: scripts/demo.sh WKSP_BIN}
size=${WKSP_DEMO_SIZE:-1G}
seed=${WKSP_DEMO_SEED:-1}
command -v python3 >/dev/null || { echo "demo: python3 is needed to generate the data" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wksp-demo.XXXXXX")
A=demo-$$-a B=demo-$$-b C=demo-$$-c
cleanup() {
  local n
  trap '' INT TERM HUP # a second ^C (or a supervisor's TERM to the whole group) must not cut the clean-up short
  for n in "$A" "$B" "$C"; do "$wksp" delete "$n" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "demo: interrupted; cleaning up" >&2; exit 130' INT TERM HUP

# ---- helpers -------------------------------------------------------------------
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$t"; }
secs() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1e6 }'; }
human() { awk -v b="$1" 'BEGIN { split("B KiB MiB GiB TiB", u); i = 1;
  while (b >= 1024 && i < 5) { b /= 1024; i++ }
  printf(i == 1 ? "%d %s" : "%.1f %s", b, u[i]) }'; }
rate() { awk -v b="$1" -v us="$2" 'BEGIN { r = us > 0 ? b / (us / 1e6) / 1048576 : 0; printf "%.0f MiB/s", r }'; }
json_get() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

say() { printf '%s\n' "$*"; }

# ---- 1. the workspace ----------------------------------------------------------------
"$wksp" new "$A" "$size"
data_max=$("$wksp" query "$A" --json | json_get 'd["data_max"]')
say "== workspace \"$A\": $(human "$data_max") of data space, in ${WKSP_SHMEM_DIR:-/dev/shm}"
# Three workspaces of this size must fit in the shared-memory filesystem
# (tmpfs allocates pages as they are touched: about 3/4 of each).
avail=$(( $(df -Pk "${WKSP_SHMEM_DIR:-/dev/shm}" | awk 'NR == 2 { print $4 }') * 1024 ))
if [ "$avail" -lt $((data_max * 9 / 4)) ]; then
  echo "demo: ${WKSP_SHMEM_DIR:-/dev/shm} has $(human "$avail") free; three workspaces need about $(human $((data_max * 9 / 4)));" \
       "set WKSP_DEMO_SIZE lower (e.g. WKSP_DEMO_SIZE=256M)" >&2
  exit 1
fi

# ---- 2. the data ----------------------------------------------------------------------
# A plan (kind, size, offset into the kind's source file) and the source files
# of the text and table kinds; each allocation gets a different slice.
python3 - "$tmp" "$data_max" "$seed" <<'EOF'
import random, struct, sys
tmp, data_max, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
max_sz = max(4096, min(16 << 20, data_max // 8))
src_sz = max_sz + max_sz // 2

# Log-like text: timestamps, levels, key=value pairs, identifiers, numbers.
words = ("slot leader transaction block vote account signature hash epoch stake validator fee "
         "program instruction lamports shred repair gossip turbine bank replay commit status "
         "confirmed finalized processed rooted duplicate retransmit").split()
ids = ["".join(rng.choice("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
               for _ in range(rng.randint(32, 44))) for _ in range(500)]
levels = ["INFO"] * 12 + ["DEBUG"] * 6 + ["WARN"] * 2 + ["ERR"]
out, n, t = [], 0, 1764172800.0
while n < src_sz:
    t += rng.expovariate(2000.0)
    kv = " ".join(f"{rng.choice(words)}={rng.choice((rng.randrange(1 << 20), rng.choice(ids), rng.choice(words)))}"
                  for _ in range(rng.randint(2, 6)))
    line = f"{t:.6f} {rng.choice(levels)} {rng.choice(words)}: {kv}\n"
    out.append(line)
    n += len(line)
open(f"{tmp}/text.src", "w").write("".join(out)[:src_sz])

# Numeric table: 32-byte rows (id, time, quantity, price walk, category).
rows = src_sz // 32 + 1
buf = bytearray()
price, ts = 100.0, 1764172800000
for i in range(rows):
    price = max(0.01, price + rng.gauss(0, 0.05))
    ts += rng.randrange(0, 50)
    buf += struct.pack("<QQiId", i, ts, rng.randrange(-1000, 1000), rng.randrange(16), round(price, 2))
open(f"{tmp}/table.src", "wb").write(bytes(buf[:src_sz]))

# The plan: sizes log-uniform from 64 B to max_sz until ~75% of the space is
# planned; kinds text 35%, tables 25%, zeros 20%, random 20%; every tenth
# allocation is freed after the fill, leaving holes.
kinds = ["text"] * 35 + ["table"] * 25 + ["zeros"] * 20 + ["random"] * 20
planned = 0
with open(f"{tmp}/plan", "w") as plan:
    while planned < data_max * 3 // 4:
        sz = int(2 ** rng.uniform(6, max_sz.bit_length() - 1))
        kind = rng.choice(kinds)
        off = rng.randrange(0, src_sz - sz + 1)
        plan.write(f"{kind} {sz} {off}\n")
        planned += sz
EOF

declare -A tag_of=([text]=1 [table]=2 [zeros]=3 [random]=4)
t0=$(now_us)
n=0 nfreed=0
while read -r kind sz off; do
  g=$("$wksp" alloc "$A" "$sz" --tag "${tag_of[$kind]}") || break
  # Through a file, not a pipeline: a SIGINT that lands between bash's two
  # forks of `producer | wksp write` leaves bash waiting for ever for a
  # producer whose reader was never started (seen once in CI).
  case $kind in
    text|table)
      dd if="$tmp/$kind.src" of="$tmp/chunk" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$sz" status=none
      "$wksp" write "$g" "$tmp/chunk" ;;
    zeros) "$wksp" memset "$g" 0 ;;
    random)
      head -c "$sz" /dev/urandom >"$tmp/chunk"
      "$wksp" write "$g" "$tmp/chunk" ;;
  esac
  n=$((n + 1))
  if [ $((n % 10)) -eq 0 ]; then "$wksp" free "$g"; nfreed=$((nfreed + 1)); fi
done <"$tmp/plan"
t1=$(now_us)
"$wksp" usage "$A" --json >"$tmp/usage.json"
used=$(json_get 'd["used_sz"]' <"$tmp/usage.json")
nalloc=$(json_get 'd["used_cnt"]' <"$tmp/usage.json")
per_kind=""
for k in text table zeros random; do
  b=$("$wksp" usage "$A" --tag "${tag_of[$k]}" --json | json_get 'd["used_sz"]')
  per_kind+="${per_kind:+, }$k $(human "$b")"
done
say "   filled $(human "$used") in $nalloc allocations ($per_kind; $nfreed freed again) in $(secs $((t1 - t0))) s"
say "== wksp map \"$A\"   (each cell: the tag with the most bytes in it; tags 1 text, 2 table, 3 zeros, 4 random)"
map_opts=(--rows 8)
[ -t 1 ] && [ -z "${NO_COLOR:-}" ] && map_opts+=(--color) # indented through sed, still for a terminal
"$wksp" map "$A" "${map_opts[@]}" | sed 's/^/   /'

# ---- 3. checkpoint -----------------------------------------------------------------------
ckpt=$tmp/demo.ckpt
threads=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
say "== checkpt \"$A\" -> $ckpt (v3: LZ4 frames, $threads threads; --verify: read back and sealed)"
t0=$(now_us)
"$wksp" checkpt "$A" "$ckpt" --style v3 --info "wksp demo" --verify
t1=$(now_us)
fsz=$(stat -c %s "$ckpt")
ratio=$(awk -v a="$used" -v b="$fsz" 'BEGIN { printf "%.2f", a / b }')
t_ckpt=$((t1 - t0))
say "   $(human "$used") of allocations -> $(human "$fsz") file (compression ratio ${ratio}:1) in $(secs $t_ckpt) s: $(rate "$used" $t_ckpt)"
"$wksp" info "$ckpt" --json -v 3 >"$tmp/info.json"
python3 - "$tmp/info.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
i = d["info"]
frames = "LZ4" if d["frame_style"] == 2 else "raw"
print(f"   wksp info: style {d['style']} with {frames} frames, {d['alloc_cnt']} allocations in "
      f"{d['cgroup_cnt']} cgroup frames, written by {i['user']}@{i['host']}, info \"{i['uinfo']}\"")
EOF

"$wksp" info "$ckpt" --check | sed 's/^/   wksp info --check: /'

# ---- 4. restore from the file ------------------------------------------------------------------
"$wksp" new "$B" --from "$ckpt"
say "== restore \"$B\" <- $ckpt"
t0=$(now_us)
"$wksp" restore "$B" "$ckpt"
t1=$(now_us)
t_rest=$((t1 - t0))
say "   $(human "$used") in $(secs $t_rest) s: $(rate "$used" $t_rest)"

# ---- 5. restore through a pipe -----------------------------------------------------------------------
"$wksp" new "$C" --from "$ckpt"
say "== wksp checkpt \"$A\" - | wksp restore \"$C\" -"
t0=$(now_us)
"$wksp" checkpt "$A" - --quiet | "$wksp" restore "$C" -
t1=$(now_us)
t_pipe=$((t1 - t0))
say "   $(human "$used") through the pipe in $(secs $t_pipe) s: $(rate "$used" $t_pipe)"

# ---- 6. verify ---------------------------------------------------------------------------------------
say "== verify"
# The bytes are compared in the regions themselves, not through the library
# that restored them (scripts/demo_compare.py).
for n in "$A" "$B" "$C"; do "$wksp" query "$n" --json >"$tmp/$n.json"; done
t0=$(now_us)
python3 "$(dirname "$0")/demo_compare.py" "${WKSP_SHMEM_DIR:-/dev/shm}" "$tmp/$A.json" "$tmp/$B.json" "$tmp/$C.json"
t1=$(now_us)
"$wksp" verify "$B" >/dev/null && "$wksp" verify "$C" >/dev/null
say "   every allocation of \"$B\" and \"$C\" equals \"$A\" byte for byte ($(human $((used * 2))) compared in $(secs $((t1 - t0))) s); metadata verified"
say "== wksp list   (the demo's workspaces)"
"$wksp" list | sed -n "1p; /^demo-$$-/p" | sed 's/^/   /'
say "== wksp diff \"$B\" $ckpt   (the library's own comparison: ranges, tags, bytes)"
"$wksp" diff "$B" "$ckpt" | sed 's/^/   /'
say "== summary"
say "   workspaces     3 x $(human "$data_max") of data space; $(human "$used") in $nalloc allocations each"
say "   checkpoint     $(human "$fsz") (v3), compression ratio ${ratio}:1"
say "   throughput     checkpt $(rate "$used" $t_ckpt), restore from file $(rate "$used" $t_rest), checkpt | restore $(rate "$used" $t_pipe)"
say "== demo ok; cleaning up"
