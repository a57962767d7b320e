package supervisor

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wgns/wgns/internal/syncbuf"
	"github.com/wgns/wgns/wgns"
	"github.com/wgns/wgns/wgns/config"
)

// heldTunnel is a held tunnel for run: the loop's fake, with a config and failover groups.
type heldTunnel struct {
	*fakeTunnel
	*fakeGroups
	cfg *config.Config
}

func (h *heldTunnel) Config() *config.Config { return h.cfg }

func (h *heldTunnel) OpenEcho() (*wgns.Echo, error) {
	h.events <- "open echo: fails"
	return nil, errors.New("no echo here")
}

// fakeDuty is the ports' duty, recording what run asks of it.
type fakeDuty struct {
	acts     chan<- string
	startErr error
}

func (d *fakeDuty) start() error {
	if d.startErr != nil {
		d.acts <- "start ports: fails"
		return d.startErr
	}
	d.acts <- "start ports"
	return nil
}
func (d *fakeDuty) peerChanged() { d.acts <- "ports: peer changed" }
func (d *fakeDuty) stop()        { d.acts <- "stop ports" }

// runWorld is a fake system for run: each act it is asked for is a line on acts (the tunnel's
// and the ports' too), in order.
type runWorld struct {
	t        *testing.T
	acts     chan string
	tun      *heldTunnel
	sigs     chan<- os.Signal
	changed  func()
	stderr   syncbuf.Buffer
	readErr  error // reading the config fails
	portsErr error // binding the published ports fails
	upErr    error // making the tunnel fails
	duty     fakeDuty
	sigsSet  chan struct{}
	watchErr error
}

func newRunWorld(t *testing.T) *runWorld {
	w := &runWorld{t: t, acts: make(chan string, 100), sigsSet: make(chan struct{})}
	tun := newFakeTunnel()
	tun.events = w.acts
	w.tun = &heldTunnel{fakeTunnel: tun, fakeGroups: &fakeGroups{records: make(chan string, 100)}, cfg: &config.Config{}}
	w.duty.acts = w.acts
	return w
}

func (w *runWorld) system() system {
	return system{
		bringUp: func(o RunOptions, warn func(string), before func(*config.Config) error) (held, error) {
			if w.readErr != nil {
				w.acts <- "read config: fails"
				return nil, w.readErr
			}
			w.acts <- "read config"
			warn("a line wgns ignores")
			if err := before(w.tun.cfg); err != nil {
				return nil, err
			}
			if w.upErr != nil {
				w.acts <- "make tunnel: fails"
				return nil, w.upErr
			}
			w.acts <- "make tunnel"
			return w.tun, nil
		},
		listenPorts: func(name string, cfg *config.Config, logf func(string, ...any)) (duty, error) {
			if w.portsErr != nil {
				w.acts <- "listen ports: fails"
				return nil, w.portsErr
			}
			w.acts <- "listen ports"
			return &w.duty, nil
		},
		signals: func(c chan<- os.Signal) func() {
			w.sigs = c
			close(w.sigsSet)
			return func() {}
		},
		watchNetwork: func(ctx context.Context, settle time.Duration, changed func()) error {
			w.changed = changed
			if w.watchErr != nil {
				w.acts <- "watch network: fails"
				return w.watchErr
			}
			w.acts <- "watch network"
			return nil
		},
		watchSleep: func(ctx context.Context, events chan<- eventKind, logf func(string, ...any)) {},
		stderr:     &w.stderr,
	}
}

// start runs run on the world with a readiness pipe, and returns what the pipe said and a
// channel of run's result.
func (w *runWorld) start(o RunOptions) (outcome, <-chan error) {
	w.t.Helper()
	r, pw, err := os.Pipe()
	if err != nil {
		w.t.Fatal(err)
	}
	defer r.Close()
	fd, err := syscall.Dup(int(pw.Fd()))
	if err != nil {
		w.t.Fatal(err)
	}
	pw.Close()
	o.ReadyFD = fd
	done := make(chan error, 1)
	go func() { done <- run(o, w.system()) }()
	out, err := readOutcome(r)
	if err != nil {
		w.t.Fatalf("the readiness pipe: %v", err)
	}
	return out, done
}

// wantActs reads the acts that must come, in order, then checks that no other came.
func (w *runWorld) wantActs(want ...string) {
	w.t.Helper()
	for _, a := range want {
		expect(w.t, "act", w.acts, a)
	}
	select {
	case a := <-w.acts:
		w.t.Fatalf("an act not expected: %q", a)
	default:
	}
}

func result(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return")
		return nil
	}
}

