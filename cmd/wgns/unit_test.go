package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wgns/wgns/internal/golden"
	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/units"
)

// fakeSystemd replaces the daemon-reload and the unit search path for one test, and counts
// reloads.
type fakeSystemd struct {
	err     error
	reloads int
}

func useFakeSystemd(t *testing.T, err error) *fakeSystemd {
	t.Helper()
	f := &fakeSystemd{err: err}
	oldReload, oldPath := reloadSystemd, unitSearchPath
	reloadSystemd = func(context.Context) error { f.reloads++; return f.err }
	unitSearchPath = nil
	t.Cleanup(func() { reloadSystemd, unitSearchPath = oldReload, oldPath })
	return f
}

var errNoSystemd = fmt.Errorf("reloading systemd units (daemon-reload): no /run/systemd/system: %w", units.ErrNoSystemd)

// TestUnitCommands runs install, remove and show in sequence on one directory, as a user would,
// and compares what each prints with golden text (the directory shows as DIR).
func TestUnitCommands(t *testing.T) {
	dir := t.TempDir()
	steps := []struct {
		golden    string
		cmd       func(out, errOut *bytes.Buffer) error
		reloadErr error
		setup     func()
		reloads   int
		wantErr   string
	}{
		{
			golden:    "install-no-systemd",
			cmd:       (&UnitInstallCmd{Style: "path", Dir: dir, Name: "work", Unit: "transmission-daemon"}).runBuf,
			reloadErr: errNoSystemd, reloads: 1,
		},
		{
			golden:    "install-unchanged",
			cmd:       (&UnitInstallCmd{Style: "path", Dir: dir, Name: "work", Unit: "transmission-daemon.service"}).runBuf,
			reloadErr: errNoSystemd, reloads: 1,
			setup: func() {
				if err := os.WriteFile(filepath.Join(dir, units.TemplateName), []byte(units.Template("")), 0o644); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			golden: "install-joins-reloaded",
			cmd:    (&UnitInstallCmd{Style: "joins", Dir: dir, Name: "my-vpn", Unit: `backup@home\x2ddir.service`}).runBuf,
			// wgns@.service is there from the step before; wgns-netns@.service is not.
			reloads: 1,
		},
		{
			golden:    "install-reload-fails",
			cmd:       (&UnitInstallCmd{Style: "joins", Dir: dir, Name: "my-vpn", Unit: `backup@home\x2ddir.service`}).runBuf,
			reloadErr: errors.New("reloading systemd units (daemon-reload): connecting to systemd: permission denied"),
			reloads:   1,
			wantErr:   "reloading systemd units (daemon-reload): connecting to systemd: permission denied",
		},
		{
			golden: "show",
			cmd:    (&UnitShowCmd{Dir: dir, Name: "work", Unit: "transmission-daemon"}).runBuf,
		},
		{
			golden:  "remove",
			cmd:     (&UnitRemoveCmd{Dir: dir, Name: "work", Unit: "transmission-daemon"}).runBuf,
			reloads: 1,
		},
		{
			golden: "remove-again",
			cmd:    (&UnitRemoveCmd{Dir: dir, Name: "work", Unit: "transmission-daemon"}).runBuf,
		},
		{
			golden:  "show-missing",
			cmd:     (&UnitShowCmd{Dir: dir, Name: "work", Unit: "transmission-daemon"}).runBuf,
			wantErr: "showing drop-in for transmission-daemon.service: tunnel \"work\" has none at DIR/transmission-daemon.service.d/50-wgns-work.conf: file does not exist",
		},
	}
	for _, st := range steps {
		t.Run(st.golden, func(t *testing.T) {
			f := useFakeSystemd(t, st.reloadErr)
			if st.setup != nil {
				st.setup()
			}
			var out, errOut bytes.Buffer
			err := st.cmd(&out, &errOut)
			gotErr := ""
			if err != nil {
				gotErr = strings.ReplaceAll(err.Error(), dir, "DIR")
			}
			if gotErr != st.wantErr {
				t.Errorf("error %q, want %q", gotErr, st.wantErr)
			}
			if f.reloads != st.reloads {
				t.Errorf("%d daemon-reloads, want %d", f.reloads, st.reloads)
			}
			text := "-- stdout --\n" + out.String() + "-- stderr --\n" + errOut.String()
			golden.Check(t, "unit-"+st.golden, strings.ReplaceAll(text, dir, "DIR"))
		})
	}
	// What is left: the joins drop-in only, as the units package writes it.
	want, err := units.DropIn("my-vpn", `backup@home\x2ddir.service`, units.StyleJoins)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(units.DropInPath(dir, "my-vpn", `backup@home\x2ddir.service`))
	if err != nil || string(got) != want {
		t.Errorf("joins drop-in on disk: %v\n%s\nwant:\n%s", err, got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "transmission-daemon.service.d")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("transmission-daemon.service.d after remove: %v, want it gone", err)
	}
}

func (c *UnitInstallCmd) runBuf(out, errOut *bytes.Buffer) error { return c.run(out, errOut) }
func (c *UnitRemoveCmd) runBuf(out, errOut *bytes.Buffer) error  { return c.run(out, errOut) }
func (c *UnitShowCmd) runBuf(out, _ *bytes.Buffer) error         { return c.run(out) }

// Refused input touches nothing and reloads nothing.
func TestUnitRefusals(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		what    string
		cmd     func(out, errOut *bytes.Buffer) error
		wantIs  error
		wantMsg string
	}{
		{"name too long", (&UnitInstallCmd{Style: "path", Dir: dir, Name: "sixteen-chars-xx", Unit: "a.service"}).runBuf,
			nsmgr.ErrInvalidName, "sixteen-chars-xx"},
		{"name with a slash", (&UnitInstallCmd{Style: "path", Dir: dir, Name: "a/b", Unit: "a.service"}).runBuf,
			nsmgr.ErrInvalidName, "a/b"},
		{"not a service", (&UnitInstallCmd{Style: "path", Dir: dir, Name: "work", Unit: "sshd.socket"}).runBuf,
			units.ErrInvalidUnit, "not a service"},
		{"wgns's own unit", (&UnitInstallCmd{Style: "path", Dir: dir, Name: "work", Unit: "wgns@work"}).runBuf,
			units.ErrInvalidUnit, "wgns itself"},
		{"unknown style", (&UnitInstallCmd{Style: "ns", Dir: dir, Name: "work", Unit: "a"}).runBuf,
			nil, `unknown drop-in style "ns"`},
		{"remove, bad unit", (&UnitRemoveCmd{Dir: dir, Name: "work", Unit: "a b"}).runBuf,
			units.ErrInvalidUnit, "a b"},
		{"show, bad name", (&UnitShowCmd{Dir: dir, Name: "..", Unit: "a"}).runBuf,
			nsmgr.ErrInvalidName, ".."},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			f := useFakeSystemd(t, nil)
			var out, errOut bytes.Buffer
			err := tt.cmd(&out, &errOut)
			if err == nil || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error %v, want one wrapping %v and naming %q", err, tt.wantIs, tt.wantMsg)
			}
			if out.Len()+errOut.Len() != 0 || f.reloads != 0 {
				t.Errorf("printed %q %q and reloaded %d times", out.String(), errOut.String(), f.reloads)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("%s holds %d entries after a refusal", dir, len(ents))
			}
		})
	}
}

