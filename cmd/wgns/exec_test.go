package main

import (
	"io"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/google/go-cmp/cmp"

	"github.com/wgns/wgns/cmd/internal/execcmd"
)

// kongExec parses `wgns exec ARGS...` with the full command line model, as main does. It
// reports help when kong would print help and exit.
func kongExec(t *testing.T, args []string) (cmd execcmd.Cmd, err error, help bool) {
	t.Helper()
	var cli CLI
	type exited struct{}
	p, err := kong.New(&cli, kong.Name("wgns"), kong.Vars{"version": version},
		kong.Writers(io.Discard, io.Discard), kong.Exit(func(int) { panic(exited{}) }))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(exited); !ok {
				panic(r)
			}
			help = true
		}
	}()
	_, err = p.Parse(append([]string{"exec"}, args...))
	return cli.Exec.Cmd, err, false
}

// TestExecParsersAgree: the fast path (execcmd.Parse, which the front and main use before kong)
// and kong read every exec command line the same way: whatever the fast path accepts, kong
// parses to the same command; what kong refuses or answers with help, the fast path leaves to
// kong. The common forms must take the fast path.
func TestExecParsersAgree(t *testing.T) {
	cases := []struct {
		args []string
		fast bool // the fast path must accept it
	}{
		// The forms of the README and --help.
		{[]string{"vpn", "--", "echo", "hi"}, true},
		{[]string{"--", "vpn", "/bin/echo", "hi"}, true},
		{[]string{"--", "vpn", "--", "echo", "hi"}, true},
		{[]string{"vpn", "echo", "hi"}, true},
		{[]string{"vpn", "echo", "--", "hi"}, true},
		{[]string{"vpn", "echo", "-x", "--help"}, true},
		{[]string{"vpn", "--", "--", "hi"}, true},
		{[]string{"vpn", "--", "--help"}, true},
		{[]string{"vpn", "--"}, true},
		{[]string{"--user", "alice", "vpn", "--", "echo"}, true},
		{[]string{"-u", "alice", "vpn", "--", "echo"}, true},
		{[]string{"-ualice", "vpn", "--", "echo"}, true},
		{[]string{"-u=alice", "vpn", "--", "echo"}, true},
		{[]string{"--user=alice", "vpn", "--", "echo"}, true},
		{[]string{"--user=", "vpn", "--", "echo"}, true},
		{[]string{"--user", "", "vpn", "echo"}, true},
		{[]string{"--user", "a b", "vpn", "echo"}, true},
		{[]string{"--user", "-", "vpn", "echo"}, true},
		{[]string{"-u-x", "vpn", "echo"}, true},
		{[]string{"--user", "a", "--user", "b", "vpn", "echo"}, true},
		{[]string{"vpn", "--user", "alice", "--", "echo"}, true},
		{[]string{"vpn", "-u", "alice", "echo"}, true},
		{[]string{"vpn", "-ualice", "echo"}, true},
		{[]string{"vpn", "--user=alice", "echo"}, true},
		{[]string{"vpn", "-u", "a", "--", "-u", "b", "x"}, true},
		{[]string{"vpn", "echo", "--user", "x"}, true},
		{[]string{"--no-new-privs", "vpn", "echo"}, true},
		{[]string{"vpn", "--no-new-privs", "--", "echo"}, true},
		{[]string{"--no-new-privs=true", "vpn", "echo"}, true},
		{[]string{"--no-new-privs=yes", "vpn", "echo"}, true},
		{[]string{"--no-new-privs=1", "vpn", "echo"}, true},
		{[]string{"--no-new-privs", "--no-new-privs=false", "vpn", "echo"}, true},
		{[]string{"--no-new-privs", "-u", "alice", "--", "vpn", "--", "echo"}, true},
		{[]string{"--", "--user", "root", "vpn"}, true}, // NAME "--user": refused later, as a name
		{[]string{"--ssh-agent", "vpn", "--", "ssh", "host"}, true},
		{[]string{"vpn", "--ssh-agent", "ssh", "host"}, true},
		{[]string{"--ssh-agent", "-u", "alice", "vpn", "ssh"}, true},
		{[]string{"--ssh-agent=true", "vpn", "ssh"}, false},
		{[]string{"--", "-h", "x"}, true},
		{[]string{"-", "echo"}, true},
		{[]string{"vpn", "-", "--user", "x"}, true},
		{[]string{"-", "--", "x"}, true},

		// Left to kong: help, errors, and kong's own readings.
		{[]string{"--help"}, false},
		{[]string{"-h"}, false},
		{[]string{"vpn", "--help"}, false},
		{[]string{"vpn", "-h", "echo"}, false},
		{[]string{"-hu", "x", "vpn", "echo"}, false},
		{[]string{"--help=false", "vpn", "echo"}, false},
		{[]string{"--bogus", "vpn", "echo"}, false},
		{[]string{"--User", "x", "vpn", "echo"}, false},
		{[]string{"---", "vpn", "x"}, false},
		{[]string{"vpn", "--bogus", "echo"}, false},
		{[]string{"vpn", "--bogus=1", "echo"}, false}, // kong splits the word
		{[]string{"vpn", "-ab", "x"}, false},          // kong splits the word
		{[]string{"--user"}, false},
		{[]string{"vpn", "-u"}, false},
		{[]string{"--user", "--", "vpn", "echo"}, false},
		{[]string{"--user", "-x", "vpn", "echo"}, false},
		{[]string{"--no-new-privs=maybe", "vpn", "x"}, false},
		{[]string{"vpn", "--no-new-privs=", "x"}, false},
		{[]string{"vpn"}, false},
		{[]string{"--", "vpn"}, false},
		{[]string{"-u", "x", "vpn"}, false},
		{[]string{"--"}, false},
		{[]string{}, false},
		{[]string{"--version"}, false},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fast, ok := execcmd.Parse(tc.args)
			k, kerr, help := kongExec(t, tc.args)
			switch {
			case tc.fast && !ok:
				t.Errorf("the fast path leaves a common form to kong (kong: %+v, %v, help %v)", k, kerr, help)
			case ok && (kerr != nil || help):
				t.Errorf("the fast path accepts %+v; kong refuses (%v) or prints help (%v)", *fast, kerr, help)
			case ok:
				if d := cmp.Diff(k, *fast); d != "" {
					t.Errorf("the fast path and kong disagree (-kong +fast):\n%s", d)
				}
				if d := cmp.Diff(k.Argv(), fast.Argv()); d != "" {
					t.Errorf("the fast path and kong run different commands (-kong +fast):\n%s", d)
				}
			}
		})
	}
}