// A supervisor that cannot bring its tunnel up says why on the readiness pipe, returns the
// same error, and undoes what it made: the ports it bound, and the tunnel when serving the
// ports fails after it was made.
func TestRunFailuresUndoWhatWasMade(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     func(w *runWorld)
		wantErr string
		acts    []string
	}{
		{"the config cannot be read", func(w *runWorld) { w.readErr = errors.New("/etc/wgns/work.conf:3: invalid PrivateKey") },
			"/etc/wgns/work.conf:3: invalid PrivateKey", []string{"read config: fails"}},
		{"a published port is in use", func(w *runWorld) { w.portsErr = errors.New("/etc/wgns/work.conf:9: Publish: port 8080 is in use") },
			"/etc/wgns/work.conf:9: Publish: port 8080 is in use", []string{"read config", "listen ports: fails"}},
		{"the tunnel cannot be made", func(w *runWorld) { w.upErr = errors.New("creating the namespace: file exists") },
			"creating the namespace: file exists", []string{"read config", "listen ports", "make tunnel: fails", "stop ports"}},
		{"the ports cannot be served", func(w *runWorld) {
			w.duty.startErr = errors.New("opening the namespace: gone")
			w.tun.downErr = errors.New("busy")
		}, "opening the namespace: gone (and tearing down: busy)",
			[]string{"read config", "listen ports", "make tunnel", "start ports: fails", "stop ports", "down"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newRunWorld(t)
			tc.set(w)
			out, done := w.start(RunOptions{Name: "work"})
			err := result(t, done)
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("run: %v, want %q", err, tc.wantErr)
			}
			if out.ready || out.err != tc.wantErr {
				t.Errorf("the pipe said ready=%v, error %q; want the error %q", out.ready, out.err, tc.wantErr)
			}
			w.wantActs(tc.acts...)
		})
	}
}

// A supervisor that brought its tunnel up says so (its warnings first) on the pipe and to
// systemd, acts on a change of the host's network, and on SIGTERM stops its ports and the
// status reports before STOPPING=1, then tears the tunnel down and returns nil.
func TestRunSupervisesUntilSignalled(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	defer func(g func(string, bool) (*wgns.Status, error)) { getStatus = g }(getStatus)
	getStatus = func(string, bool) (*wgns.Status, error) { return nil, errors.New("reading the state: gone") }
	notified := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			notified <- string(buf[:n])
		}
	}()

	w := newRunWorld(t)
	w.tun.uplinkMoved = true
	w.watchErr = errors.New("subscribing to routes: not permitted")
	out, done := w.start(RunOptions{Name: "work"})
	if !out.ready || len(out.warnings) != 1 || out.warnings[0] != "a line wgns ignores" {
		t.Fatalf("the pipe said %+v; want ready after the warning", out)
	}
	expect(t, "systemd", notified, "READY=1")
	expect(t, "systemd", notified, "STATUS=work: status unavailable: reading the state: gone")
	w.wantActs("read config", "listen ports", "make tunnel", "start ports", "uplink changed? true", "watch network: fails")

	w.changed() // the host's network changed
	expect(t, "act", w.acts, "uplink changed? true")
	expect(t, "act", w.acts, "rebind")

	<-w.sigsSet
	w.sigs <- syscall.SIGTERM
	if err := result(t, done); err != nil {
		t.Fatalf("run after SIGTERM: %v", err)
	}
	w.wantActs("stop ports", "down")
	for {
		select {
		case m := <-notified:
			if m == "STOPPING=1" {
				goto stopped
			}
			if !strings.HasPrefix(m, "STATUS=") {
				t.Fatalf("systemd was told %q before STOPPING=1", m)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("systemd was not told STOPPING=1")
		}
	}
stopped:
	select {
	case m := <-notified:
		t.Errorf("systemd was told %q after STOPPING=1", m)
	default:
	}
	logs := w.stderr.String()
	for _, want := range []string{
		"wgns: warning: a line wgns ignores\n",
		"wgns: work: subscribing to routes: not permitted (a new uplink will be noticed by WireGuard's own timers only)\n",
		"wgns: work: the host's network changed: endpoint 203.0.113.1:51820\n",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}
}

// A tunnel with failover groups has its prober started before ready: the groups are said in
// the log and recorded, and the prober stops before the tunnel goes down.
func TestRunStartsTheFailoverProber(t *testing.T) {
	w := newRunWorld(t)
	w.tun.cfg = &config.Config{
		Peers:  []config.Peer{{PublicKey: keyA}, {PublicKey: keyB}},
		Groups: []config.Group{{Peers: []int{0, 1}, Check: check}},
	}
	w.tun.cfg.Namespace.FailoverTimeout = 2 * time.Second
	w.tun.views = []wgns.GroupView{{Active: 0, Peers: make([]wgns.PeerView, 2)}}
	out, done := w.start(RunOptions{Name: "work"})
	if !out.ready {
		t.Fatalf("the pipe said %+v; want ready", out)
	}
	expect(t, "record", w.tun.records, "group 1: 0 failovers")
	<-w.sigsSet
	w.sigs <- syscall.SIGTERM
	if err := result(t, done); err != nil {
		t.Fatalf("run after SIGTERM: %v", err)
	}
	logs := named(w.stderr.String())
	want := "wgns: work: failover group 1: peers A, B; probing 192.0.2.1 every 500ms, moving on after 2s without an answer\n"
	if !strings.Contains(logs, want) {
		t.Errorf("the log lacks %q:\n%s", want, logs)
	}
}
