package ports

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wgns/wgns/firewall"
)

// fakeForwardEnv is a Forwarder's world: the fake gateway, and every act recorded as a line.
// Run's waits go through waits (the test reads how long Run wants to wait, then lets it go on
// with go on, advancing the fake time).
type fakeForwardEnv struct {
	gw    *fakeGateway
	mu    sync.Mutex
	acts  []string
	now_  time.Time
	waits chan time.Duration
	goOn  chan time.Time
	fwErr error
}

func newForwardEnv(gw *fakeGateway) *fakeForwardEnv {
	return &fakeForwardEnv{gw: gw, now_: time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC),
		waits: make(chan time.Duration), goOn: make(chan time.Time)}
}

func (e *fakeForwardEnv) act(format string, args ...any) {
	e.mu.Lock()
	e.acts = append(e.acts, fmt.Sprintf(format, args...))
	e.mu.Unlock()
}

// taken returns the acts since the last call, with the gateway's requests among them.
func (e *fakeForwardEnv) taken() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.acts
	e.acts = nil
	return out
}

func (e *fakeForwardEnv) dial(gw netip.AddrPort) (gatewayConn, error) {
	e.act("dial %s", gw)
	return &loggedConn{e, e.gw}, nil
}

// loggedConn records the gateway's requests among the acts.
type loggedConn struct {
	e *fakeForwardEnv
	*fakeGateway
}

func (c *loggedConn) Write(b []byte) (int, error) {
	n, err := c.fakeGateway.Write(b)
	for _, r := range c.fakeGateway.log() {
		c.e.act("ask %s", r)
	}
	return n, err
}

func (e *fakeForwardEnv) open(ports []firewall.Port) error {
	var ps []string
	for _, p := range ports {
		ps = append(ps, p.String())
	}
	if len(ps) == 0 {
		ps = []string{"(none)"}
	}
	e.act("firewall %s", strings.Join(ps, " "))
	return e.fwErr
}

func (e *fakeForwardEnv) granted(port uint16) { e.act("granted %d", port) }

func (e *fakeForwardEnv) record(st ForwardState) {
	s := fmt.Sprintf("record port=%d", st.Port)
	if st.UDPPort != 0 {
		s += fmt.Sprintf(" udp=%d", st.UDPPort)
	}
	if st.External != 0 {
		s += fmt.Sprintf(" external=%d", st.External)
	}
	if !st.Expires.IsZero() {
		s += " expires=" + st.Expires.Format("15:04:05")
	}
	if st.Error != "" {
		s += fmt.Sprintf(" error=%q since=%s", st.Error, st.Since.Format("15:04:05"))
	}
	e.act("%s", s)
}

func (e *fakeForwardEnv) now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now_
}

func (e *fakeForwardEnv) after(d time.Duration) <-chan time.Time {
	e.waits <- d
	return e.goOn
}

// forwarding runs a Forwarder against env until the test ends.
type forwarding struct {
	t    *testing.T
	f    *Forwarder
	env  *fakeForwardEnv
	stop func()
	wait time.Duration // the wait Run asked for last
	log  *logs
}

func startForwarding(t *testing.T, gw *fakeGateway, last uint16) *forwarding {
	t.Helper()
	env := newForwardEnv(gw)
	lg := &logs{}
	f := newForwarder(netip.MustParseAddrPort("10.2.0.1:5351"), env, time.Minute, last, lg.logf)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	fw := &forwarding{t: t, f: f, env: env, stop: func() { cancel(); <-done }, log: lg}
	t.Cleanup(func() {
		cancel()
		// Run may be waiting to say how long it waits.
		select {
		case <-env.waits:
		case <-done:
		}
		<-done
	})
	return fw
}

// expect waits until Run waits, and checks the acts so far and how long it waits.
func (fw *forwarding) expect(wantActs []string, wantWait time.Duration) {
	fw.t.Helper()
	var d time.Duration
	select {
	case d = <-fw.env.waits:
	case <-time.After(10 * time.Second):
		fw.t.Fatalf("Run did not come to wait; acts so far:\n%s", strings.Join(fw.env.taken(), "\n"))
	}
	if diff := cmp.Diff(wantActs, fw.env.taken()); diff != "" {
		fw.t.Errorf("acts (-want +got):\n%s", diff)
	}
	if d != wantWait {
		fw.t.Errorf("Run waits %s, want %s", d, wantWait)
	}
	fw.wait = d
}

