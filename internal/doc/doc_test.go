package doc

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/wgns/wgns/internal/golden"
)

// tinyCLI is a small model with every shape the generators handle: subcommands two deep, a
// hidden command, flags with short names, values, enums, defaults, negation and placeholders,
// optional and passthrough arguments, and text that needs escaping in roff and in each shell.
type tinyCLI struct {
	Verbose bool          `short:"v" help:"Say more."`
	Up      tinyUp        `cmd:"" help:"Bring a tunnel up from CONFIG (or NAME's config)."`
	Down    tinyDown      `cmd:"" help:"Take NAME down."`
	Run     tinyRun       `cmd:"" help:"Run a command inside NAME."`
	Unit    tinyUnit      `cmd:"" help:"systemd drop-ins."`
	Secret  struct{}      `cmd:"" hidden:"" help:"Never shown."`
	Wait    time.Duration `hidden:"" help:"Never shown either."`
}

type tinyUp struct {
	DryRun bool   `help:"Change nothing; print the plan."`
	Log    string `placeholder:"FILE" help:"Write a log to FILE."`
	Target string `arg:"" name:"CONFIG|NAME" help:"A config file (./x.conf), or NAME for /etc/tiny/NAME.conf."`
}

type tinyDown struct {
	Grace time.Duration `default:"5s" help:"How long to wait after SIGTERM."`
	Color bool          `negatable:"" default:"true" help:"Use colours."`
	Name  string        `arg:"" help:"Tunnel name."`
}

type tinyRun struct {
	User    string   `short:"u" placeholder:"USER" help:"Run as USER (name or uid)."`
	Name    string   `arg:"" help:"Tunnel name."`
	Command []string `arg:"" passthrough:"" help:"The command and its arguments, after --."`
}

type tinyUnit struct {
	Install tinyInstall `cmd:"" help:"Write a drop-in: UNIT runs inside NAME."`
	Show    tinyShow    `cmd:"" help:"Print the drop-in."`
}

type tinyInstall struct {
	Style string `enum:"path,joins" default:"path" help:"How UNIT enters NAME: 'path' [NetworkNamespacePath=] or \"joins\"; a back\\slash: too."`
	Dir   string `placeholder:"DIR" help:".d directories go under DIR."`
	Name  string `arg:"" help:"Tunnel name."`
	Unit  string `arg:"" help:"The unit, e.g. foo-bar.service."`
}

type tinyShow struct {
	Name string `arg:"" help:"Tunnel name."`
	Unit string `arg:"" optional:"" help:"The unit (default: all)."`
}

func tinyApp(t *testing.T) *kong.Application {
	t.Helper()
	k, err := kong.New(&tinyCLI{}, kong.Name("tiny"), kong.Description("tiny does very little.\n\nFor example:\n\n  tiny up ./x.conf\n  tiny run x -- id"))
	if err != nil {
		t.Fatal(err)
	}
	return k.Model
}

// tinyCompleter completes as wgns does: NAME arguments with running tunnels, up's argument
// with configs and .conf files, --user with users, --dir with directories, run's command as a
// command line.
func tinyCompleter(cmd *kong.Node, v *kong.Value) (Completion, bool) {
	switch {
	case v.Flag == nil && v.Name == "name":
		return Completion{Dynamic: "tunnels"}, true
	case v.Name == "CONFIG|NAME":
		return Completion{Dynamic: "configs", Files: "*.conf"}, true
	case v.Name == "command":
		return Completion{Command: true}, true
	case v.Name == "user":
		return Completion{Users: true}, true
	case v.Name == "dir":
		return Completion{Dirs: true}, true
	case v.Name == "log":
		return Completion{Files: "*"}, true
	}
	return Completion{}, false
}

func tinySpec(t *testing.T) Spec {
	return Spec{App: tinyApp(t), Prog: "tiny", Hook: "__complete", Complete: tinyCompleter}
}

func tinyPage(t *testing.T) []byte {
	app := tinyApp(t)
	synopsis, commands, options := CommandSections(app)
	p := Page{
		Name: "tiny", Section: 8, Date: "2026-11-28", Source: "tiny 1.0", Manual: "System Administration",
		Summary: "do very little",
		Sections: []Section{synopsis, {Title: "DESCRIPTION", Text: app.Help}, commands, options,
			{Title: "EXIT STATUS", Items: []Item{{Tag: []Span{B("0")}, Text: "Success."}, {Tag: []Span{B("1")}, Text: "Failure.\n\nSee .d files."}}}},
	}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestManGolden(t *testing.T) { golden.CheckFile(t, "tiny.8", string(tinyPage(t))) }

func TestBashGolden(t *testing.T) {
	var b bytes.Buffer
	if err := Bash(&b, tinySpec(t)); err != nil {
		t.Fatal(err)
	}
	golden.CheckFile(t, "tiny.bash", b.String())
}

func TestZshGolden(t *testing.T) {
	var b bytes.Buffer
	if err := Zsh(&b, tinySpec(t)); err != nil {
		t.Fatal(err)
	}
	golden.CheckFile(t, "_tiny", b.String())
}

func TestFishGolden(t *testing.T) {
	var b bytes.Buffer
	if err := Fish(&b, tinySpec(t)); err != nil {
		t.Fatal(err)
	}
	golden.CheckFile(t, "tiny.fish", b.String())
}

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"--dry-run", `\-\-dry\-run`},
		{`a\b`, `a\eb`},
		{".d files", `\&.d files`},
		{"'quoted'", `\&'quoted'`},
		{"in .d", "in .d"},
	} {
		if got := escapeLine(tc.in); got != tc.want {
			t.Errorf("escapeLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParagraphs(t *testing.T) {
	var b strings.Builder
	writeText(&b, "One\ntwo.\n\n  code --x\n    more\n\nThree.", ".PP")
	want := "One two.\n.PP\n.RS 4\n.nf\ncode \\-\\-x\n  more\n.fi\n.RE\n.PP\nThree.\n"
	if b.String() != want {
		t.Errorf("writeText:\n%s\nwant:\n%s", b.String(), want)
	}
}
