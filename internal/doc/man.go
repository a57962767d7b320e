package doc

import (
	"fmt"
	"strings"

	"github.com/alecthomas/kong"
)

// CommandSections returns the parts of a program's manual page that its model holds:
//   - synopsis: one line per command, e.g. "wgns down [flags] NAME";
//   - commands: a subsection per command, its help, then its arguments and flags;
//   - options: the flags every command takes (those of the application itself, e.g. --help).
//
// Commands with subcommands are described by their subcommands; hidden commands and flags are
// left out, as --help leaves them out.
func CommandSections(app *kong.Application) (synopsis, commands, options Section) {
	prog := app.Name
	synopsis.Title, commands.Title, options.Title = "SYNOPSIS", "COMMANDS", "OPTIONS"
	var lines [][]Span
	for _, n := range leaves(app.Node) {
		lines = append(lines, usage(prog, n))
		commands.Subs = append(commands.Subs, commandSection(prog, n))
	}
	synopsis.Lines = lines
	for _, f := range app.Node.Flags {
		if !f.Hidden {
			options.Items = append(options.Items, flagItem(f))
		}
	}
	return synopsis, commands, options
}

// leaves returns the visible commands without subcommands under n, in the model's order.
func leaves(n *kong.Node) []*kong.Node {
	var out []*kong.Node
	for _, c := range n.Children {
		if c.Hidden || c.Type != kong.CommandNode {
			continue
		}
		if len(visibleChildren(c)) == 0 {
			out = append(out, c)
			continue
		}
		out = append(out, leaves(c)...)
	}
	return out
}

func visibleChildren(n *kong.Node) []*kong.Node {
	var out []*kong.Node
	for _, c := range n.Children {
		if !c.Hidden && c.Type == kong.CommandNode {
			out = append(out, c)
		}
	}
	return out
}

// commandPath is "wgns unit install".
func commandPath(prog string, n *kong.Node) string {
	var names []string
	for p := n; p != nil && p.Type == kong.CommandNode; p = p.Parent {
		names = append([]string{p.Name}, names...)
	}
	return strings.Join(append([]string{prog}, names...), " ")
}

// ownFlags are the visible flags of n and of its ancestors below the application: the flags
// that belong to this command.
func ownFlags(n *kong.Node) []*kong.Flag {
	var out []*kong.Flag
	for p := n; p != nil && p.Type == kong.CommandNode; p = p.Parent {
		var fs []*kong.Flag
		for _, f := range p.Flags {
			if !f.Hidden {
				fs = append(fs, f)
			}
		}
		out = append(fs, out...)
	}
	return out
}

// usage is a command's synopsis line: its path, its required flags, [flags] when it has other
// flags, and its arguments.
func usage(prog string, n *kong.Node) []Span {
	line := []Span{B(commandPath(prog, n))}
	optional := false
	for _, f := range ownFlags(n) {
		if f.Required {
			line = append(line, R(" "), B("--"+f.Name))
			if !f.IsBool() {
				line = append(line, R("="), I(placeholder(f)))
			}
		} else {
			optional = true
		}
	}
	if optional {
		line = append(line, R(" ["), I("flags"), R("]"))
	}
	for _, p := range n.Positional {
		line = append(line, R(" "))
		line = append(line, argSpans(p)...)
	}
	return line
}

// argSpans is a positional argument as it appears in a synopsis: NAME, [NAME], COMMAND ...
func argSpans(p *kong.Value) []Span {
	var out []Span
	if !p.Required {
		out = append(out, R("["))
	}
	out = append(out, I(argName(p)))
	if p.IsCumulative() || p.Passthrough {
		out = append(out, R(" ..."))
	}
	if !p.Required {
		out = append(out, R("]"))
	}
	return out
}

func commandSection(prog string, n *kong.Node) Section {
	s := Section{Title: commandPath(prog, n)}
	s.Text = n.Help
	if n.Detail != "" {
		s.Text += "\n\n" + n.Detail
	}
	if len(n.Aliases) > 0 {
		s.Text += "\n\nAlso: " + strings.Join(n.Aliases, ", ") + "."
	}
	for _, p := range n.Positional {
		s.Items = append(s.Items, Item{Tag: argSpans(p), Text: p.Help})
	}
	for _, f := range ownFlags(n) {
		s.Items = append(s.Items, flagItem(f))
	}
	return s
}

// flagItem describes a flag: -u, --user=USER, then its help, default and environment.
func flagItem(f *kong.Flag) Item {
	var tag []Span
	if f.Short != 0 {
		tag = append(tag, B(fmt.Sprintf("-%c", f.Short)), R(", "))
	}
	if f.Tag != nil && f.Tag.Negatable != "" {
		tag = append(tag, B("--"+f.Name), R(", "), B(negatedName(f)))
	} else {
		tag = append(tag, B("--"+f.Name))
	}
	if !f.IsBool() && !f.IsCounter() {
		tag = append(tag, R("="))
		if f.Enum != "" {
			for i, e := range f.EnumSlice() {
				if i > 0 {
					tag = append(tag, R("|"))
				}
				tag = append(tag, I(e))
			}
		} else {
			tag = append(tag, I(placeholder(f)))
		}
	}
	text := f.Help
	if f.HasDefault && f.Default != "" && !f.IsBool() {
		text = strings.TrimSpace(text + " Default: " + f.Default + ".")
	}
	if len(f.Envs) > 0 {
		text = strings.TrimSpace(text + " Environment: " + strings.Join(f.Envs, ", ") + ".")
	}
	return Item{Tag: tag, Text: text}
}
