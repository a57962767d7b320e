package doc

import (
	"fmt"
	"io"
	"strings"

	"github.com/wgns/wgns/internal/shellquote"
)

// Zsh writes a zsh completion function (#compdef) for s.Prog: one _arguments call per
// command, with a state for the subcommand of commands that have them.
func Zsh(w io.Writer, s Spec) error {
	root := buildModel(s)
	fn := "_" + ident(s.Prog)
	z := &zshGen{fn: fn, prog: s.Prog}
	var b strings.Builder
	fmt.Fprintf(&b, `#compdef %[1]s
# zsh completion for %[1]s; generated from %[1]s's command-line model; do not edit.

# %[2]s_dynamic [COMPADD-OPTIONS] KIND: names %[1]s lists itself (%[1]s %[3]s KIND).
# _arguments and _alternative put their compadd options before KIND.
%[2]s_dynamic() {
    local kind=$argv[-1]
    local -a names
    names=(${(f)"$(_call_program $kind ${(q)%[2]s_prog} %[3]s ${(q)kind} 2>/dev/null)"})
    compadd "${(@)argv[1,-2]}" -a names
}

# %[2]s_cmdline N: the words after the first N arguments are a command line of its own.
# (In a '*::' action, words holds the arguments only, from the first one on.)
%[2]s_cmdline() {
    local skip=$1
    (( skip < CURRENT )) || return 1
    shift $skip words
    (( CURRENT -= skip ))
    if [[ $words[1] == -- ]]; then
        shift words
        (( CURRENT-- ))
    fi
    _normal
}
`, s.Prog, fn, s.Hook)
	for _, c := range root.all() {
		z.command(&b, c)
	}
	b.WriteString(z.helpers.String())
	fmt.Fprintf(&b, `
%[1]s() {
    local %[1]s_prog=${words[1]/#\~/$HOME}
    %[1]s_cmd "$@"
}

%[1]s "$@"
`, fn)
	_, err := io.WriteString(w, b.String())
	return err
}

type zshGen struct {
	fn, prog string
	helpers  strings.Builder // functions for values that complete in more than one way
	n        int
}

// funcName is the completion function of command c.
func (z *zshGen) funcName(c *command) string {
	if len(c.path) == 0 {
		return z.fn + "_cmd"
	}
	return z.fn + "_cmd_" + ident(strings.Join(c.path, "_"))
}

func (z *zshGen) command(b *strings.Builder, c *command) {
	var specs []string
	for _, f := range c.flags {
		specs = append(specs, z.flagSpecs(f)...)
	}
	for i, a := range c.args {
		specs = append(specs, z.argSpec(i, a))
	}
	fmt.Fprintf(b, "\n%s() {\n", z.funcName(c))
	if len(c.subs) == 0 {
		fmt.Fprintf(b, "    _arguments -S \\\n")
		for _, sp := range specs {
			fmt.Fprintf(b, "        %s \\\n", sp)
		}
		b.WriteString("        && return 0\n    return 1\n}\n")
		return
	}
	b.WriteString("    local curcontext=$curcontext state state_descr line ret=1\n    local -A opt_args\n")
	b.WriteString("    _arguments -C -S \\\n")
	for _, sp := range specs {
		fmt.Fprintf(b, "        %s \\\n", sp)
	}
	fmt.Fprintf(b, "        %s \\\n        '*:: :->sub' && ret=0\n", shellquote.Always(": :"+z.funcName(c)+"_subs"))
	b.WriteString("    if [[ $state == sub ]]; then\n")
	ctx := strings.Join(append([]string{z.prog}, c.path...), "-")
	fmt.Fprintf(b, "        curcontext=${curcontext%%:*:*}:%s-$words[1]:\n", ctx)
	b.WriteString("        case $words[1] in\n")
	for _, sub := range c.subs {
		fmt.Fprintf(b, "        (%s) %s && ret=0 ;;\n", sub.path[len(sub.path)-1], z.funcName(sub))
	}
	b.WriteString("        esac\n    fi\n    return ret\n}\n")

	fmt.Fprintf(b, "\n%s_subs() {\n    local -a subs\n    subs=(\n", z.funcName(c))
	for _, sub := range c.subs {
		name := sub.path[len(sub.path)-1]
		fmt.Fprintf(b, "        %s\n", shellquote.Always(strings.ReplaceAll(name, ":", `\:`)+":"+oneLine(sub.help)))
	}
	what := strings.Join(append([]string{z.prog}, c.path...), " ") + " command"
	fmt.Fprintf(b, "    )\n    _describe -t commands %s subs\n}\n", shellquote.Always(what))
}

