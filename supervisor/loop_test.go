package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wgns/wgns/wgns"
)

// fakeTunnel records what the loop asks of the tunnel, one line per call.
type fakeTunnel struct {
	events       chan string // each call, as it happens
	dead         chan struct{}
	named        bool
	recoverErrs  []error // the results of successive Recover calls (nil after the list)
	reresolveOut []string
	downErr      error
	uplinkMoved  bool
	failoverOut  []failoverResult // the results of successive Failover calls (failover_test.go)
}

func newFakeTunnel() *fakeTunnel {
	return &fakeTunnel{events: make(chan string, 100), dead: make(chan struct{})}
}

func (f *fakeTunnel) Mode() wgns.Mode       { return wgns.ModeUserspace }
func (f *fakeTunnel) Dead() <-chan struct{} { return f.dead }
func (f *fakeTunnel) NamedEndpoints() bool  { return f.named }
func (f *fakeTunnel) Down() error           { f.events <- "down"; return f.downErr }
func (f *fakeTunnel) kill()                 { close(f.dead) }
func (f *fakeTunnel) Recover() ([]string, error) {
	var err error
	if len(f.recoverErrs) > 0 {
		err, f.recoverErrs = f.recoverErrs[0], f.recoverErrs[1:]
	}
	if err == nil {
		f.dead = make(chan struct{}) // a new device
	}
	f.events <- fmt.Sprintf("recover -> %v", err)
	return []string{"create WireGuard interface work"}, err
}

func (f *fakeTunnel) UplinkChanged() bool {
	moved := f.uplinkMoved
	f.events <- fmt.Sprintf("uplink changed? %v", moved)
	return moved
}

func (f *fakeTunnel) Rebind(context.Context) ([]string, error) {
	f.events <- "rebind"
	return []string{"endpoint 203.0.113.1:51820"}, nil
}

func (f *fakeTunnel) Rehandshake(context.Context) ([]string, error) {
	f.events <- "rehandshake"
	return []string{"new handshake with K"}, nil
}

func (f *fakeTunnel) Reresolve(context.Context) ([]string, error) {
	f.events <- "reresolve"
	return f.reresolveOut, nil
}

