#!/usr/bin/env bash
# The command line itself: dispatch, help, version, and usage errors (exit
# status 2, one "wksp: <command>: ..." line) for every command: missing,
# extra and malformed arguments, unknown options.
. "$(dirname "$0")/lib.bash"

# ---- top level -------------------------------------------------------------
run "$W"
check no_command_status [ "$RC" -eq 2 ]
check no_command_lists_commands grep -q 'checkpt' "$T/err"

ok version "$W" --version
out_has version_text '^wksp [0-9]+\.[0-9]+\.[0-9]+$'
ok help "$W" help
out_has help_lists_restore '^  restore '
ok help_flag "$W" --help
out_has help_flag_exit '^Exit status: 0 success, 1 failure, 2 usage error'
ok help_command "$W" help alloc
out_has help_command_usage '^usage: wksp alloc NAME SIZE'
err help_unknown 2 "^wksp: help: unknown command \"frob\"" "$W" help frob
err unknown_command 2 "^wksp: unknown command \"frob\" \\(see 'wksp help'\\)$" "$W" frob
err unknown_top_option 2 "unknown option \"--frob\"" "$W" --frob

# ---- --help on every command -------------------------------------------------
for c in new delete list alloc free tag tag-free memset write read usage query check verify \
         rebuild reset checkpt restore info styles fold; do
  ok "help_$c" "$W" "$c" --help
  out_has "help_${c}_usage" "^usage: wksp $c"
done
ok help_short "$W" alloc -h

# ---- missing and extra arguments ---------------------------------------------
err new_missing_name 2 '^wksp: new: missing argument NAME' "$W" new
err new_missing_size 2 '^wksp: new: missing argument SIZE' "$W" new w1
err new_extra 2 '^wksp: new: unexpected argument "x"' "$W" new w1 1M x
err delete_missing 2 '^wksp: delete: missing argument NAME' "$W" delete
err list_extra 2 '^wksp: list: unexpected argument "x"' "$W" list x
err alloc_missing_size 2 '^wksp: alloc: missing argument SIZE' "$W" alloc w1
err free_missing 2 '^wksp: free: missing argument NAME:GADDR' "$W" free
err tag_free_missing_tag 2 '^wksp: tag-free: missing argument TAG' "$W" tag-free w1
err memset_missing_byte 2 '^wksp: memset: missing argument BYTE' "$W" memset w1:4096
err write_extra 2 '^wksp: write: unexpected argument' "$W" write w1:4096 a b
err read_missing 2 '^wksp: read: missing argument' "$W" read
err usage_missing 2 '^wksp: usage: missing argument NAME' "$W" usage
err query_extra 2 '^wksp: query: unexpected argument' "$W" query a b
err check_missing 2 '^wksp: check: missing argument NAME' "$W" check
err verify_missing 2 '^wksp: verify: missing argument NAME' "$W" verify
err rebuild_missing 2 '^wksp: rebuild: missing argument NAME' "$W" rebuild
err reset_missing 2 '^wksp: reset: missing argument NAME' "$W" reset
err checkpt_missing_path 2 '^wksp: checkpt: missing argument PATH' "$W" checkpt w1
err restore_missing_path 2 '^wksp: restore: missing argument PATH' "$W" restore w1
err info_missing 2 '^wksp: info: missing argument PATH' "$W" info
err styles_extra 2 '^wksp: styles: unexpected argument' "$W" styles v2

