# bash completion for wksp(1).  Installed as
# $(PREFIX)/share/bash-completion/completions/wksp.

_wksp_names() {
  # Named regions in the shared-memory directory (the same place `wksp list`
  # looks), without running wksp.
  local dir=${WKSP_SHMEM_DIR:-/dev/shm} f
  for f in "$dir"/*; do
    [ -f "$f" ] && printf '%s\n' "${f##*/}"
  done
}

_wksp() {
  local cur prev words cword
  if declare -F _init_completion >/dev/null; then
    _init_completion -n : || return
  else
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  fi

  local cmds="new delete list alloc free tag tag-free memset write read usage query map check
              verify rebuild reset checkpt restore info diff styles help index fold"
  if [ "$cword" -eq 1 ]; then
    COMPREPLY=($(compgen -W "$cmds --help --version" -- "$cur"))
    return
  fi

  local cmd=${words[1]} opts=""
  case $cmd in
    new) opts="--part-max --page-size --mode --seed --from" ;;
    list) opts="--unused --json --bytes" ;;
    alloc) opts="--align --tag --json" ;;
    tag|styles) opts="--json" ;;
    check|verify) opts="-q --quiet --json" ;;
    usage) opts="--tag --json --bytes" ;;
    query) opts="--json --bytes" ;;
    map) opts="--width --rows --svg --color --no-color --bytes" ;;
    rebuild) opts="--seed" ;;
    checkpt) opts="--style --threads --info --mode --force --verify --index --since -q --quiet -v --verbose --json --bytes" ;;
    restore) opts="--seed --threads --verify-first --require-seal -q --quiet -v --verbose --json --bytes" ;;
    info) opts="-v --verbose --level --json --check --threads --require-seal" ;;
    index) opts="--threads" ;;
    fold) opts="-o --output --style --threads --info --mode --force --index -q --quiet -v --verbose --bytes" ;;
    diff) opts="--threads -q --quiet -v --verbose --json --require-seal" ;;
    help) COMPREPLY=($(compgen -W "$cmds" -- "$cur")); return ;;
  esac
  opts+=" --help"

  case $prev in
    --page-size) COMPREPLY=($(compgen -W "normal huge gigantic" -- "$cur")); return ;;
    --style) COMPREPLY=($(compgen -W "v2 v3" -- "$cur")); return ;;
    --level) COMPREPLY=($(compgen -W "0 1 2 3 4 5" -- "$cur")); return ;;
    -v|--verbose) # info's level is optional: offer levels and files
      [ "$cmd" = info ] && [[ $cur != -* ]] && COMPREPLY=($(compgen -W "0 1 2 3 4 5" -- "$cur") $(compgen -f -- "$cur")) && return ;;
    --from|--svg|--since|-o|--output) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --part-max|--mode|--seed|--align|--tag|--threads|--info|--width|--rows) return ;;
  esac

  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    return
  fi

  # Position of the word among the positional arguments (1 = first).
  local i pos=0
  for ((i = 2; i < cword; i++)); do
    case ${words[i]} in
      --page-size|--style|--level|--from|--since|-o|--output|--part-max|--mode|--seed|--align|--tag|--threads|--info|--svg|--width|--rows) ((i++)) ;;
      -v|--verbose) [ "$cmd" = info ] && [[ ${words[i + 1]} =~ ^[0-9]+$ ]] && ((i++)) ;;
      -*) ;;
      *) ((pos++)) ;;
    esac
  done
  ((pos++))

  case $cmd in
    new) # NAME, then the deltas of a chain after --from
      if [ "$pos" -eq 1 ]; then COMPREPLY=($(compgen -W "$(_wksp_names)" -- "$cur"))
      else COMPREPLY=($(compgen -f -- "$cur")); fi ;;
    alloc|tag-free|usage|query|check|verify|rebuild|reset)
      [ "$pos" -eq 1 ] && COMPREPLY=($(compgen -W "$(_wksp_names)" -- "$cur")) ;;
    delete) COMPREPLY=($(compgen -W "$(_wksp_names)" -- "$cur")) ;;
    map) # a workspace, or a checkpoint file
      [ "$pos" -eq 1 ] && COMPREPLY=($(compgen -W "$(_wksp_names)" -- "$cur") $(compgen -f -- "$cur")) ;;
    free|tag|memset|write|read)
      if [ "$pos" -eq 1 ]; then
        COMPREPLY=($(compgen -S : -W "$(_wksp_names)" -- "$cur"))
        compopt -o nospace 2>/dev/null
      elif [ "$pos" -eq 2 ] && [[ $cmd == write || $cmd == read ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
      fi ;;
    checkpt|restore|diff)
      if [ "$pos" -eq 1 ]; then COMPREPLY=($(compgen -W "$(_wksp_names)" -- "$cur"))
      elif [ "$pos" -ge 2 ]; then COMPREPLY=($(compgen -f -- "$cur")); fi ;; # restore, diff: a chain
    info) # a file, or a chain BASE DELTA...
      [ "$pos" -ge 1 ] && COMPREPLY=($(compgen -f -- "$cur")) ;;
    fold) COMPREPLY=($(compgen -f -- "$cur")) ;; # BASE DELTA...
  esac
}
complete -F _wksp wksp
