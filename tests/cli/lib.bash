# tests/cli/lib.bash: sourced by the CLI shell tests (tests/cli/*.sh).
#
# Each test prints one line per case, "PASS cli_<file>/<case>" or
# "FAIL cli_<file>/<case>: <why>", which tests/run.sh counts.  Every test
# file gets a private shared-memory directory (WKSP_SHMEM_DIR, on tmpfs when
# there is one) and a scratch directory ($T), both removed at exit.
#   WKSP_BIN   absolute path of the wksp binary (set by tests/run.sh)
set -u
: "${WKSP_BIN:?WKSP_BIN must name the wksp binary}"
W=$WKSP_BIN
# The name the kernel gives a running wksp (/proc/PID/comm), as the lock
# notices print it: the emulator's under qemu-user (scripts/cross.sh).
COMM=${WKSP_TEST_COMM:-wksp}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TESTNAME=$(basename "$0" .sh)
shm_parent=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && shm_parent=/dev/shm
WKSP_SHMEM_DIR=$(mktemp -d "$shm_parent/wksp-cli-test.XXXXXX")
export WKSP_SHMEM_DIR
T=$(mktemp -d "${TMPDIR:-/tmp}/wksp-cli-test.XXXXXX")
trap 'rm -rf "$WKSP_SHMEM_DIR" "$T"' EXIT
NFAIL=0

pass() { echo "PASS cli_$TESTNAME/$1"; }
# skipping SECTION: true (with a SKIP line) when WKSP_TEST_SKIP names
# cli_<file>/SECTION: a section this platform cannot hold (scripts/cross.sh).
skipping() {
  case ",${WKSP_TEST_SKIP:-}," in
  *",cli_$TESTNAME/$1,"*) echo "SKIP cli_$TESTNAME/$1"; return 0 ;;
  esac
  return 1
}
fail() {
  echo "FAIL cli_$TESTNAME/$1: $2"
  NFAIL=$((NFAIL + 1))
  # Show what the failing command said (stderr of run.sh's capture).
  { [ -f "$T/out" ] && sed 's/^/    out: /' "$T/out" | head -n 20
    [ -f "$T/err" ] && sed 's/^/    err: /' "$T/err" | head -n 20; } >&2
}

# run CMD...: runs it with stdin from /dev/null, output in $T/out and $T/err,
# status in $RC.
run() {
  "$@" <"${RUN_STDIN:-/dev/null}" >"$T/out" 2>"$T/err"
  RC=$?
}

# ok CASE CMD...: CMD exits 0 and prints nothing on stderr.
ok() {
  local name=$1; shift
  run "$@"
  if [ "$RC" -ne 0 ]; then fail "$name" "exit status $RC, want 0 ($*)"
  elif [ -s "$T/err" ]; then fail "$name" "unexpected stderr ($*)"
  else pass "$name"; fi
}

# err CASE STATUS REGEX CMD...: CMD exits STATUS, prints nothing on stdout,
# and exactly one line on stderr that starts "wksp: " and matches REGEX
# (extended regular expression).
err() {
  local name=$1 want=$2 re=$3; shift 3
  run "$@"
  local lines
  lines=$(wc -l <"$T/err")
  if [ "$RC" -ne "$want" ]; then fail "$name" "exit status $RC, want $want ($*)"
  elif [ "$lines" -ne 1 ]; then fail "$name" "$lines lines on stderr, want 1 ($*)"
  elif ! grep -q '^wksp: ' "$T/err"; then fail "$name" "stderr does not start with 'wksp: ' ($*)"
  elif ! grep -Eq -- "$re" "$T/err"; then fail "$name" "stderr does not match /$re/ ($*)"
  elif [ -s "$T/out" ]; then fail "$name" "unexpected stdout ($*)"
  else pass "$name"; fi
}

# out_is CASE EXPECTED: the last command's stdout is exactly EXPECTED (plus
# a newline).
out_is() {
  local got
  got=$(cat "$T/out")
  if [ "$got" == "$2" ]; then pass "$1"; else fail "$1" "stdout '$got', want '$2'"; fi
}

# out_has CASE REGEX: the last command's stdout matches REGEX.
out_has() {
  if grep -Eq -- "$2" "$T/out"; then pass "$1"; else fail "$1" "stdout does not match /$2/"; fi
}

# check CASE CMD...: passes if CMD (a test, not a wksp call) succeeds.
check() {
  local name=$1; shift
  if "$@"; then pass "$name"; else fail "$name" "check failed: $*"; fi
}

# json CASE PYTHON: validates the last stdout with python3 -m json.tool, then
# runs PYTHON with `d` bound to the parsed object (integers exact); the case
# passes if PYTHON raises nothing.
json() {
  local name=$1 code=$2
  if ! python3 -m json.tool "$T/out" >/dev/null 2>"$T/json_err"; then
    fail "$name" "not valid JSON: $(head -n 1 "$T/json_err")"
    return
  fi
  if python3 - "$T/out" "$code" 2>"$T/json_err" <<'EOF'; then pass "$name"; else fail "$name" "JSON check failed: $(tail -n 1 "$T/json_err")"; fi
import json, sys
d = json.load(open(sys.argv[1]))
exec(sys.argv[2])
EOF
}

# same_frames A B: the header, every cgroup frame and the footer's fields
# other than offsets (the info frames differ: time, host, user) are
# byte-identical.
same_frames() {
  "$W" info "$1" --json -v 4 >"$T/ia" && "$W" info "$2" --json -v 4 >"$T/ib" || return 1
  python3 - "$1" "$2" "$T/ia" "$T/ib" <<'EOF'
import json, sys
fa, fb = (open(p, 'rb').read() for p in sys.argv[1:3])
ia, ib = (json.load(open(p)) for p in sys.argv[3:5])
def frames(f, i):
    return [f[:80], f[-120:-96], f[-80:]] + [f[c['off']:c['end']] for c in i['cgroups']]
sys.exit(0 if frames(fa, ia) == frames(fb, ib) else 1)
EOF
}

done_tests() { exit $((NFAIL > 0)); }