// goOn lets Run go on after the wait it asked for, advancing the fake time by it.
func (fw *forwarding) goOn() {
	fw.env.mu.Lock()
	fw.env.now_ = fw.env.now_.Add(fw.wait)
	now := fw.env.now_
	fw.env.mu.Unlock()
	fw.env.goOn <- now
}

func TestForwarderGrantsRenewsAndMoves(t *testing.T) {
	gw := newGateway("std")
	fw := startForwarding(t, gw, 40000)
	// Granted: the firewall opens the port for both protocols, the port is announced.
	fw.expect([]string{
		"record port=0",
		"dial 10.2.0.1:5351", "ask tcp 40000->40000 60s", "ask udp 40000->40000 60s",
		"firewall 40000/tcp 40000/udp", "granted 40000",
		"record port=40000 expires=03:01:00",
	}, 30*time.Second)
	fw.goOn()
	// Renewed at half the lifetime: the firewall is set again, nothing is announced.
	fw.expect([]string{
		"dial 10.2.0.1:5351", "ask tcp 40000->40000 60s", "ask udp 40000->40000 60s",
		"firewall 40000/tcp 40000/udp",
		"record port=40000 expires=03:01:30",
	}, 30*time.Second)
	// The gateway restarts and will not hand out 40000 again: it maps 40001 to 40000, which is
	// given back for 40001 -> 40001. The firewall moves to the new port in one act.
	gw.set(func(g *fakeGateway) { g.maps = map[string]uint16{}; g.deny[40000] = true; g.epoch = 3 })
	fw.goOn()
	fw.expect([]string{
		"dial 10.2.0.1:5351",
		"ask tcp 40000->40000 60s", "ask tcp 0->40000 0s", "ask tcp 40001->40001 60s",
		"ask udp 40001->40001 60s",
		"firewall 40001/tcp 40001/udp", "granted 40001",
		"record port=40001 expires=03:02:00",
	}, 30*time.Second)
	if want := "10.2.0.1 restarted (its epoch went from 1000 to 3)"; !strings.Contains(fw.log.text(), want) {
		t.Errorf("log lacks %q:\n%s", want, fw.log.text())
	}
	fw.f.Reask() // a failover: Reask asks again at once, without the wait
	fw.expect([]string{
		"dial 10.2.0.1:5351", "ask tcp 40001->40001 60s", "ask udp 40001->40001 60s",
		"firewall 40001/tcp 40001/udp",
		"record port=40001 expires=03:02:00",
	}, 30*time.Second)
	// Down: the mappings are given back.
	fw.stop()
	if diff := cmp.Diff([]string{"dial 10.2.0.1:5351", "ask tcp 0->40001 0s", "ask udp 0->40001 0s"}, fw.env.taken()); diff != "" {
		t.Errorf("acts at down (-want +got):\n%s", diff)
	}
}

func TestForwarderProtonGateway(t *testing.T) {
	// The gateway hands out its own port whatever is asked: it is asked for on both sides.
	fw := startForwarding(t, newGateway("proton"), 40000)
	fw.expect([]string{
		"record port=0",
		"dial 10.2.0.1:5351",
		"ask tcp 40000->40000 60s", "ask tcp 0->40000 0s", "ask tcp 45678->45678 60s",
		"ask udp 45678->45678 60s",
		"firewall 45678/tcp 45678/udp", "granted 45678",
		"record port=45678 expires=03:01:00",
	}, 30*time.Second)
	fw.goOn()
}