func TestUnitTemplateCmd(t *testing.T) {
	tests := []struct {
		cmd  UnitTemplateCmd
		want string
	}{
		{UnitTemplateCmd{File: units.TemplateName}, units.Template("")},
		{UnitTemplateCmd{File: units.TemplateName, Binary: "/opt/wgns/bin/wgns"}, units.Template("/opt/wgns/bin/wgns")},
		{UnitTemplateCmd{File: units.NetnsTemplateName, Binary: "/opt/wgns/bin/wgns"}, units.NetnsTemplate()},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if err := tt.cmd.run(&out); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, out.String()); diff != "" {
			t.Errorf("%+v (-want +got):\n%s", tt.cmd, diff)
		}
	}
	// A relative --binary is made absolute: systemd wants an absolute ExecStart=.
	var out bytes.Buffer
	if err := (&UnitTemplateCmd{File: units.TemplateName, Binary: "bin/wgns"}).run(&out); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if want := "ExecStart=" + filepath.Join(wd, "bin/wgns") + " up --foreground %i\n"; !strings.Contains(out.String(), want) {
		t.Errorf("relative --binary: no line %q in\n%s", want, out.String())
	}
}

func TestServiceName(t *testing.T) {
	for in, want := range map[string]string{
		"transmission-daemon":         "transmission-daemon.service",
		"transmission-daemon.service": "transmission-daemon.service",
		"foo@bar":                     "foo@bar.service",
		"foo@.service":                "foo@.service",
		"sshd.socket":                 "sshd.socket",
		"backup.timer":                "backup.timer",
		"a.b":                         "a.b.service",
		"":                            "",
	} {
		if got := serviceName(in); got != want {
			t.Errorf("serviceName(%q) = %q, want %q", in, got, want)
		}
	}
}
