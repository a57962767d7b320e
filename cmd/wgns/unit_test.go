package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/units"
	"github.com/wgns/wgns/wgns"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// golden compares got with testdata/NAME.golden, or rewrites that file with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs from %s (-want +got):\n%s", name, path, diff)
	}
}

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
			golden(t, "unit-"+st.golden, strings.ReplaceAll(text, dir, "DIR"))
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
	if want := "ExecStart=" + filepath.Join(wd, "bin/wgns") + " up --foreground %I\n"; !strings.Contains(out.String(), want) {
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

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"work.service":               "work.service",
		`backup@home\x2ddir.service`: `'backup@home\x2ddir.service'`,
		"it's":                       `'it'\''s'`,
		"foo@bar:baz_1.2+3=4.svc":    "foo@bar:baz_1.2+3=4.svc",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStatusLine(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	const never = time.Duration(math.MinInt64)
	peer := func(hsAgo time.Duration, rx, tx int64) wgns.PeerStatus {
		p := wgns.PeerStatus{RxBytes: rx, TxBytes: tx}
		if hsAgo != never {
			p.LastHandshake = now.Add(-hsAgo)
		}
		return p
	}
	tests := []struct {
		s    wgns.Status
		want string
	}{
		{wgns.Status{State: "ready", Mode: wgns.ModeUserspace, Peers: []wgns.PeerStatus{peer(never, 0, 148)}},
			"up (userspace WireGuard); no handshake yet; received 0 B, sent 148 B"},
		{wgns.Status{State: "ready", Mode: wgns.ModeKernel, Peers: []wgns.PeerStatus{peer(83*time.Second+400*time.Millisecond, 1536, 5<<20)}},
			"up (kernel WireGuard); latest handshake 1m23s ago; received 1.50 KiB, sent 5.00 MiB"},
		{wgns.Status{State: "ready", Mode: wgns.ModeUserspace, Peers: []wgns.PeerStatus{peer(never, 1, 1), peer(2*time.Second, 1023, 3<<30)}},
			"up (userspace WireGuard); latest handshake 2s ago (2 peers); received 1.00 KiB, sent 3.00 GiB"},
		{wgns.Status{State: "broken: the WireGuard process is gone", Mode: wgns.ModeUserspace},
			"broken: the WireGuard process is gone; no peers"},
		// A clock that stepped back shows 0s, never a negative age.
		{wgns.Status{State: "ready", Mode: wgns.ModeUserspace, Peers: []wgns.PeerStatus{peer(-time.Minute+1, 0, 0)}},
			"up (userspace WireGuard); latest handshake 0s ago; received 0 B, sent 0 B"},
	}
	for _, tt := range tests {
		if got := statusLine(&tt.s, now); got != tt.want {
			t.Errorf("statusLine(%+v)\n got %q\nwant %q", tt.s, got, tt.want)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for in, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.00 KiB", 1<<20 - 1: "1024.00 KiB", 1 << 20: "1.00 MiB",
		5 << 40: "5.00 TiB", 3 << 50: "3072.00 TiB",
	} {
		if got := humanBytes(in); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", in, got, want)
		}
	}
}

// reportStatus sends STATUS= through NOTIFY_SOCKET at once, quickly until a handshake shows,
// and stops when its context ends.
func TestReportStatus(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", sock)

	oldGet, oldFirst, oldEvery := getStatus, statusFirstInterval, statusInterval
	t.Cleanup(func() { getStatus, statusFirstInterval, statusInterval = oldGet, oldFirst, oldEvery })
	statusFirstInterval, statusInterval = time.Millisecond, time.Hour
	calls := 0
	getStatus = func(name string, brief bool) (*wgns.Status, error) {
		calls++
		switch {
		case name != "work" || brief:
			return nil, fmt.Errorf("getStatus(%q, %v): want the full status of work", name, brief)
		case calls == 1:
			return nil, fmt.Errorf("tunnel %q: %w", name, wgns.ErrNotUp)
		case calls == 2:
			return &wgns.Status{State: "ready", Mode: wgns.ModeUserspace, Peers: []wgns.PeerStatus{{}}}, nil
		}
		return &wgns.Status{State: "ready", Mode: wgns.ModeUserspace,
			Peers: []wgns.PeerStatus{{LastHandshake: time.Now(), RxBytes: 92, TxBytes: 148}}}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { reportStatus(ctx, units.NewNotifier(), "work"); close(done) }()

	want := []string{
		`STATUS=work: status unavailable: tunnel "work": not up`,
		"STATUS=up (userspace WireGuard); no handshake yet; received 0 B, sent 0 B",
		"STATUS=up (userspace WireGuard); latest handshake 0s ago; received 92 B, sent 148 B",
	}
	buf := make([]byte, 4096)
	for i, w := range want {
		ln.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := ln.ReadFromUnix(buf)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if got := string(buf[:n]); got != w {
			t.Errorf("message %d: %q, want %q", i, got, w)
		}
	}
	// After a handshake the pace is statusInterval (an hour here): nothing more comes soon.
	ln.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, _, err := ln.ReadFromUnix(buf); err == nil {
		t.Errorf("a message after the handshake was seen, before the interval: %q", buf[:n])
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("reportStatus did not return after its context ended")
	}

	// Without NOTIFY_SOCKET it returns at once and asks nothing.
	os.Unsetenv("NOTIFY_SOCKET")
	calls = 0
	reportStatus(context.Background(), units.NewNotifier(), "work")
	if calls != 0 {
		t.Errorf("reportStatus without a service manager read the status %d times", calls)
	}
}