func TestForwarderGatewayGone(t *testing.T) {
	gw := newGateway("std")
	fw := startForwarding(t, gw, 40000)
	fw.expect([]string{
		"record port=0",
		"dial 10.2.0.1:5351", "ask tcp 40000->40000 60s", "ask udp 40000->40000 60s",
		"firewall 40000/tcp 40000/udp", "granted 40000",
		"record port=40000 expires=03:01:00",
	}, 30*time.Second)
	// Every change to the gateway or the time comes before Run is let go on: it acts at once.
	gw.set(func(g *fakeGateway) { g.mode = "silent" })
	fw.goOn()
	tries := func(proto string) []string {
		return []string{"ask " + proto + " 40000->40000 60s", "ask " + proto + " 40000->40000 60s", "ask " + proto + " 40000->40000 60s",
			"ask " + proto + " 40000->40000 60s", "ask " + proto + " 40000->40000 60s"}
	}
	const noAnswer = `error="mapping tcp port 40000: no answer in 7.75s (5 tries)"`
	// At 03:00:30 the renewal fails: the lease still runs, the port stays open; the retry comes
	// after the first back-off.
	fw.expect(append(append([]string{"dial 10.2.0.1:5351"}, tries("tcp")...),
		"record port=40000 expires=03:01:00 "+noAnswer+" since=03:00:30"), 2*time.Second)
	fw.goOn()
	fw.expect(append(append([]string{"dial 10.2.0.1:5351"}, tries("tcp")...),
		"record port=40000 expires=03:01:00 "+noAnswer+" since=03:00:30"), 4*time.Second)
	// Back-off doubles, but never waits past the lease's end...
	fw.env.mu.Lock()
	fw.env.now_ = fw.env.now_.Add(22 * time.Second) // 03:00:58 once Run goes on
	fw.env.mu.Unlock()
	fw.goOn()
	fw.expect(append(append([]string{"dial 10.2.0.1:5351"}, tries("tcp")...),
		"record port=40000 expires=03:01:00 "+noAnswer+" since=03:00:30"), 2*time.Second)
	fw.goOn()
	// ... where the port closes.
	fw.expect(append(append([]string{"dial 10.2.0.1:5351"}, tries("tcp")...),
		"firewall (none)", "granted 0",
		"record port=0 "+noAnswer+" since=03:00:30"), 16*time.Second)
	// The gateway is back: the port opens again, the error is gone.
	gw.set(func(g *fakeGateway) { g.mode = "std" })
	fw.goOn()
	fw.expect([]string{
		"dial 10.2.0.1:5351", "ask tcp 40000->40000 60s", "ask udp 40000->40000 60s",
		"firewall 40000/tcp 40000/udp", "granted 40000",
		"record port=40000 expires=03:02:16",
	}, 30*time.Second)
	fw.goOn()
}

func TestForwarderRefused(t *testing.T) {
	fw := startForwarding(t, newGateway("refuse"), 40000)
	fw.expect([]string{
		"record port=0",
		"dial 10.2.0.1:5351", "ask tcp 40000->40000 60s",
		// What an earlier run may have opened is closed: no lease says it is forwarded.
		"firewall (none)", "granted 0",
		`record port=0 error="mapping tcp port 40000: the gateway refused the request: not authorized (result 2)" since=03:00:00`,
	}, 2*time.Second)
	fw.goOn()
	// Only once.
	fw.expect([]string{
		"dial 10.2.0.1:5351", "ask tcp 40000->40000 60s",
		`record port=0 error="mapping tcp port 40000: the gateway refused the request: not authorized (result 2)" since=03:00:00`,
	}, 4*time.Second)
	fw.goOn()
}

func TestForwarderFirstPortIsRandom(t *testing.T) {
	seen := map[uint16]bool{}
	for range 20 {
		f := newForwarder(netip.MustParseAddrPort("10.2.0.1:5351"), newForwardEnv(newGateway("std")), time.Minute, 0, nil)
		if f.want < 49152 {
			t.Fatalf("first port %d is outside the dynamic range", f.want)
		}
		seen[f.want] = true
	}
	if len(seen) < 2 {
		t.Errorf("20 forwarders all began with port %v", seen)
	}
}

func TestAnnouncerRunsTheLatestPortOnce(t *testing.T) {
	var mu sync.Mutex
	var ran []uint16
	block := make(chan struct{})
	started := make(chan struct{}, 10)
	a := newAnnouncer(func(ctx context.Context, port uint16) ([]byte, error) {
		mu.Lock()
		ran = append(ran, port)
		mu.Unlock()
		started <- struct{}{}
		<-block
		return nil, nil
	}, func(string, ...any) {})
	a.Start()
	defer a.Stop()
	a.Announce(1)
	<-started
	// While 1 runs, 2, 0 and 3 come: only 3 is told next.
	a.Announce(2)
	a.Announce(0)
	a.Announce(3)
	close(block)
	<-started
	// Runs are one at a time and in order: once 4, announced now, has started, any run that
	// was to come between 3 and 4 has happened.
	a.Announce(4)
	<-started
	mu.Lock()
	defer mu.Unlock()
	if !cmp.Equal(ran, []uint16{1, 3, 4}) {
		t.Errorf("ran for ports %v, want [1 3 4]", ran)
	}
}

func TestAnnouncerTimeout(t *testing.T) {
	lg := &logs{}
	a := newAnnouncer(func(ctx context.Context, port uint16) ([]byte, error) {
		<-ctx.Done()
		return []byte("partial\noutput"), ctx.Err()
	}, lg.logf)
	a.timeout = 50 * time.Millisecond
	a.Start()
	defer a.Stop()
	a.Announce(7)
	waitLog(t, lg, "PortForwardCommand for port 7 did not finish in 50ms; ended: partial | output")
}
