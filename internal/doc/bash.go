package doc

import (
	"fmt"
	"io"
	"strings"

	"github.com/wgns/wgns/internal/shellquote"
)

// Bash writes a bash completion script for s.Prog. It needs nothing but bash; when
// bash-completion is loaded, the command after a command-line argument (exec's) is completed
// by that command's own completion (_command_offset).
//
// The script is a fixed walker over the words before the cursor plus three generated tables:
// each command's subcommands and flags, how each flag's value completes, and how each
// positional argument completes.
func Bash(w io.Writer, s Spec) error {
	root := buildModel(s)
	fn := "_" + ident(s.Prog)
	var b strings.Builder
	fmt.Fprintf(&b, `# bash completion for %[1]s                                  -*- shell-script -*-
# Generated from %[1]s's command-line model; do not edit.

# %[2]s_cmd PATH: the subcommands and flags of a command, the flags that take a value, the
# argument that takes every remaining word (-1: none) and the one that is a command line (-1).
%[2]s_cmd() {
    case $1 in
`, s.Prog, fn)
	for _, c := range root.all() {
		fmt.Fprintf(&b, "    %s) subs=%s flags=%s vflags=%s rest=%d cmdarg=%d ;;\n",
			shellquote.Always(c.pathString()), shellquote.Always(strings.Join(c.subNames(), " ")),
			shellquote.Always(strings.Join(c.flagWords(), " ")), shellquote.Always(strings.Join(c.valueFlags(), " ")),
			c.restArg(), c.cmdArg())
	}
	fmt.Fprintf(&b, "    *) subs= flags= vflags= rest=-1 cmdarg=-1 ;;\n    esac\n}\n\n")

	fmt.Fprintf(&b, "# %s_value PATH FLAG: complete the value of a flag.\n%[1]s_value() {\n    case \"$1 $2\" in\n", fn)
	for _, c := range root.all() {
		for _, f := range c.flags {
			if !f.value {
				continue
			}
			act := bashAction(fn, f.comp)
			if act == "" {
				continue
			}
			pats := []string{shellquote.Always(c.pathString() + " --" + f.long)}
			if f.short != 0 {
				pats = append(pats, shellquote.Always(c.pathString()+" -"+string(f.short)))
			}
			fmt.Fprintf(&b, "    %s) %s ;;\n", strings.Join(pats, "|"), act)
		}
	}
	fmt.Fprintf(&b, "    esac\n}\n\n")

	fmt.Fprintf(&b, "# %s_arg PATH N: complete positional argument N (from 0).\n%[1]s_arg() {\n    case \"$1 $2\" in\n", fn)
	for _, c := range root.all() {
		for i, a := range c.args {
			if a.comp.Command {
				continue // the walker hands the rest of the line to its command
			}
			if act := bashAction(fn, a.comp); act != "" {
				fmt.Fprintf(&b, "    %s) %s ;;\n", shellquote.Always(fmt.Sprintf("%s %d", c.pathString(), i)), act)
			}
		}
	}
	fmt.Fprintf(&b, "    esac\n}\n")
	b.WriteString(strings.NewReplacer("@FN@", fn, "@HOOK@", s.Hook, "@PROG@", s.Prog).Replace(bashBody))
	_, err := io.WriteString(w, b.String())
	return err
}

// bashAction is the shell code that completes c, or "".
func bashAction(fn string, c Completion) string {
	var acts []string
	if len(c.Words) > 0 {
		acts = append(acts, fn+"_words "+shellquote.Always(strings.Join(c.Words, " ")))
	}
	if c.Dynamic != "" {
		acts = append(acts, fn+"_dynamic "+shellquote.Always(c.Dynamic))
	}
	if c.Files != "" {
		acts = append(acts, fn+"_files "+shellquote.Always(c.Files))
	} else if c.Dirs {
		acts = append(acts, fn+"_dirs")
	}
	if c.Users {
		acts = append(acts, fn+"_users")
	}
	return strings.Join(acts, "; ")
}

// bashBody is the walker and the helpers. @FN@ is the function prefix, @HOOK@ the command that
// lists dynamic names, @PROG@ the program.
const bashBody = `
# The helpers add to COMPREPLY what matches $cur.
@FN@_words() {
    local w ws
    read -ra ws <<<"$1"
    for w in "${ws[@]}"; do [[ $w == "$cur"* ]] && COMPREPLY+=("$w"); done
}

# @FN@_dynamic KIND: names the program lists itself (@PROG@ @HOOK@ KIND), taken as they are
# (no expansion of what the program prints).
@FN@_dynamic() {
    local n
    while IFS= read -r n; do
        [[ -n $n && $n == "$cur"* ]] && COMPREPLY+=("$n")
    done < <("$prog" @HOOK@ "$1" 2>/dev/null)
}

@FN@_files() {
    local IFS=$'\n'
    compopt -o filenames 2>/dev/null
    if [[ $1 == '*' ]]; then
        COMPREPLY+=($(compgen -f -- "$cur"))
    else
        COMPREPLY+=($(compgen -f -X "!$1" -- "$cur") $(compgen -d -- "$cur"))
    fi
}

@FN@_dirs() {
    local IFS=$'\n'
    compopt -o filenames 2>/dev/null
    COMPREPLY+=($(compgen -d -- "$cur"))
}

@FN@_users() {
    local IFS=$'\n'
    COMPREPLY+=($(compgen -u -- "$cur"))
}

# @FN@_command I: the words from I on are a command line of their own.
@FN@_command() {
    if declare -F _command_offset >/dev/null; then
        _command_offset "$1"
    elif (($1 == COMP_CWORD)); then
        local IFS=$'\n'
        COMPREPLY=($(compgen -c -- "$cur"))
    else
        @FN@_files '*'
    fi
}

@FN@() {
    local cur=${COMP_WORDS[COMP_CWORD]} prog=${COMP_WORDS[0]}
    local path= npos=0 i=1 w dashdash= valueof= prefix=
    local subs flags vflags rest cmdarg
    COMPREPLY=()
    [[ $prog == '~/'* ]] && prog=$HOME/${prog#'~/'}
    @FN@_cmd ''
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
            @FN@_cmd "$path"
        elif ((npos == cmdarg)); then
            @FN@_command "$i"
            return
        else
            ((npos++))
        fi
        ((i++))
    done
    if [[ -n $valueof ]]; then
        [[ $cur == = ]] && cur=
        @FN@_value "$path" "$valueof"
        return
    fi
    if [[ -z $dashdash && $cur == --*=* ]]; then
        # --flag=value in one word (when "=" is not a word break): complete the value.
        prefix=${cur%%=*}= valueof=${cur%%=*} cur=${cur#*=}
        @FN@_value "$path" "$valueof"
        COMPREPLY=("${COMPREPLY[@]/#/$prefix}")
        return
    fi
    if [[ -z $dashdash && $cur == -* ]]; then
        @FN@_words "$flags"
        return
    fi
    if ((npos == 0)) && [[ -n $subs ]]; then
        @FN@_words "$subs"
        return
    fi
    if ((npos == cmdarg)); then
        @FN@_command "$COMP_CWORD"
        return
    fi
    ((rest >= 0 && npos > rest)) && npos=$rest
    @FN@_arg "$path" "$npos"
}

complete -F @FN@ @PROG@
`

// ident makes a program name usable in a shell function name.
func ident(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, s)
}
