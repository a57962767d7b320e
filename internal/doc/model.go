package doc

import (
	"reflect"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// Completion says how a shell completes a value. Any of its parts may be combined; the zero
// value completes nothing.
type Completion struct {
	// Words are fixed candidates (an enum's values).
	Words []string
	// Dynamic names a kind of name the program itself lists, one per line, when run as
	// `PROG HOOK Dynamic` (see Spec.Hook), e.g. "tunnels".
	Dynamic string
	// Files is a glob the candidate files must match ("*" for any file; directories are
	// always offered so that the user can descend), or "" for no files.
	Files string
	// Dirs offers directories.
	Dirs bool
	// Users offers user names.
	Users bool
	// Command completes the rest of the line as a command and its arguments, as sudo's
	// completion does. It is only meaningful on a positional argument, and ends the walk:
	// every word from there on belongs to that command.
	Command bool
}

// Completer says how value v (a flag or a positional argument) of command cmd completes. It
// reports false to leave v to the default: its enum values if it has any, else nothing.
type Completer func(cmd *kong.Node, v *kong.Value) (Completion, bool)

// Spec is what the completion generators need: the model, the program's name and how its
// values complete.
type Spec struct {
	App      *kong.Application
	Prog     string    // the command the completion is for, e.g. "wgns"
	Hook     string    // the (hidden) command that lists dynamic names: PROG Hook KIND
	Complete Completer // may be nil
}

// command is a command of the model as the generators see it: hidden commands and flags are
// gone, and every value knows how it completes.
type command struct {
	path  []string // command names from the root; empty for the root
	help  string
	subs  []*command
	flags []flag // its own and its ancestors', as kong accepts them
	args  []arg
}

type flag struct {
	long    string // without dashes
	neg     string // the negated form without dashes (--no-x), or ""
	short   rune
	help    string
	value   bool   // takes a value
	holder  string // its value's placeholder, e.g. "NAME"
	comp    Completion
	exclude bool // --help: nothing else goes with it
}

type arg struct {
	name     string // as a placeholder: NAME, CONFIG|NAME
	help     string
	rest     bool // takes every remaining word
	optional bool
	comp     Completion
}

// pathString is the command's path joined with spaces ("unit install"), "" for the root.
func (c *command) pathString() string { return strings.Join(c.path, " ") }

// cmdArg returns the index of the positional argument that completes as a command, or -1.
func (c *command) cmdArg() int {
	for i, a := range c.args {
		if a.comp.Command {
			return i
		}
	}
	return -1
}

// restArg returns the index of the argument that takes every remaining word, or -1.
func (c *command) restArg() int {
	for i, a := range c.args {
		if a.rest {
			return i
		}
	}
	return -1
}

// valueFlags lists the spellings of the flags that take a value (--name, -n).
func (c *command) valueFlags() []string {
	var out []string
	for _, f := range c.flags {
		if f.value {
			out = append(out, "--"+f.long)
			if f.short != 0 {
				out = append(out, "-"+string(f.short))
			}
		}
	}
	return out
}

// flagWords lists every spelling of every flag (--x, -x, --no-x).
func (c *command) flagWords() []string {
	var out []string
	for _, f := range c.flags {
		if f.short != 0 {
			out = append(out, "-"+string(f.short))
		}
		out = append(out, "--"+f.long)
		if f.neg != "" {
			out = append(out, "--"+f.neg)
		}
	}
	return out
}

// subNames lists the names (and aliases) of the subcommands.
func (c *command) subNames() []string {
	var out []string
	for _, s := range c.subs {
		out = append(out, s.path[len(s.path)-1])
	}
	return out
}

// all returns c and every command below it, depth first, parents before children.
func (c *command) all() []*command {
	out := []*command{c}
	for _, s := range c.subs {
		out = append(out, s.all()...)
	}
	return out
}

// buildModel turns the kong model into the generators' view of it.
func buildModel(s Spec) *command {
	return buildCommand(s, s.App.Node, nil)
}

func buildCommand(s Spec, n *kong.Node, path []string) *command {
	c := &command{path: path, help: n.Help}
	for _, group := range n.AllFlags(true) {
		for _, f := range group {
			c.flags = append(c.flags, buildFlag(s, n, f))
		}
	}
	for _, p := range n.Positional {
		c.args = append(c.args, arg{
			name:     argName(p),
			help:     p.Help,
			rest:     p.IsCumulative() || p.Passthrough,
			optional: !p.Required,
			comp:     completion(s, n, p),
		})
	}
	for _, child := range n.Children {
		if child.Hidden || child.Type != kong.CommandNode {
			continue
		}
		names := append([]string{child.Name}, child.Aliases...)
		for _, name := range names {
			p := append(append([]string{}, path...), name)
			c.subs = append(c.subs, buildCommand(s, child, p))
		}
	}
	return c
}

func buildFlag(s Spec, n *kong.Node, f *kong.Flag) flag {
	fl := flag{long: f.Name, short: f.Short, help: f.Help, value: !f.IsBool() && !f.IsCounter(),
		holder: placeholder(f), comp: completion(s, n, f.Value)}
	if f.Tag != nil && f.Tag.Negatable != "" {
		fl.neg = strings.TrimPrefix(negatedName(f), "--")
	}
	fl.exclude = f == s.App.HelpFlag
	return fl
}

// negatedName is the negated spelling of a negatable flag, as kong accepts it.
func negatedName(f *kong.Flag) string {
	if f.Tag.Negatable == "_" {
		return "--no-" + f.Name
	}
	return "--" + f.Tag.Negatable
}

// completion asks the Completer, and falls back to the value's enum.
func completion(s Spec, n *kong.Node, v *kong.Value) Completion {
	if s.Complete != nil {
		if c, ok := s.Complete(n, v); ok {
			return c
		}
	}
	if v.Enum != "" {
		return Completion{Words: v.EnumSlice()}
	}
	return Completion{}
}

// placeholder is the name of a flag's value: its placeholder, else DURATION for a duration,
// else its name in capitals.
func placeholder(f *kong.Flag) string {
	if f.PlaceHolder != "" {
		return f.PlaceHolder
	}
	if f.Target.Type() == reflect.TypeOf(time.Duration(0)) {
		return "DURATION"
	}
	return strings.ToUpper(f.Name)
}

// argName is a positional argument's name as a placeholder: as written if it has capitals
// (CONFIG|NAME), else in capitals (name becomes NAME).
func argName(p *kong.Value) string {
	if strings.ToLower(p.Name) != p.Name {
		return p.Name
	}
	return strings.ToUpper(p.Name)
}
