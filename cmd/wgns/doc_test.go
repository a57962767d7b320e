package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/alecthomas/kong"
)

// helpExit is what kong's Exit panics with in helpText.
type helpExit struct{}

// helpText returns what `wgns ARGS... --help` prints.
func helpText(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	p, err := newParser(&CLI{}, kong.Writers(&out, &out), kong.Exit(func(int) { panic(helpExit{}) }))
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(helpExit); !ok {
					panic(r)
				}
			}
		}()
		if _, err := p.Parse(append(args, "--help")); err != nil {
			t.Fatalf("wgns %s --help: %v", strings.Join(args, " "), err)
		}
	}()
	return out.String()
}

func model(t *testing.T) *kong.Application {
	t.Helper()
	p, err := newParser(&CLI{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Model
}

// helpCommands are the commands `wgns --help` lists, e.g. "up", "unit install".
func helpCommands(t *testing.T) []string {
	t.Helper()
	var cmds []string
	in := false
	for _, l := range strings.Split(helpText(t), "\n") {
		switch {
		case l == "Commands:":
			in = true
		case in && strings.HasPrefix(l, "  ") && !strings.HasPrefix(l, "   "):
			name, _, _ := strings.Cut(strings.TrimSpace(l), "  ")
			cmds = append(cmds, name)
		case in && l == "":
			in = false
		}
	}
	if len(cmds) < 10 {
		t.Fatalf("found only commands %q in wgns --help:\n%s", cmds, helpText(t))
	}
	return cmds
}

var (
	helpFlagRE = regexp.MustCompile(`(?m)^\s+(?:-([a-zA-Z]), )?--([a-z0-9][a-z0-9-]*)(?:=\S+)?(?:\s{2,}|$)`)
	helpArgRE  = regexp.MustCompile(`(?m)^\s+<([^>]+)>`)
)

// helpFlags are the flags (--x, and -x for a short one) and the arguments (<x>) of a command's
// --help.
func helpFlags(t *testing.T, cmd string) (flags, args []string) {
	t.Helper()
	text := helpText(t, strings.Fields(cmd)...)
	for _, m := range helpFlagRE.FindAllStringSubmatch(text, -1) {
		if m[1] != "" {
			flags = append(flags, "-"+m[1])
		}
		flags = append(flags, "--"+m[2])
	}
	for _, m := range helpArgRE.FindAllStringSubmatch(text, -1) {
		args = append(args, m[1])
	}
	return flags, args
}

// deroff turns a man page into the text it shows, roughly: escapes out, macro names out.
func deroff(page string) string {
	page = regexp.MustCompile(`\\f[BIR]`).ReplaceAllString(page, "")
	page = strings.NewReplacer(`\-`, "-", `\e`, `\`, `\&`, "", `\(dq`, `"`).Replace(page)
	page = regexp.MustCompile(`(?m)^\.[A-Z]+ ?`).ReplaceAllString(page, "")
	return strings.ReplaceAll(page, `"`, "")
}

func render(t *testing.T, what string) string {
	t.Helper()
	var b bytes.Buffer
	if err := generate(&b, model(t), what, "2026-11-28"); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestManCoversHelp: wgns(8) documents every command --help lists, with every flag and
// argument its --help shows, and no command --help does not show (hidden ones).
func TestManCoversHelp(t *testing.T) {
	page := deroff(render(t, "wgns.8"))
	cmds := helpCommands(t)
	for _, cmd := range cmds {
		if !strings.Contains(page, "\nwgns "+cmd+"\n") {
			t.Errorf("wgns(8) has no section for `wgns %s`", cmd)
		}
		if !strings.Contains(page, "wgns "+cmd+" ") && !strings.Contains(page, "wgns "+cmd+"\n") {
			t.Errorf("wgns(8)'s synopsis lacks `wgns %s`", cmd)
		}
		section := page[strings.Index(page, "\nwgns "+cmd+"\n")+1:]
		if end := strings.Index(section[1:], "\nwgns "); end >= 0 {
			section = section[:end+1]
		}
		flags, args := helpFlags(t, cmd)
		for _, f := range flags {
			if f == "--help" || f == "-h" || f == "--version" {
				continue // global flags: in OPTIONS
			}
			// As an item's tag: at the start of a line, alone or as in "-u, --user=USER".
			if !regexp.MustCompile(`(?m)^(-\w, )?` + regexp.QuoteMeta(f) + `(, |=|$)`).MatchString(section) {
				t.Errorf("wgns(8) does not document %s of `wgns %s`", f, cmd)
			}
		}
		for _, a := range args {
			if !strings.Contains(section, strings.ToUpper(a)) && !strings.Contains(section, a) {
				t.Errorf("wgns(8) does not document argument <%s> of `wgns %s`", a, cmd)
			}
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^SS wgns (.*)$`).FindAllStringSubmatch(deroffKeepMacros(render(t, "wgns.8")), -1) {
		if !slices.Contains(cmds, m[1]) {
			t.Errorf("wgns(8) documents `wgns %s`, which --help does not list", m[1])
		}
	}
	if !strings.Contains(page, "-h, --help") {
		t.Error("wgns(8) does not document --help")
	}
}

// deroffKeepMacros is deroff that keeps the macro names (without their dot).
func deroffKeepMacros(page string) string {
	page = regexp.MustCompile(`\\f[BIR]`).ReplaceAllString(page, "")
	page = strings.NewReplacer(`\-`, "-", `\e`, `\`, `\&`, "").Replace(page)
	return strings.ReplaceAll(regexp.MustCompile(`(?m)^\.`).ReplaceAllString(page, ""), `"`, "")
}

// TestHiddenCommandsStayHidden: the generators' own commands appear in no --help, manual or
// completion.
func TestHiddenCommandsStayHidden(t *testing.T) {
	outputs := map[string]string{"wgns --help": helpText(t)}
	for _, w := range []string{"wgns.8", "bash", "zsh", "fish"} {
		outputs[w] = render(t, w)
	}
	for name, text := range outputs {
		for _, hidden := range []string{"__gen", "selftest-world", "selftest-peer"} {
			if strings.Contains(text, hidden) {
				t.Errorf("%s mentions the hidden command %s", name, hidden)
			}
		}
	}
}

// bashComplete runs the generated bash completion on a command line (the cursor at its end),
// in the script's directory.
func bashComplete(t *testing.T, script, line string) []string {
	t.Helper()
	cmd := exec.Command("bash", "--norc", "--noprofile", "-c",
		`. "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _wgns; printf '%s\n' "${COMPREPLY[@]}"`,
		script)
	cmd.Args = append(cmd.Args, strings.Split(line, " ")...)
	cmd.Dir = filepath.Dir(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash completion of %q: %v\n%s", line, err, out)
	}
	got := strings.Fields(string(out))
	slices.Sort(got)
	return got
}

// TestCompletionsCoverHelp: bash offers exactly the commands --help lists, and for each
// command exactly the flags its --help shows; zsh and fish name every one of them.
func TestCompletionsCoverHelp(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	script := filepath.Join(t.TempDir(), "wgns")
	if err := os.WriteFile(script, []byte(render(t, "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	zsh, fish := render(t, "zsh"), render(t, "fish")
	cmds := helpCommands(t)
	var top []string
	for _, c := range cmds {
		first, _, _ := strings.Cut(c, " ")
		if !slices.Contains(top, first) {
			top = append(top, first)
		}
	}
	slices.Sort(top)
	if got := bashComplete(t, script, "wgns "); !slices.Equal(got, top) {
		t.Errorf("bash completes `wgns ` with %q, want the commands of --help %q", got, top)
	}
	for _, c := range cmds {
		flags, _ := helpFlags(t, c)
		slices.Sort(flags)
		var long []string
		for _, f := range flags {
			if strings.HasPrefix(f, "--") {
				long = append(long, f)
			}
		}
		if got := bashComplete(t, script, "wgns "+c+" --"); !slices.Equal(got, long) {
			t.Errorf("bash completes `wgns %s --` with %q, want the flags of its --help %q", c, got, long)
		}
		last := c[strings.LastIndex(c, " ")+1:]
		if !strings.Contains(zsh, "\n        '"+last+":") && !strings.Contains(zsh, "("+last+") ") {
			t.Errorf("zsh completion does not offer command %q", c)
		}
		if !strings.Contains(fish, " -a '"+last+"' ") {
			t.Errorf("fish completion does not offer command %q", c)
		}
		for _, f := range long {
			if !strings.Contains(zsh, f+"[") && !strings.Contains(zsh, f+"=[") {
				t.Errorf("zsh completion lacks %s of `wgns %s`", f, c)
			}
			if !strings.Contains(fish, "-l "+strings.TrimPrefix(f, "--")+" ") {
				t.Errorf("fish completion lacks %s of `wgns %s`", f, c)
			}
		}
	}
}

// TestCompletionArguments: the arguments complete with what the issue asks for: running
// tunnels for down, exec, status, check and repair; configs and .conf files for up; users for
// exec --user; a command line after exec's NAME.
func TestCompletionArguments(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "wgns.bash")
	if err := os.WriteFile(script, []byte(render(t, "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	// A stand-in wgns answers __complete as the real one would in a machine with tunnels
	// "work" and "home" running, and configs "work" and "office".
	if err := os.WriteFile(filepath.Join(dir, "x.conf"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "wgns")
	if err := os.WriteFile(fake, []byte(`#!/bin/sh
case "$1 $2" in
"__complete tunnels") printf '%s\n' home work ;;
"__complete configs") printf '%s\n' office work ;;
*) exit 2 ;;
esac
`), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"wgns down ", []string{"home", "work"}},
		{"wgns exec ", []string{"home", "work"}},
		{"wgns status ", []string{"home", "work"}},
		{"wgns check ", []string{"home", "work"}},
		{"wgns repair ", []string{"home", "work"}},
		{"wgns up ", []string{"office", "work", "x.conf"}}, // not wgns.bash: only .conf files
		{"wgns unit install ", []string{"office", "work"}},
		{"wgns unit install --style ", []string{"joins", "path"}},
		{"wgns unit template ", []string{"wgns-netns@.service", "wgns.service", "wgns.socket", "wgns@.service"}},
		{"wgns exec -u roo", []string{"root"}},
		{"wgns exec work -- tru", []string{"true"}},
	} {
		words := strings.Split(tc.line, " ")
		words[0] = fake
		got := bashComplete(t, script, strings.Join(words, " "))
		if strings.HasSuffix(tc.line, "tru") {
			if !slices.Contains(got, "true") {
				t.Errorf("%q offers %q, want true among them", tc.line, got)
			}
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q offers %q, want %q", tc.line, got, tc.want)
		}
	}
}

// denyFS is a file system in which some directories cannot be read (as /run/wgns for a user).
type denyFS struct {
	fs.FS
	denied []string
}

func (d denyFS) Open(name string) (fs.File, error) {
	for _, p := range d.denied {
		if name == p || strings.HasPrefix(name, p+"/") {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
		}
	}
	return d.FS.Open(name)
}

func TestCompletionNames(t *testing.T) {
	byWgns := []byte("# Name services of network namespace \"a\", written by wgns from the host's\n# ...\nhosts: files dns\n")
	machine := fstest.MapFS{
		"run/wgns/a.json":                       {},
		"run/wgns/b.json":                       {},
		"run/wgns/a.lock":                       {},
		"run/wgns/bad name.json":                {},
		"run/wgns/etc/passwd":                   {},
		"run/netns/a":                           {},
		"run/netns/b":                           {},
		"run/netns/other":                       {},
		"run/netns/plain":                       {},
		"etc/netns/a/nsswitch.conf":             {Data: byWgns},
		"etc/netns/b/nsswitch.conf":             {Data: byWgns},
		"etc/netns/other/nsswitch.conf":         {Data: []byte("hosts: files\n# written by wgns, says the second line\n")},
		"etc/netns/gone/nsswitch.conf":          {Data: byWgns}, // no namespace: not running
		"etc/wgns/work.conf":                    {},
		"etc/wgns/bad name.conf":                {},
		"etc/wgns/work.key":                     {},
		"etc/wireguard/home.conf":               {},
		"etc/wireguard/work.conf":               {},
		"etc/systemd/system/foo.service":        {},
		"etc/systemd/system/foo.service.d/x":    {},
		"etc/systemd/system/bar.timer":          {},
		"lib/systemd/system/wgns@.service":      {},
		"usr/lib/systemd/system/baz.service":    {},
		"usr/lib/systemd/system/foo.service":    {},
		"usr/lib/systemd/system/getty@.service": {},
	}
	for _, tc := range []struct {
		name   string
		denied []string
		kind   string
		want   []string
	}{
		{"root: wgns's state", nil, "tunnels", []string{"a", "b"}},
		{"user: namespaces with wgns's DNS view", []string{"run/wgns"}, "tunnels", []string{"a", "b"}},
		{"user: nothing when /etc/netns cannot be read", []string{"run/wgns", "etc/netns"}, "tunnels", nil},
		{"configs of both directories", nil, "configs", []string{"home", "work"}},
		{"configs a user can read", []string{"etc/wgns"}, "configs", []string{"home", "work"}},
		{"no configs readable", []string{"etc/wgns", "etc/wireguard"}, "configs", nil},
		{"services, not templates", nil, "services", []string{"baz.service", "foo.service"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := completionNames(denyFS{machine, tc.denied}, tc.kind)
			if !slices.Equal(got, tc.want) {
				t.Errorf("completionNames(%s) = %q, want %q", tc.kind, got, tc.want)
			}
		})
	}
	// Without the state directory at all (no tunnel was ever up), root gets nothing, and the
	// namespaces are not guessed at.
	noState := fstest.MapFS{"run/netns/a": {}, "etc/netns/a/nsswitch.conf": {Data: byWgns}}
	if got := completionNames(noState, "tunnels"); got != nil {
		t.Errorf("tunnels without /run/wgns: %q, want none", got)
	}
}

// TestConfKeysMatchParser: wgns.conf(5) documents exactly the keys the parser accepts, each in
// its section. The parser's table is read from its source (wgns/config keeps it unexported).
func TestConfKeysMatchParser(t *testing.T) {
	parsed := parserKeys(t)
	var documented []string
	for _, k := range confKeys {
		documented = append(documented, k.Section+"."+k.Key)
	}
	for _, k := range parsed {
		if !slices.Contains(documented, k) {
			t.Errorf("the parser accepts %s, which wgns.conf(5) does not document: add a row to confKeys (cmd/wgns/confkeys.go)", k)
		}
	}
	for _, k := range documented {
		if !slices.Contains(parsed, k) {
			t.Errorf("wgns.conf(5) documents %s, which the parser does not accept", k)
		}
	}
	page := deroff(render(t, "wgns.conf.5"))
	for _, k := range confKeys {
		sec := page[strings.Index(page, "["+k.Section+"] SECTION"):]
		if !strings.Contains(sec, "\n"+k.Key+" = ") {
			t.Errorf("wgns.conf(5) lacks %s in [%s]", k.Key, k.Section)
		}
	}
}

// parserKeys reads the keySpecs table of wgns/config/parse.go: "Section.Key" for each row.
func parserKeys(t *testing.T) []string {
	t.Helper()
	path := filepath.Join("..", "..", "wgns", "config", "parse.go")
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{"secInterface": "Interface", "secPeer": "Peer", "secNamespace": "Namespace"}
	var keys []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "keySpecs" || len(vs.Values) != 1 {
			return true
		}
		for _, e := range vs.Values[0].(*ast.CompositeLit).Elts {
			row := e.(*ast.CompositeLit).Elts
			name, err := strconv.Unquote(row[0].(*ast.BasicLit).Value)
			if err != nil {
				t.Fatal(err)
			}
			sec, ok := sections[row[1].(*ast.Ident).Name]
			if !ok {
				t.Fatalf("%s: keySpecs row %s is in section %s, which this test does not know", path, name, row[1].(*ast.Ident).Name)
			}
			keys = append(keys, sec+"."+name)
		}
		return false
	})
	if len(keys) < 15 {
		t.Fatalf("read only %d keys from keySpecs in %s: has its shape changed?", len(keys), path)
	}
	return keys
}

// TestGeneratedFilesAreValid: every shell parses its script, and man(1) renders both pages
// without a warning.
func TestGeneratedFilesAreValid(t *testing.T) {
	dir := t.TempDir()
	checks := map[string][]string{
		"bash":        {"bash", "-n"},
		"zsh":         {"zsh", "-n"},
		"fish":        {"fish", "--no-execute"},
		"wgns.8":      {"man", "--warnings", "-l", "-Tutf8"},
		"wgns.conf.5": {"man", "--warnings", "-l", "-Tutf8"},
	}
	for what, check := range checks {
		t.Run(what, func(t *testing.T) {
			if _, err := exec.LookPath(check[0]); err != nil {
				t.Skipf("%s is not installed (make deps installs it)", check[0])
			}
			path := filepath.Join(dir, what)
			if err := os.WriteFile(path, []byte(render(t, what)), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(check[0], append(check[1:], path)...)
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = nil, &stderr
			if err := cmd.Run(); err != nil || stderr.Len() > 0 {
				t.Errorf("%s %s: %v\n%s", strings.Join(check, " "), what, err, stderr.String())
			}
		})
	}
}

func TestManDate(t *testing.T) {
	for _, tc := range []struct{ date, epoch, want string }{
		{"2026-01-02", "0", "2026-01-02"},
		{"", "1764288000", "2025-11-28"},
		{"", "", ""},
		{"", "not a number", ""},
	} {
		if got := manDate(tc.date, tc.epoch); got != tc.want {
			t.Errorf("manDate(%q, %q) = %q, want %q", tc.date, tc.epoch, got, tc.want)
		}
	}
}

func TestGenerateUnknown(t *testing.T) {
	var out bytes.Buffer
	err := generate(&out, model(t), "wgns.1", "")
	if err == nil || !strings.Contains(err.Error(), `"wgns.1"`) || out.Len() > 0 {
		t.Errorf("generate(wgns.1) = %v, wrote %q; want an error naming it and nothing written", err, out.String())
	}
}
