# bash completion for tiny                                  -*- shell-script -*-
# Generated from tiny's command-line model; do not edit.

# _tiny_cmd PATH: the subcommands and flags of a command, the flags that take a value, the
# argument that takes every remaining word (-1: none) and the one that is a command line (-1).
_tiny_cmd() {
    case $1 in
    '') subs='up down run unit' flags='-h --help -v --verbose' vflags='' rest=-1 cmdarg=-1 ;;
    'up') subs='' flags='-h --help -v --verbose --dry-run --log' vflags='--log' rest=-1 cmdarg=-1 ;;
    'down') subs='' flags='-h --help -v --verbose --grace --color --no-color' vflags='--grace' rest=-1 cmdarg=-1 ;;
    'run') subs='' flags='-h --help -v --verbose -u --user' vflags='--user -u' rest=1 cmdarg=1 ;;
    'unit') subs='install show' flags='-h --help -v --verbose' vflags='' rest=-1 cmdarg=-1 ;;
    'unit install') subs='' flags='-h --help -v --verbose --style --dir' vflags='--style --dir' rest=-1 cmdarg=-1 ;;
    'unit show') subs='' flags='-h --help -v --verbose' vflags='' rest=-1 cmdarg=-1 ;;
    *) subs= flags= vflags= rest=-1 cmdarg=-1 ;;
    esac
}

# _tiny_value PATH FLAG: complete the value of a flag.
_tiny_value() {
    case "$1 $2" in
    'up --log') _tiny_files '*' ;;
    'run --user'|'run -u') _tiny_users ;;
    'unit install --style') _tiny_words 'path joins' ;;
    'unit install --dir') _tiny_dirs ;;
    esac
}

# _tiny_arg PATH N: complete positional argument N (from 0).
_tiny_arg() {
    case "$1 $2" in
    'up 0') _tiny_dynamic 'configs'; _tiny_files '*.conf' ;;
    'down 0') _tiny_dynamic 'tunnels' ;;
    'run 0') _tiny_dynamic 'tunnels' ;;
    'unit install 0') _tiny_dynamic 'tunnels' ;;
    'unit show 0') _tiny_dynamic 'tunnels' ;;
    esac
}

# The helpers add to COMPREPLY what matches $cur.
_tiny_words() {
    local w ws
    read -ra ws <<<"$1"
    for w in "${ws[@]}"; do [[ $w == "$cur"* ]] && COMPREPLY+=("$w"); done
}

# _tiny_dynamic KIND: names the program lists itself (tiny __complete KIND), taken as they are
# (no expansion of what the program prints).
_tiny_dynamic() {
    local n
    while IFS= read -r n; do
        [[ -n $n && $n == "$cur"* ]] && COMPREPLY+=("$n")
    done < <("$prog" __complete "$1" 2>/dev/null)
}

_tiny_files() {
    local IFS=$'\n'
    compopt -o filenames 2>/dev/null
    if [[ $1 == '*' ]]; then
        COMPREPLY+=($(compgen -f -- "$cur"))
    else
        COMPREPLY+=($(compgen -f -X "!$1" -- "$cur") $(compgen -d -- "$cur"))
    fi
}

_tiny_dirs() {
    local IFS=$'\n'
    compopt -o filenames 2>/dev/null
    COMPREPLY+=($(compgen -d -- "$cur"))
}

_tiny_users() {
    local IFS=$'\n'
    COMPREPLY+=($(compgen -u -- "$cur"))
}

# _tiny_command I: the words from I on are a command line of their own.
_tiny_command() {
    if declare -F _command_offset >/dev/null; then
        _command_offset "$1"
    elif (($1 == COMP_CWORD)); then
        local IFS=$'\n'
        COMPREPLY=($(compgen -c -- "$cur"))
    else
        _tiny_files '*'
    fi
}

_tiny() {
    local cur=${COMP_WORDS[COMP_CWORD]} prog=${COMP_WORDS[0]}
    local path= npos=0 i=1 w dashdash= valueof= prefix=
    local subs flags vflags rest cmdarg
    COMPREPLY=()
    [[ $prog == '~/'* ]] && prog=$HOME/${prog#'~/'}
    _tiny_cmd ''
    # Walk the words before the cursor: subcommands, flags and their values, positionals.
    while ((i < COMP_CWORD)); do
        w=${COMP_WORDS[i]}
        if [[ -z $dashdash && $w == -- ]]; then
            dashdash=1
        elif [[ -z $dashdash && $w == -?* ]]; then
            if [[ $w != *=* && " $vflags " == *" $w "* ]]; then
                # The value is the next word, or the one after a lone "=" (a COMP_WORDBREAKS).
                ((i++))
                if [[ ${COMP_WORDS[i]} == = ]]; then ((i++)); fi
                if ((i >= COMP_CWORD)); then valueof=$w; break; fi
            fi
        elif ((npos == 0)) && [[ -z $dashdash && " $subs " == *" $w "* ]]; then
            path=${path:+$path }$w
            _tiny_cmd "$path"
        elif ((npos == cmdarg)); then
            _tiny_command "$i"
            return
        else
            ((npos++))
        fi
        ((i++))
    done
    if [[ -n $valueof ]]; then
        [[ $cur == = ]] && cur=
        _tiny_value "$path" "$valueof"
        return
    fi
    if [[ -z $dashdash && $cur == --*=* ]]; then
        # --flag=value in one word (when "=" is not a word break): complete the value.
        prefix=${cur%%=*}= valueof=${cur%%=*} cur=${cur#*=}
        _tiny_value "$path" "$valueof"
        COMPREPLY=("${COMPREPLY[@]/#/$prefix}")
        return
    fi
    if [[ -z $dashdash && $cur == -* ]]; then
        _tiny_words "$flags"
        return
    fi
    if ((npos == 0)) && [[ -n $subs ]]; then
        _tiny_words "$subs"
        return
    fi
    if ((npos == cmdarg)); then
        _tiny_command "$COMP_CWORD"
        return
    fi
    ((rest >= 0 && npos > rest)) && npos=$rest
    _tiny_arg "$path" "$npos"
}

complete -F _tiny tiny