// fakeClock hands out timers the test fires by hand, and says what it was asked for.
type fakeClock struct {
	asked  chan string
	timers chan chan time.Time
	tick   chan time.Time
	mu     sync.Mutex
	t      time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func newFakeClock() *fakeClock {
	return &fakeClock{asked: make(chan string, 100), timers: make(chan chan time.Time, 100), tick: make(chan time.Time)}
}

func (c *fakeClock) after(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.asked <- "after " + d.String()
	c.timers <- ch
	return ch
}

func (c *fakeClock) ticker(d time.Duration) (<-chan time.Time, func()) {
	c.asked <- "ticker " + d.String()
	return c.tick, func() { c.asked <- "ticker stopped" }
}

type fakeNotifier struct{ lines chan string }

func (n *fakeNotifier) Status(s string) error { n.lines <- "STATUS=" + s; return nil }
func (n *fakeNotifier) Stopping() error       { n.lines <- "STOPPING=1"; return nil }

type harness struct {
	t      *testing.T
	tun    *fakeTunnel
	clk    *fakeClock
	n      *fakeNotifier
	sigs   chan os.Signal
	logs   chan string
	done   chan error
	events chan eventKind
}

func start(t *testing.T, tun *fakeTunnel) *harness {
	h := &harness{t: t, tun: tun, clk: newFakeClock(), n: &fakeNotifier{lines: make(chan string, 100)},
		sigs: make(chan os.Signal, 1), logs: make(chan string, 100), done: make(chan error, 1), events: make(chan eventKind)}
	l := &loop{name: "work", t: tun, clk: h.clk, n: h.n, sigs: h.sigs, events: h.events, reresolveEvery: 15 * time.Second,
		logf: func(format string, args ...any) { h.logs <- fmt.Sprintf(format, args...) }}
	go func() { h.done <- l.run() }()
	return h
}

// expect waits for the next value on c and compares it with want.
func expect(t *testing.T, what string, c <-chan string, want string) {
	t.Helper()
	select {
	case got := <-c:
		if got != want {
			t.Fatalf("%s: got %q, want %q", what, got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: nothing came, want %q", what, want)
	}
}

func (h *harness) stop(sig os.Signal) error {
	h.t.Helper()
	h.sigs <- sig
	expect(h.t, "notifier", h.n.lines, "STOPPING=1")
	expect(h.t, "tunnel", h.tun.events, "down")
	select {
	case err := <-h.done:
		return err
	case <-time.After(10 * time.Second):
		h.t.Fatal("the loop did not return after a signal")
		return nil
	}
}

func TestLoopSignalTearsDown(t *testing.T) {
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		h := start(t, newFakeTunnel())
		if err := h.stop(sig); err != nil {
			t.Errorf("%v: %v", sig, err)
		}
	}
}

func TestLoopTeardownFailureIsReported(t *testing.T) {
	tun := newFakeTunnel()
	tun.downErr = errors.New("deleting namespace \"work\": device busy")
	h := start(t, tun)
	err := h.stop(syscall.SIGTERM)
	if err == nil || err.Error() != `tearing down on terminated: deleting namespace "work": device busy` {
		t.Errorf("got %v", err)
	}
}

// A device that stops is made again at once; failed attempts are retried after 1 s, 2 s, ...
// at most 30 s apart, and every attempt is logged.
func TestLoopRecoversWithBackoff(t *testing.T) {
	tun := newFakeTunnel()
	fail := errors.New("creating interface \"work\": no buffer space")
	for i := 0; i < 32; i++ {
		tun.recoverErrs = append(tun.recoverErrs, fail)
	}
	h := start(t, tun)
	tun.kill()
	expect(t, "notifier", h.n.lines, "STATUS=work: WireGuard device stopped; recreating it")
	for attempt := 1; attempt <= 32; attempt++ {
		expect(t, "tunnel", tun.events, "recover -> "+fail.Error())
		pause := min(time.Duration(attempt)*time.Second, 30*time.Second)
		expect(t, "log", h.logs, fmt.Sprintf("wgns: work: recovering the WireGuard device (attempt %d, next in %s): %v", attempt, pause, fail))
		expect(t, "clock", h.clk.asked, "after "+pause.String())
		(<-h.clk.timers) <- time.Time{}
	}
	expect(t, "tunnel", tun.events, "recover -> <nil>")
	expect(t, "log", h.logs, "wgns: work: WireGuard device stopped; recovered: create WireGuard interface work")
	expect(t, "notifier", h.n.lines, "STATUS=work is up (userspace WireGuard), recovered")
	// The new device is watched: it can stop and be recovered again.
	tun.kill()
	expect(t, "notifier", h.n.lines, "STATUS=work: WireGuard device stopped; recreating it")
	expect(t, "tunnel", tun.events, "recover -> <nil>")
	expect(t, "log", h.logs, "wgns: work: WireGuard device stopped; recovered: create WireGuard interface work")
	expect(t, "notifier", h.n.lines, "STATUS=work is up (userspace WireGuard), recovered")
	if err := h.stop(syscall.SIGTERM); err != nil {
		t.Error(err)
	}
}

// A signal while recovery waits to try again tears down at once.
func TestLoopSignalDuringBackoff(t *testing.T) {
	tun := newFakeTunnel()
	tun.recoverErrs = []error{errors.New("no")}
	h := start(t, tun)
	tun.kill()
	expect(t, "notifier", h.n.lines, "STATUS=work: WireGuard device stopped; recreating it")
	expect(t, "tunnel", tun.events, "recover -> no")
	expect(t, "clock", h.clk.asked, "after 1s")
	if err := h.stop(syscall.SIGTERM); err != nil {
		t.Error(err)
	}
}

// Endpoints are checked on a ticker only when one is a host name.
func TestLoopReresolvesOnlyNamedEndpoints(t *testing.T) {
	h := start(t, newFakeTunnel())
	if err := h.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-h.clk.asked:
		t.Errorf("with literal endpoints the loop asked the clock for %q", a)
	default:
	}

	tun := newFakeTunnel()
	tun.named = true
	tun.reresolveOut = []string{"vpn.example.net:51820 -> 203.0.113.9:51820"}
	h = start(t, tun)
	expect(t, "clock", h.clk.asked, "ticker 15s")
	h.clk.tick <- time.Time{}
	expect(t, "tunnel", tun.events, "reresolve")
	expect(t, "log", h.logs, "wgns: work: endpoint moved: vpn.example.net:51820 -> 203.0.113.9:51820")
	if err := h.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	expect(t, "clock", h.clk.asked, "ticker stopped")
}

// A change of the host's network that moved the way to the peers points them at their
// endpoints afresh; one that did not (another tunnel's interface) changes nothing.
func TestLoopNetworkChange(t *testing.T) {
	tun := newFakeTunnel()
	h := start(t, tun)
	h.events <- networkChanged
	expect(t, "tunnel", tun.events, "uplink changed? false")
	tun.uplinkMoved = true
	h.events <- networkChanged
	expect(t, "tunnel", tun.events, "uplink changed? true")
	expect(t, "tunnel", tun.events, "rebind")
	expect(t, "log", h.logs, "wgns: work: the host's network changed: endpoint 203.0.113.1:51820")
	if err := h.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

// A resume starts new sessions at once; resumes closer together than resumeEvery (a flood of
// signals) are ignored.
func TestLoopResume(t *testing.T) {
	tun := newFakeTunnel()
	h := start(t, tun)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h.clk.set(t0)
	h.events <- resumed
	expect(t, "tunnel", tun.events, "rehandshake")
	expect(t, "log", h.logs, "wgns: work: resumed from sleep: new handshake with K")
	h.clk.set(t0.Add(resumeEvery - time.Millisecond))
	h.events <- resumed
	h.events <- networkChanged // a no-op that comes after the ignored resume was handled
	expect(t, "tunnel", tun.events, "uplink changed? false")
	h.clk.set(t0.Add(resumeEvery))
	h.events <- resumed
	expect(t, "tunnel", tun.events, "rehandshake")
	if err := h.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

func TestReadinessProtocol(t *testing.T) {
	for _, tt := range []struct {
		name  string
		send  func(r *reporter)
		want  outcome
		noEnd bool
	}{
		{"ready after warnings", func(r *reporter) { r.warn("a.conf:3: Table means nothing"); r.warn("two\nlines"); r.ready() },
			outcome{warnings: []string{"a.conf:3: Table means nothing", "two\nlines"}, ready: true}, false},
		{"error", func(r *reporter) { r.fail(errors.New("creating interface \"work\": file exists")) },
			outcome{err: "creating interface \"work\": file exists"}, false},
		{"died without a word", func(r *reporter) { r.warn("w"); r.close() }, outcome{warnings: []string{"w"}}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			// The reporter takes over a descriptor of its own, as the supervisor's fd 3 is:
			// pw's would be closed by pw's finalizer.
			fd, err := syscall.Dup(int(pw.Fd()))
			if err != nil {
				t.Fatal(err)
			}
			pw.Close()
			r := newReporter(fd)
			go tt.send(r)
			got, err := readOutcome(pr)
			if (err != nil) != tt.noEnd || (err != nil && !errors.Is(err, errNoOutcome)) {
				t.Errorf("readOutcome error %v", err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	// Without a pipe (systemd started the supervisor) the reporter says nothing and does not fail.
	r := newReporter(0)
	if r.piped() {
		t.Error("a reporter without a pipe says it has one")
	}
	r.warn("x")
	r.ready()
	if !strings.Contains(fmt.Sprint(readOutcome(strings.NewReader("not json\n{\"ready\":true}\n"))), "true") {
		t.Error("a line that is not a message stopped the reader")
	}
}