# ---- options -------------------------------------------------------------------
err unknown_option 2 '^wksp: new: unknown option "--frob"' "$W" new w1 1M --frob
err unknown_short 2 '^wksp: alloc: unknown option "-z"' "$W" alloc w1 1M -z
err option_needs_value 2 '^wksp: new: option --seed needs a value' "$W" new w1 1M --seed
err flag_takes_no_value 2 '^wksp: list: option --json takes no value' "$W" list --json=1
err new_bad_page 2 '^wksp: new: bad --page-size "tiny": want normal, huge or gigantic' "$W" new w1 1M --page-size tiny
err new_bad_mode 2 '^wksp: new: bad --mode "0800": not an octal number' "$W" new w1 1M --mode 0800
err new_big_mode 2 '^wksp: new: bad --mode "17777": larger than 07777' "$W" new w1 1M --mode 17777
err new_from_and_size 2 '^wksp: new: SIZE "1M" and --from exclude each other' "$W" new w1 1M --from x.ckpt
err new_from_part_max 2 '^wksp: new: --part-max comes from the checkpoint' "$W" new w1 --from x.ckpt --part-max 4
err new_from_stdin 2 '^wksp: new: bad --from "-"' "$W" new w1 --from -
err checkpt_bad_style 2 '^wksp: checkpt: bad --style "v4": want v2 or v3' "$W" checkpt w1 f --style v4
err checkpt_v1 2 '^wksp: checkpt: bad --style "v1": v1 checkpoints can be read, not written' "$W" checkpt w1 f --style=v1
err checkpt_zero_threads 2 '^wksp: checkpt: bad --threads "0": must be at least 1' "$W" checkpt w1 f --threads 0
err restore_bad_seed 2 '^wksp: restore: bad --seed "4294967296": out of range' "$W" restore w1 f --seed 4294967296
err info_bad_level 2 '^wksp: info: bad -v "9": LEVEL is 0..5' "$W" info f -v 9
err info_bad_level_attached 2 '^wksp: info: bad -v "x"' "$W" info f -vx

# ---- sizes, numbers, tags, names, addresses ------------------------------------------
err size_suffix 2 '^wksp: new: bad SIZE "12X": unknown suffix "X" \(use K, M, G' "$W" new w1 12X
err size_lower_k 2 'unknown suffix "k"' "$W" new w1 12k
err size_empty 2 '^wksp: new: bad SIZE "": empty' "$W" new w1 ""
err size_negative 2 '^wksp: new: bad SIZE "-1"' "$W" new w1 -- -1
err size_space 2 'unknown suffix " "' "$W" new w1 "1 "
err size_overflow 2 'out of range' "$W" new w1 18446744073709551616
err size_suffix_overflow 2 'too large' "$W" new w1 17179869184G
err size_sign 2 'not a number' "$W" new w1 +5
err alloc_zero 2 '^wksp: alloc: bad SIZE "0": must be at least 1 byte' "$W" alloc w1 0
err tag_zero 2 '^wksp: alloc: bad --tag "0": tags start at 1' "$W" alloc w1 1K --tag 0
err tag_hex_bad 2 '^wksp: alloc: bad --tag "0xg"' "$W" alloc w1 1K --tag 0xg
err tag_free_zero 2 '^wksp: tag-free: bad TAG "0"' "$W" tag-free w1 1 0
err seed_range 2 '^wksp: new: bad --seed "4294967296": out of range' "$W" new w1 1M --seed 4294967296
err memset_byte_range 2 '^wksp: memset: bad BYTE "256": must be 0..255' "$W" memset w1:4096 256
err name_bad_char 2 '^wksp: new: bad NAME "a/b"' "$W" new a/b 1M
err name_too_long 2 '^wksp: new: bad NAME' "$W" new "$(printf 'a%.0s' {1..40})" 1M
err name_leading_dot 2 '^wksp: delete: bad NAME ".x"' "$W" delete .x
err addr_no_colon 2 '^wksp: free: bad address "w1"' "$W" free w1
err addr_bad_gaddr 2 '^wksp: tag: bad address "w1:zz"' "$W" tag w1:zz
err addr_bad_name 2 '^wksp: read: bad address "a b:4096"' "$W" read "a b:4096"

# ---- documentation and completion cover every command --------------------------------
"$W" help | sed -n 's/^  \([a-z-]*\) .*/\1/p' >"$T/cmds"
check help_lists_all [ "$(wc -l <"$T/cmds")" -eq 24 ]
while read -r c; do
  check "man_has_$c" grep -qF -- "\\fB${c//-/\\-}\\fR" "$ROOT/docs/wksp.1"
  check "completion_has_$c" grep -Eq "(^|[ \"])$c([ \"]|\$)" <(sed -n '/local cmds=/,/"$/p' "$ROOT/completion/wksp.bash")