// flagSpecs are the _arguments specs of a flag: one per spelling, each excluding the others.
func (z *zshGen) flagSpecs(f flag) []string {
	names := []string{"--" + f.long}
	if f.short != 0 {
		names = append([]string{"-" + string(f.short)}, names...)
	}
	excl := "(" + strings.Join(names, " ") + ")"
	if f.exclude {
		excl = "(- *)"
	}
	desc := "[" + zshDesc(f.help) + "]"
	var out []string
	for _, n := range names {
		spec := excl + n
		if f.value {
			if strings.HasPrefix(n, "--") {
				spec += "="
			} else {
				spec += "+"
			}
		}
		spec += desc
		if f.value {
			spec += ":" + zshMessage(f.holder) + ":" + z.action(f.comp)
		}
		out = append(out, shellquote.Always(spec))
	}
	if f.neg != "" {
		out = append(out, shellquote.Always("(--"+f.long+")--"+f.neg+desc))
	}
	return out
}

func (z *zshGen) argSpec(i int, a arg) string {
	switch {
	case a.comp.Command:
		return shellquote.Always(fmt.Sprintf("*::%s:{ %s_cmdline %d }", zshMessage(a.name), z.fn, i))
	case a.rest:
		return shellquote.Always("*:" + zshMessage(a.name) + ":" + z.action(a.comp))
	case a.optional:
		return shellquote.Always("::" + zshMessage(a.name) + ":" + z.action(a.comp))
	}
	return shellquote.Always(":" + zshMessage(a.name) + ":" + z.action(a.comp))
}

// action is the _arguments action for c: a function of its own when c completes in more than
// one way (_alternative), " " (a message only) for nothing.
func (z *zshGen) action(c Completion) string {
	type alt struct{ tag, desc, act string }
	var alts []alt
	if len(c.Words) > 0 {
		var ws []string
		for _, w := range c.Words {
			ws = append(ws, zshWord(w))
		}
		alts = append(alts, alt{"values", "value", "(" + strings.Join(ws, " ") + ")"})
	}
	if c.Dynamic != "" {
		alts = append(alts, alt{c.Dynamic, c.Dynamic, z.fn + "_dynamic " + c.Dynamic})
	}
	switch {
	case c.Files == "*":
		alts = append(alts, alt{"files", "file", "_files"})
	case c.Files != "":
		alts = append(alts, alt{"files", "file", "_files -g " + zshWord(c.Files)})
	case c.Dirs:
		alts = append(alts, alt{"directories", "directory", "_files -/"})
	}
	if c.Users {
		alts = append(alts, alt{"users", "user", "_users"})
	}
	switch len(alts) {
	case 0:
		return " "
	case 1:
		return alts[0].act
	}
	z.n++
	name := fmt.Sprintf("%s_alt%d", z.fn, z.n)
	var quoted []string
	for _, a := range alts {
		quoted = append(quoted, shellquote.Always(a.tag+":"+a.desc+":"+a.act))
	}
	fmt.Fprintf(&z.helpers, "\n%s() {\n    _alternative %s\n}\n", name, strings.Join(quoted, " "))
	return name
}

// zshDesc escapes a description for the brackets of an _arguments spec.
func zshDesc(s string) string {
	return strings.NewReplacer(`\`, `\\`, `[`, `\[`, `]`, `\]`).Replace(oneLine(s))
}

// zshMessage escapes the message of an _arguments spec (colons end it).
func zshMessage(s string) string {
	return strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(s)
}

// zshWord quotes a word for the inside of a single-quoted spec.
func zshWord(s string) string {
	return strings.NewReplacer(`\`, `\\`, ` `, `\ `, `(`, `\(`, `)`, `\)`, `*`, `\*`, `:`, `\:`, `"`, `\"`).Replace(s)
}

// oneLine joins the lines of a help text.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