// A bare NAME may come as systemd writes an instance (wgns@.service passes %i): its \xNN escapes
// are undone; anything else is left as it is.
func TestUnescapeInstance(t *testing.T) {
	for in, want := range map[string]string{
		"se-got-wg-001":          "se-got-wg-001",
		`se\x2dgot\x2dwg\x2d001`: "se-got-wg-001",
		`s\x2dd\x2be\x3dp`:       "s-d+e=p",
		`trailing\x2`:            `trailing\x2`,
		`not\xzzhex`:             `not\xzzhex`,
		`back\slash`:             `back\slash`,
	} {
		if got := unescapeInstance(in); got != want {
			t.Errorf("unescapeInstance(%q) = %q, want %q", in, got, want)
		}
	}
}

// A command line that does not parse exits 2, but 125 for exec: a script must not take wgns's
// usage error for the command's own status 2.
func TestUsageStatus(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"exec", "--bogus", "vpn", "--", "true"}, 125},
		{[]string{"exec"}, 125},
		{[]string{"exec", "vpn"}, 125},
		{[]string{"exec", "--user"}, 125},
		{[]string{"up", "--bogus", "vpn"}, 2},
		{[]string{"down"}, 2},
		{[]string{"bogus", "exec"}, 2},
		{[]string{"--bogus"}, 2},
	} {
		var cli CLI
		p, err := newParser(&cli, kong.Writers(io.Discard, io.Discard), kong.Exit(func(int) {}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Parse(tc.args); err == nil {
			t.Errorf("%q parsed; want a usage error", tc.args)
			continue
		}
		if got := usageStatus(tc.args); got != tc.want {
			t.Errorf("%q: exit %d, want %d", tc.args, got, tc.want)
		}
	}
}
