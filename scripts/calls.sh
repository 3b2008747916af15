#!/usr/bin/env bash
# Which file calls which, from the objects' symbol tables (nm): for every
# folder of src/ given (default: all), the calls between its files must not
# form a loop (tsort finds one), and no layer may call a layer above it
# (util < shmem < wksp < frame < checkpt < cli; frame uses util alone).
#   [FOLDERS="src/checkpt src/frame"] scripts/calls.sh [OBJ_DIR] [-v]
# (OBJ_DIR: build/rel/obj, after make)
set -u
obj=${1:-build/rel/obj}
verbose=${2:-}
[ -d "$obj/src" ] || { echo "calls.sh: no objects in $obj (run make first)" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for o in "$obj"/src/*/*.o; do
  f=${o#$obj/}; f=${f%.o}.c
  nm --defined-only -g "$o" | awk -v f="$f" 'NF == 3 {print $3, f}' >>"$tmp/def"
  nm -u "$o" | awk -v f="$f" '{print $2, f}' >>"$tmp/use"
done
sort -u "$tmp/def" >"$tmp/def.s"; sort -u "$tmp/use" >"$tmp/use.s"
# edges "caller callee" between different files
join "$tmp/use.s" "$tmp/def.s" | awk '$2 != $3 {print $2, $3}' | sort -u >"$tmp/edges"
[ -n "$verbose" ] && cat "$tmp/edges"
rank() { case $1 in src/util/*) echo 1;; src/shmem/*) echo 2;; src/wksp/*) echo 3;;
  src/frame/*) echo 2;; src/checkpt/*) echo 4;; src/cli/*) echo 5;; *) echo 9;; esac; }
bad=0
while read -r a b; do
  ra=$(rank "$a") rb=$(rank "$b")
  if [ "$rb" -gt "$ra" ] || { [ "${a%/*}" = src/frame ] && [ "${b%/*}" != src/util ] && [ "${b%/*}" != src/frame ]; }; then
    echo "calls.sh: $a calls up into $b"; bad=1
  fi
done <"$tmp/edges"
folders=${FOLDERS:-$(cut -d' ' -f1 "$tmp/edges" | xargs -n1 dirname | sort -u)}
for d in $folders; do
  awk -v d="$d/" 'index($1, d) == 1 && index($2, d) == 1' "$tmp/edges" >"$tmp/in"
  if ! tsort "$tmp/in" >/dev/null 2>"$tmp/loop"; then
    echo "calls.sh: loop of calls in $d:"; grep -v "input contains a loop" "$tmp/loop" | sed 's/^tsort: /  /' | sort -u; bad=1
  else
    echo "calls.sh: $d: $(wc -l <"$tmp/in") calls between its files, no loop"
  fi
done
exit $bad
