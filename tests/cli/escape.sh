#!/usr/bin/env bash
# Strings from a checkpoint or the command line never reach the terminal
# raw: `info -v 1/2` listings, `info --check`, --json and error lines show
# escape sequences, CR, 0x7f, C1 controls and invalid UTF-8 escaped.
. "$(dirname "$0")/lib.bash"

# clean CASE FILE: FILE is valid UTF-8 and holds no control byte other than
# tab and newline, no 0x7f and no C1 control or bidirectional override.
clean() {
  if python3 - "$2" 2>"$T/clean_err" <<'EOF'; then pass "$1"; else fail "$1" "$(tail -n 1 "$T/clean_err")"; fi
import sys
b = open(sys.argv[1], "rb").read()
bad = [i for i, c in enumerate(b) if (c < 0x20 and c not in (9, 10)) or c == 0x7f]
assert not bad, "raw control byte 0x%02x at offset %d" % (b[bad[0]], bad[0])
s = b.decode("utf-8")  # raises on an invalid byte
hidden = [c for c in s if 0x80 <= ord(c) <= 0x9f or ord(c) in (0x61c, 0x200e, 0x200f)
          or 0x2028 <= ord(c) <= 0x202e or 0x2066 <= ord(c) <= 0x2069]
assert not hidden, "raw U+%04X" % ord(hidden[0])
EOF
}

"$W" new src 1M || { fail setup "new src"; done_tests; }
"$W" alloc src 4096 >/dev/null || fail setup "alloc"

# User info: ESC sequence, CR, DEL, valid UTF-8 (e-acute), an invalid byte,
# a C1 CSI in UTF-8, a tab, a right-to-left override, a second line.
uinfo=$(printf 'a\033[31mb\rc\177d\303\251e\377\302\233f\tg\342\200\256h\nline2')
ok checkpt_hostile_uinfo "$W" checkpt src "$T/u.ckpt" --info "$uinfo"

ok info_v2_uinfo "$W" info "$T/u.ckpt" -v 2
clean info_v2_clean "$T/out"
check info_v2_uinfo_escaped grep -qxF "$(printf '\tuinfo    a\\x1b[31mb\\rc\\x7fd\303\251e\\xff\\u009bf\\tg\\u202eh')" "$T/out"
check info_v2_uinfo_second_line grep -qxF "$(printf '\t\t line2')" "$T/out"

# --json: the same text, valid JSON, nothing raw either.
ok info_json_uinfo "$W" info "$T/u.ckpt" --json
clean info_json_clean "$T/out"
json info_json_uinfo_value "assert d['info']['uinfo'] == 'a\x1b[31mb\rc\x7fd\u00e9e\u00ff\x9bf\tg\u202eh\nline2'"

# A path with an ESC: the listing's label and path field, info --check.
p="$T/$(printf 'p\033]0;x\007q').ckpt"
ok checkpt_hostile_path "$W" checkpt src "$p" --style v2
ok info_v2_path "$W" info "$p" -v 2
clean info_v2_path_clean "$T/out"
check info_v2_path_label grep -qxF "checkpt $T/p\\x1b]0;x\\x07q.ckpt (verbose 2)" "$T/out"
check info_v2_path_field grep -qxF "$(printf '\tpath      ')$T/p\\x1b]0;x\\x07q.ckpt" "$T/out"
ok info_check_path "$W" info "$p" --check
clean info_check_path_clean "$T/out"
out_has info_check_path_escaped "^$T/p\\\\x1b\\]0;x\\\\x07q\\.ckpt: ok: "

# The writer's identity (app ... user) as a hostile writer would set it: a v2
# file (raw frames) with each of those strings overwritten in place.
python3 - "$T/u2.ckpt" "$p" <<'EOF' || fail setup "patching identity strings"
import sys
b = bytearray(open(sys.argv[2], "rb").read())
path = sys.argv[2].encode() + b"\0"
at = b.index(path)          # the path follows app, thread, host, cpu, group, user
ends = []
i = at - 1                  # the NUL that ends user
while len(ends) < 6:
    ends.append(i)
    i = b.rindex(b"\0", 0, i)
for e in ends:
    s = b.rindex(b"\0", 0, e) + 1
    n = e - s
    hostile = (b"\x1b\r\x7f\xff" + b"x" * n)[:n]
    b[s:e] = hostile
open(sys.argv[1], "wb").write(b)
EOF
ok info_v1_identity "$W" info "$T/u2.ckpt" -v 1
clean info_v1_identity_clean "$T/out"
for f in app thread host cpu group user; do
  check "info_v1_${f}_escaped" grep -qE "^	$f +[0-9]+ \(\\\\x1b(\\\\r(\\\\x7f(\\\\xff)?)?)?x*\)$" "$T/out"
done

# Error lines quote names and paths the user gave.
err error_path_escaped 1 'reading checkpoint ".*/n\\x1bo\\r": ' "$W" info "$T/$(printf 'n\033o\r')" --json
clean error_path_clean "$T/err"
err error_name_escaped 2 'bad NAME "a\\x1b\[2Jb\\xff"' "$W" new "$(printf 'a\033[2Jb\377')" 1M
clean error_name_clean "$T/err"

done_tests