done <"$T/cmds"

complete_words() { # WORDS...: completions for the last word
  bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _wksp; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$ROOT/completion/wksp.bash" "$@" 2>&1 | sort | tr '\n' ' '
}

# ---- every command's options: accepted = --help = synopsis = man page = completion ----
# A command's --help lists its option table, which is what it accepts; each
# option there must be accepted (never "unknown option"), appear in the
# command's usage lines, in its SYNOPSIS line of the man page and among the
# completions, and those must list no other option.
# opts_check CASE HELP OTHER: the option words (-x, --xyz) in file OTHER,
# short ones read as their long names, are exactly the long names of the
# option lines ("  -x, --xyz ..." or "  --xyz ...") of file HELP.
opts_check() {
  if python3 - "$2" "$3" >"$T/opts_diff" <<'EOF'; then pass "$1"; else fail "$1" "$(cat "$T/opts_diff")"; fi
import re, sys
table, short = set(), {}
for line in open(sys.argv[1]):
    m = re.match(r"  (?:-([a-z]), )?--([a-z][a-z-]*)", line)
    if m:
        table.add(m.group(2))
        if m.group(1): short[m.group(1)] = m.group(2)
words = re.findall(r"(?:^|[\][ |])(--?)([a-z][a-z-]*)", open(sys.argv[2]).read())
other = {w if d == "--" else short.get(w, "-" + w) for d, w in words} - {"help"}
if other != table:
    print("missing %s, extra %s" % (sorted(table - other), sorted(other - table)))
    sys.exit(1)
EOF
}
while read -r c; do
  "$W" "$c" --help >"$T/help" 2>&1
  sed -n '/^usage:/,/^$/p' "$T/help" >"$T/usage_lines"
  opts_check "synopsis_lists_options_$c" "$T/help" "$T/usage_lines"
  sed -n '/^\.SH SYNOPSIS/,/^\.SH /p' "$ROOT/docs/wksp.1" | grep -F -- "\\fBwksp ${c//-/\\-}\\fR" | sed -E 's/\\f[BIR]//g; s/\\-/-/g' >"$T/man_line"
  check "man_synopsis_has_$c" [ -s "$T/man_line" ]
  opts_check "man_synopsis_lists_options_$c" "$T/help" "$T/man_line"
  complete_words wksp "$c" x -- >"$T/completion"
  opts_check "completion_lists_options_$c" "$T/help" "$T/completion"
  bad=""
  for o in $(sed -nE 's/^  (-[a-z], )?(--[a-z][a-z-]*).*/\2/p' "$T/help"); do
    "$W" "$c" "$o" >/dev/null 2>"$T/e" </dev/null
    grep -q 'unknown option' "$T/e" && bad+=" $o"
  done
  check "options_accepted_$c" [ -z "$bad" ]
done <"$T/cmds"

# ---- bash completion ---------------------------------------------------------------
touch "$WKSP_SHMEM_DIR/alpha" "$WKSP_SHMEM_DIR/beta"
check completion_commands [ "$(complete_words wksp che)" = "check checkpt " ]
check completion_options [ "$(complete_words wksp checkpt alpha f --st)" = "--style " ]
check completion_style [ "$(complete_words wksp checkpt alpha f --style "")" = "v2 v3 " ]
check completion_names [ "$(complete_words wksp query "")" = "alpha beta " ]
check completion_addr [ "$(complete_words wksp read al)" = "alpha: " ]
# --since takes a file: the word after it is not the NAME
touch "$T/al.ckpt"
check completion_since_value [ "$(cd "$T" && complete_words wksp checkpt --since al)" = "al.ckpt " ]
check completion_after_since [ "$(cd / && complete_words wksp checkpt --since base al)" = "alpha " ]

done_tests
