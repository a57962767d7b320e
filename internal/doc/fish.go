package doc

import (
	"fmt"
	"io"
	"strings"
)

// Fish writes a fish completion script for s.Prog. A walker over the words before the cursor
// (the same as bash's) tells which command and which positional argument the cursor is at;
// every `complete` line is conditioned on it.
func Fish(w io.Writer, s Spec) error {
	root := buildModel(s)
	fn := "__" + ident(s.Prog)
	var b strings.Builder
	fmt.Fprintf(&b, "# fish completion for %[1]s; generated from %[1]s's command-line model; do not edit.\n\n", s.Prog)

	table := func(name, what, dflt string, val func(c *command) string) {
		fmt.Fprintf(&b, "# %s_%s PATH: %s\nfunction %[1]s_%[2]s\n    switch \"$argv[1]\"\n", fn, name, what)
		for _, c := range root.all() {
			if v := val(c); v != "" {
				fmt.Fprintf(&b, "        case %s\n            %s\n", fishQuote(c.pathString()), v)
			}
		}
		if dflt != "" {
			fmt.Fprintf(&b, "        case '*'\n            %s\n", dflt)
		}
		b.WriteString("    end\nend\n\n")
	}
	list := func(ws []string) string {
		if len(ws) == 0 {
			return ""
		}
		var q []string
		for _, w := range ws {
			q = append(q, fishQuote(w))
		}
		return "printf '%s\\n' " + strings.Join(q, " ")
	}
	table("subs", "the subcommands of a command.", "", func(c *command) string { return list(c.subNames()) })
	table("vflags", "the flags of a command that take a value.", "", func(c *command) string { return list(c.valueFlags()) })
	num := func(n int) string {
		if n < 0 {
			return ""
		}
		return fmt.Sprintf("echo %d", n)
	}
	table("rest", "the argument that takes every remaining word (none: -1).", "echo -1", func(c *command) string { return num(c.restArg()) })
	table("cmdarg", "the argument that is a command line of its own (none: -1).", "echo -1", func(c *command) string { return num(c.cmdArg()) })
	b.WriteString(strings.NewReplacer("@FN@", fn, "@HOOK@", s.Hook, "@PROG@", s.Prog).Replace(fishBody))

	fmt.Fprintf(&b, "\ncomplete -c %s -f\n", s.Prog)
	for _, c := range root.all() {
		path := `"` + c.pathString() + `"` // command names are words: nothing to escape
		if len(c.subs) > 0 {
			fmt.Fprintf(&b, "\n# %s\n", strings.TrimSpace(s.Prog+" "+c.pathString()))
			for _, sub := range c.subs {
				fmt.Fprintf(&b, "complete -c %s -n %s -a %s -d %s\n", s.Prog,
					fishQuote(fn+"_at "+path+" sub"), fishQuote(sub.path[len(sub.path)-1]), fishQuote(oneLine(sub.help)))
			}
		} else {
			fmt.Fprintf(&b, "\n# %s\n", strings.TrimSpace(s.Prog+" "+c.pathString()))
		}
		for _, f := range c.flags {
			line := fmt.Sprintf("complete -c %s -n %s", s.Prog, fishQuote(fn+"_at "+path+" flags"))
			if f.short != 0 {
				line += " -s " + string(f.short)
			}
			line += " -l " + f.long
			if f.value {
				// -r: the flag takes a value; -f as well (-x) unless the value is any file.
				if args := fishArgs(fn, f.comp); strings.HasPrefix(args, " -F") {
					line += " -r" + args
				} else {
					line += " -x" + args
				}
			}
			line += " -d " + fishQuote(oneLine(f.help))
			b.WriteString(line + "\n")
			if f.neg != "" {
				fmt.Fprintf(&b, "complete -c %s -n %s -l %s -d %s\n", s.Prog, fishQuote(fn+"_at "+path+" flags"),
					f.neg, fishQuote(oneLine(f.help)))
			}
		}
		for i, a := range c.args {
			if a.comp.Command {
				fmt.Fprintf(&b, "complete -c %s -n %s -a %s\n", s.Prog, fishQuote(fn+"_at "+path+" cmd"),
					fishQuote("("+fn+"_cmdline)"))
				continue
			}
			if args := fishArgs(fn, a.comp); args != "" {
				fmt.Fprintf(&b, "complete -c %s -n %s%s\n", s.Prog, fishQuote(fmt.Sprintf("%s_at %s %d", fn, path, i)), args)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fishArgs are the options of a `complete` line that offer c's candidates: " -F" for any
// file, " -a '...'" for the rest. (The script turns file completion off: the values of a
// flag and the arguments offer files only where c says so.)
func fishArgs(fn string, c Completion) string {
	var subst []string
	out := ""
	if len(c.Words) > 0 {
		subst = append(subst, strings.Join(c.Words, " "))
	}
	if c.Dynamic != "" {
		subst = append(subst, "("+fn+"_dynamic "+c.Dynamic+")")
	}
	switch {
	case c.Files == "*":
		out += " -F"
	case c.Files != "":
		subst = append(subst, "("+fn+"_files "+fishQuote(c.Files)+")")
	case c.Dirs:
		subst = append(subst, "(__fish_complete_directories)")
	}
	if c.Users {
		subst = append(subst, "(__fish_complete_users)")
	}
	if len(subst) > 0 {
		out += " -a " + fishQuote(strings.Join(subst, " "))
	}
	return out
}

// fishQuote quotes s for fish in single quotes.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// fishBody is the walker and the conditions. @FN@ is the function prefix, @HOOK@ the command
// that lists dynamic names.
const fishBody = `# @FN@_walk: "p" and the command path, the positional argument at the cursor, and the
# index of the word where a command line of its own starts (-1: none).
function @FN@_walk
    set -l tokens (commandline -opc)
    set -l n (count $tokens)
    set -l path
    set -l npos 0
    set -l dashdash 0
    set -l i 2
    while test $i -le $n
        set -l w $tokens[$i]
        if test $dashdash = 0 -a "x$w" = x--
            set dashdash 1
        else if test $dashdash = 0; and string match -q -- '-?*' $w
            if not string match -q -- '*=*' $w; and contains -- $w (@FN@_vflags "$path")
                set i (math $i + 1)
            end
        else if test $npos = 0 -a $dashdash = 0; and contains -- $w (@FN@_subs "$path")
            set path $path $w
        else if test $npos = (@FN@_cmdarg "$path")
            echo "p$path"; echo $npos; echo $i
            return
        else
            set npos (math $npos + 1)
        end
        set i (math $i + 1)
    end
    set -l start -1
    if test $npos = (@FN@_cmdarg "$path")
        set start (math $n + 1)
    end
    set -l rest (@FN@_rest "$path")
    if test $rest -ge 0 -a $npos -gt $rest
        set npos $rest
    end
    echo "p$path"; echo $npos; echo $start
end

# @FN@_at PATH WHAT: whether the cursor is in command PATH at WHAT: flags, sub (its
# subcommand), cmd (a command line of its own), or N (positional argument N).
function @FN@_at
    set -l st (@FN@_walk)
    test "$st[1]" = "p$argv[1]"; or return 1
    switch $argv[2]
        case flags
            test $st[3] = -1
        case sub
            test $st[3] = -1 -a $st[2] = 0
        case cmd
            test $st[3] != -1
        case '*'
            test $st[3] = -1 -a $st[2] = $argv[2]
    end
end

# @FN@_dynamic KIND: names @PROG@ lists itself (@PROG@ @HOOK@ KIND).
function @FN@_dynamic
    set -l prog (commandline -opc)[1]
    $prog @HOOK@ $argv[1] 2>/dev/null
end

# @FN@_files GLOB: the files that match GLOB, and directories to descend into.
function @FN@_files
    for f in (__fish_complete_path (commandline -ct))
        set f (string split -f1 \t -- $f)
        if string match -q -- '*/' $f; or string match -q -- $argv[1] (path basename -- $f)
            echo $f
        end
    end
end

# @FN@_cmdline: complete the command line that starts inside this one.
function @FN@_cmdline
    set -l st (@FN@_walk)
    set -l tokens (commandline -opc)
    set -l rest
    if test $st[3] -le (count $tokens)
        set rest $tokens[$st[3]..-1]
    end
    __fish_complete_subcommand --commandline $rest (commandline -ct)
end
`
