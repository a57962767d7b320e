package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/wgns"
)

// Failover makes fakeTunnel a tunnel whose groups move on as asked: the results are scripted
// in failoverOut (a failure when the list is empty).
func (f *fakeTunnel) Failover(_ context.Context, group int) (from, to wgtypes.Key, err error) {
	f.events <- fmt.Sprintf("failover group %d", group+1)
	if len(f.failoverOut) == 0 {
		return from, to, errors.New("no")
	}
	r := f.failoverOut[0]
	f.failoverOut = f.failoverOut[1:]
	return r.from, r.to, r.err
}

// Keys of the peers of a failover group, named A, B and C in messages.
var (
	keyA, keyB, keyC = testKey(1), testKey(2), testKey(3)
	keyNames         = map[wgtypes.Key]string{keyA: "A", keyB: "B", keyC: "C"}
	check            = netip.MustParseAddr("192.0.2.1")
)

func testKey(b byte) wgtypes.Key {
	k := wgtypes.Key{1: b, 31: 0x40}
	return k.PublicKey()
}

// named replaces the test keys in s by their names.
func named(s string) string {
	for k, n := range keyNames {
		s = strings.ReplaceAll(s, k.String(), n)
	}
	return s
}

// fakeGroups is the device's view of the failover groups, set by the test, and the records the
// prober writes.
type fakeGroups struct {
	mu      sync.Mutex
	views   []wgns.GroupView
	viewErr error
	records chan string
}

func (f *fakeGroups) FailoverView() ([]wgns.GroupView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]wgns.GroupView, len(f.views))
	for i, v := range f.views {
		out[i] = wgns.GroupView{Active: v.Active, Peers: append([]wgns.PeerView(nil), v.Peers...)}
	}
	return out, f.viewErr
}

func (f *fakeGroups) RecordFailovers(r wgns.FailoverRecord) error {
	var parts []string
	for i, g := range r.Groups {
		s := fmt.Sprintf("group %d: %d failovers", i+1, g.Failovers)
		if !g.LastFailover.IsZero() {
			s += fmt.Sprintf(", last at +%s", g.LastFailover.Sub(t0))
		}
		if !g.DownSince.IsZero() {
			s += fmt.Sprintf(", down since +%s", g.DownSince.Sub(t0))
		}
		parts = append(parts, s)
	}
	f.records <- strings.Join(parts, "; ")
	return nil
}

// set changes the device: which peer of group g is active, and a peer's counters.
func (f *fakeGroups) set(g, active int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.views[g].Active = active
}

func (f *fakeGroups) count(g, peer int, rx, tx int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.views[g].Peers[peer].RxBytes += rx
	f.views[g].Peers[peer].TxBytes += tx
}

// fakeEcho records the probes as events; the test sends the replies.
type fakeEcho struct {
	sent    chan string
	replies chan wgns.EchoReply
	err     error // what Send returns
	closed  bool
}

func (e *fakeEcho) Send(a netip.Addr, seq int) error {
	e.sent <- fmt.Sprintf("probe %s seq %d", a, seq)
	return e.err
}
func (e *fakeEcho) Replies() <-chan wgns.EchoReply { return e.replies }
func (e *fakeEcho) Close() error                   { e.closed = true; return nil }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type proberHarness struct {
	t        *testing.T
	clk      *fakeClock
	dev      *fakeGroups
	echo     *fakeEcho
	requests chan failoverRequest
	logs     chan string
	cancel   func()
	done     chan struct{}
	pending  []failoverRequest // requests taken by at, for moves
	stepped  chan struct{}     // a look is over
	openMu   sync.Mutex
	openFn   func() (echoer, error)
}

// setOpen makes the prober open its echoer again with open.
func (h *proberHarness) setOpen(open func() (echoer, error)) {
	h.openMu.Lock()
	defer h.openMu.Unlock()
	h.openFn = open
}

// startProber runs a prober over one group of the given peers (probed at check when it is
// valid), with a 2 s timeout, the group's first peer active; it returns once the prober has
// taken its first look and sent its first probe.
func startProber(t *testing.T, chk netip.Addr, keys ...wgtypes.Key) *proberHarness {
	h := &proberHarness{t: t, clk: newFakeClock(), requests: make(chan failoverRequest), logs: make(chan string, 100), done: make(chan struct{}),
		dev:  &fakeGroups{records: make(chan string, 100)},
		echo: &fakeEcho{sent: make(chan string, 100), replies: make(chan wgns.EchoReply)}}
	h.clk.set(t0)
	v := wgns.GroupView{Active: 0}
	for _, k := range keys {
		v.Peers = append(v.Peers, wgns.PeerView{Key: k})
	}
	h.dev.views = []wgns.GroupView{v}
	p := newProber("work", h.dev, h.echo, h.clk, 2*time.Second, []wgns.GroupRecord{{Peers: keys, Check: chk}}, h.requests,
		func(format string, args ...any) { h.logs <- named(fmt.Sprintf(format, args...)) })
	h.stepped = make(chan struct{}, 1)
	p.stepped = func() { h.stepped <- struct{}{} }
	p.open = func() (echoer, error) {
		h.openMu.Lock()
		defer h.openMu.Unlock()
		if h.openFn == nil {
			return nil, errors.New("no echoer to open")
		}
		return h.openFn()
	}
	p.record() // as startFailover does, before the tunnel is ready
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { p.run(ctx); close(h.done) }()
	expect(t, "clock", h.clk.asked, "ticker 500ms")
	if chk.IsValid() {
		h.probed(1)
	}
	<-h.stepped
	t.Cleanup(h.stop)
	return h
}

func (h *proberHarness) stop() {
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.t.Fatal("the prober did not stop")
	}
	select {
	case l := <-h.logs:
		h.t.Errorf("unexpected log: %s", l)
	case r := <-h.dev.records:
		h.t.Errorf("unexpected record: %s", r)
	default:
	}
}

// at lets the prober take a look at t0+d, and returns once it is done, or asks for a move
// (which moves then answers).
func (h *proberHarness) at(d time.Duration) {
	h.t.Helper()
	h.clk.tick <- t0.Add(d)
	select {
	case <-h.stepped:
	case req := <-h.requests:
		h.pending = append(h.pending, req)
	case <-time.After(10 * time.Second):
		h.t.Fatal("the prober did not finish its look")
	}
}

// probed expects the probe with sequence number seq.
func (h *proberHarness) probed(seq int) {
	h.t.Helper()
	expect(h.t, "echo", h.echo.sent, fmt.Sprintf("probe %s seq %d", check, seq))
}

// reply answers the probe seq at t0+d.
func (h *proberHarness) reply(d time.Duration, seq int) {
	h.echo.replies <- wgns.EchoReply{From: check, Seq: seq, At: t0.Add(d)}
}

// moves expects a request to move the group on and answers it: to the peer at place to (the
// device follows), or a failure when to is -1.
func (h *proberHarness) moves(from, to int, keys []wgtypes.Key, err error) {
	h.t.Helper()
	var req failoverRequest
	if len(h.pending) > 0 {
		req, h.pending = h.pending[0], h.pending[1:]
	} else {
		select {
		case req = <-h.requests:
		case <-time.After(10 * time.Second):
			h.t.Fatal("no request to move the group on")
		}
	}
	{
		if req.group != 0 {
			h.t.Fatalf("a request for group %d", req.group+1)
		}
		if to < 0 {
			req.reply <- failoverResult{err: err}
			<-h.stepped
			return
		}
		h.dev.set(0, to)
		req.reply <- failoverResult{from: keys[from], to: keys[to], err: err}
	}
	select {
	case <-h.stepped: // the look that asked is over
	case <-time.After(10 * time.Second):
		h.t.Fatal("the prober did not finish its look after the move")
	}
}

// quiet checks that no request came.
func (h *proberHarness) quiet() {
	h.t.Helper()
	if len(h.pending) > 0 {
		h.t.Fatalf("an unexpected request to move group %d on", h.pending[0].group+1)
	}
}

// A probed group: the active peer answers every probe; when it stops, the group moves on after
// the timeout (2 s from its last answer), and the next peer, which answers, stays active, also
// when the first answers again; a reply that comes late through the old peer counts for nothing.
func TestProberMovesOnWhenTheActivePeerStopsAnswering(t *testing.T) {
	keys := []wgtypes.Key{keyA, keyB}
	h := startProber(t, check, keys...)
	expect(t, "record", h.dev.records, "group 1: 0 failovers")
	h.reply(10*time.Millisecond, 1)
	for i, d := range []time.Duration{500, 1000, 1500, 2000} {
		h.at(d * time.Millisecond)
		h.probed(2 + i)
		h.reply(d*time.Millisecond+10*time.Millisecond, 2+i)
	}
	// A stops answering after the probe at 2 s: probes at 2.5, 3.0, 3.5 and 4.0 s go unanswered.
	for i, d := range []time.Duration{2500, 3000, 3500, 4000} {
		h.at(d * time.Millisecond)
		h.quiet()
		h.probed(6 + i)
	}
	h.at(4010 * time.Millisecond) // 2 s since the last answer
	h.moves(0, 1, keys, nil)
	expect(t, "log", h.logs, "wgns: work: failover group 1: peer A has not answered 192.0.2.1 for 2s; its AllowedIPs moved to peer B")
	expect(t, "record", h.dev.records, "group 1: 1 failovers, last at +4.01s")
	h.probed(10)
	// The reply to a probe sent through A, late: not B's answer.
	h.reply(4100*time.Millisecond, 9)
	h.at(4500 * time.Millisecond)
	h.probed(11)
	h.reply(4520*time.Millisecond, 11) // B answers
	for i, d := range []time.Duration{5000, 5500, 6000, 6500} {
		h.at(d * time.Millisecond)
		h.probed(12 + i)
		h.reply(d*time.Millisecond+10*time.Millisecond, 12+i)
	}
	// B goes on answering: no move, whatever A does.
	h.at(7000 * time.Millisecond)
	h.probed(16)
	h.quiet()
}

// A new peer that does not answer either gets the timeout, from the move; with every peer
// silent the group goes round them, says it is down, and says when one answers again.
func TestProberGoesRoundAndSaysWhenAllAreDown(t *testing.T) {
	keys := []wgtypes.Key{keyA, keyB, keyC}
	h := startProber(t, check, keys...)
	expect(t, "record", h.dev.records, "group 1: 0 failovers")
	h.reply(10*time.Millisecond, 1) // the address answers: the group is judged by its probes
	seq := 1
	tick := func(d time.Duration) {
		h.at(d)
		seq++
		h.probed(seq)
	}
	for d := 500 * time.Millisecond; d < 2010*time.Millisecond; d += 500 * time.Millisecond {
		tick(d)
	}
	h.at(2010 * time.Millisecond)
	h.moves(0, 1, keys, nil)
	expect(t, "log", h.logs, "wgns: work: failover group 1: peer A has not answered 192.0.2.1 for 2s; its AllowedIPs moved to peer B")
	expect(t, "record", h.dev.records, "group 1: 1 failovers, last at +2.01s")
	seq++
	h.probed(seq)
	for d := 2500 * time.Millisecond; d < 4010*time.Millisecond; d += 500 * time.Millisecond {
		tick(d)
	}
	h.at(4010 * time.Millisecond)
	h.moves(1, 2, keys, nil)
	expect(t, "log", h.logs, "wgns: work: failover group 1: peer B has not answered 192.0.2.1 for 2s; its AllowedIPs moved to peer C")
	expect(t, "record", h.dev.records, "group 1: 2 failovers, last at +4.01s")
	seq++
	h.probed(seq)
	h.at(6010 * time.Millisecond)
	h.moves(2, 0, keys, nil)
	expect(t, "log", h.logs, "wgns: work: failover group 1: peer C has not answered 192.0.2.1 for 2s; its AllowedIPs moved to peer A")
	expect(t, "log", h.logs, "wgns: work: failover group 1: none of its 3 peers answers; its traffic goes nowhere (nothing leaves outside the tunnel) until one does")
	expect(t, "record", h.dev.records, "group 1: 3 failovers, last at +6.01s, down since +6.01s")
	seq++
	h.probed(seq)
	h.reply(6100*time.Millisecond, seq) // A is back
	expect(t, "log", h.logs, "wgns: work: failover group 1: peer A answers again")
	expect(t, "record", h.dev.records, "group 1: 3 failovers, last at +6.01s")
	h.at(8050 * time.Millisecond)
	seq++
	h.probed(seq)
	h.quiet()
}

// A move that fails is tried again after another timeout.
func TestProberRetriesAMoveThatFailed(t *testing.T) {
	keys := []wgtypes.Key{keyA, keyB}
	h := startProber(t, check, keys...)
	expect(t, "record", h.dev.records, "group 1: 0 failovers")
	h.reply(0, 1)
	h.at(2 * time.Second)
	h.moves(0, -1, keys, errors.New(`moving the AllowedIPs of failover group 1 to peer B: configuring WireGuard interface "work": no buffer space`))
	expect(t, "log", h.logs, `wgns: work: peer A has not answered 192.0.2.1 for 2s; moving the AllowedIPs of failover group 1 to peer B: configuring WireGuard interface "work": no buffer space (trying again in 2s)`)
	h.probed(2)
	h.at(3500 * time.Millisecond)
	h.probed(3)
	h.quiet()
	h.at(4 * time.Second)
	h.moves(0, 1, keys, errors.New("starting a session with peer B at once: no"))
	expect(t, "log", h.logs, "wgns: work: failover group 1: peer A has not answered 192.0.2.1 for 2s; its AllowedIPs moved to peer B")
	expect(t, "log", h.logs, "wgns: work: failover group 1: starting a session with peer B at once: no")
	expect(t, "record", h.dev.records, "group 1: 1 failovers, last at +4s")
	h.probed(4)
}

// Without an address to probe (or before the address has ever answered), WireGuard's evidence
// decides: keepalives ask for nothing; anything else sent and left unanswered for 15 s (more
// than the timeout) moves the group on; anything received is an answer. The device made again
// (its counts start over, or another peer holds the AllowedIPs) starts afresh.
func TestProberJudgesFromWireGuardCounters(t *testing.T) {
	keys := []wgtypes.Key{keyA, keyB}
	for _, probed := range []bool{false, true} {
		t.Run(fmt.Sprintf("probed=%v", probed), func(t *testing.T) {
			chk := netip.Addr{}
			if probed { // an address that never answers
				chk = check
			}
			h := startProber(t, chk, keys...)
			expect(t, "record", h.dev.records, "group 1: 0 failovers")
			seq := 1
			look := func(d time.Duration) {
				h.t.Helper()
				h.at(d)
				if probed {
					seq++
					h.probed(seq)
				}
			}
			h.dev.count(0, 0, 0, keepaliveBytes)
			look(time.Second)
			h.dev.count(0, 0, 0, keepaliveBytes)
			look(20 * time.Second)
			h.quiet() // keepalives only: nothing is due
			h.dev.count(0, 0, 0, 148)
			look(21 * time.Second) // a handshake sent: an answer is due
			h.dev.count(0, 0, 92, 0)
			look(22 * time.Second) // answered
			h.dev.count(0, 0, 0, 1200)
			look(23 * time.Second) // data sent
			h.dev.count(0, 0, 0, 96)
			look(37 * time.Second)
			h.quiet()
			h.at(38 * time.Second) // 15 s since the data went unanswered
			h.moves(0, 1, keys, nil)
			expect(t, "log", h.logs, "wgns: work: failover group 1: peer A has sent nothing back for 15s; its AllowedIPs moved to peer B")
			expect(t, "record", h.dev.records, "group 1: 1 failovers, last at +38s")
			if probed {
				seq++
				h.probed(seq)
			}
			// B's handshake is answered: B stays.
			h.dev.count(0, 1, 92, 148)
			look(39 * time.Second)
			look(60 * time.Second)
			h.quiet()
			// The device is made again: B's counts start over, then A holds the AllowedIPs (a
			// repair): neither is judged on what came before.
			h.dev.mu.Lock()
			h.dev.views[0].Peers[1] = wgns.PeerView{Key: keyB, TxBytes: 148}
			h.dev.mu.Unlock()
			look(61 * time.Second)
			h.dev.set(0, 0)
			look(62 * time.Second)
			h.dev.count(0, 0, 0, 500)
			look(63 * time.Second)
			look(77 * time.Second)
			h.quiet()
			h.at(78 * time.Second)
			h.moves(0, 1, keys, nil)
			expect(t, "log", h.logs, "wgns: work: failover group 1: peer A has sent nothing back for 15s; its AllowedIPs moved to peer B")
			expect(t, "record", h.dev.records, "group 1: 2 failovers, last at +1m18s")
			if probed {
				seq++
				h.probed(seq)
			}
		})
	}
}

// A device that cannot be read (being made again) is not judged, and the error is logged once;
// no single peer holding the AllowedIPs for the timeout moves the group on.
func TestProberUnreadableDeviceAndNoHolder(t *testing.T) {
	keys := []wgtypes.Key{keyA, keyB}
	h := startProber(t, check, keys...)
	expect(t, "record", h.dev.records, "group 1: 0 failovers")
	h.reply(0, 1)
	h.dev.mu.Lock()
	h.dev.viewErr = errors.New(`reading WireGuard interface "work": file does not exist`)
	h.dev.mu.Unlock()
	h.at(5 * time.Second)
	expect(t, "log", h.logs, `wgns: work: failover: reading the device: reading WireGuard interface "work": file does not exist`)
	h.at(6 * time.Second)
	h.quiet()
	h.dev.mu.Lock()
	h.dev.viewErr = nil
	h.dev.views[0].Active = -1
	h.dev.mu.Unlock()
	h.at(7 * time.Second) // no single holder, from now
	h.probed(2)
	h.at(8500 * time.Millisecond)
	h.probed(3)
	h.quiet()
	h.at(9 * time.Second)
	h.moves(0, 1, keys, nil)
	expect(t, "log", h.logs, "wgns: work: failover group 1: no single peer holds the group's AllowedIPs; its AllowedIPs moved to peer B")
	expect(t, "record", h.dev.records, "group 1: 1 failovers, last at +9s")
	h.probed(4)
}

// The loop performs the prober's requests, one act at a time with the others; a prober whose
// loop is gone stops.
func TestLoopPerformsFailovers(t *testing.T) {
	tun := newFakeTunnel()
	tun.failoverOut = []failoverResult{{from: keyA, to: keyB}}
	requests := make(chan failoverRequest)
	h := &harness{t: t, tun: tun, clk: newFakeClock(), n: &fakeNotifier{lines: make(chan string, 100)},
		sigs: make(chan os.Signal, 1), logs: make(chan string, 100), done: make(chan error, 1), events: make(chan eventKind)}
	l := &loop{name: "work", t: tun, clk: h.clk, n: h.n, sigs: h.sigs, events: h.events, reresolveEvery: 15 * time.Second,
		logf: func(format string, args ...any) { h.logs <- fmt.Sprintf(format, args...) }, failovers: requests}
	go func() { h.done <- l.run() }()
	req := failoverRequest{group: 0, reply: make(chan failoverResult, 1)}
	requests <- req
	expect(t, "tunnel", tun.events, "failover group 1")
	if r := <-req.reply; r.from != keyA || r.to != keyB || r.err != nil {
		t.Errorf("the loop answered %+v", r)
	}
	req = failoverRequest{group: 0, reply: make(chan failoverResult, 1)}
	requests <- req
	expect(t, "tunnel", tun.events, "failover group 1")
	if r := <-req.reply; r.to != (wgtypes.Key{}) || r.err == nil {
		t.Errorf("a failed failover: the loop answered %+v", r)
	}
	if err := h.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// The loop is gone: a prober that wants a move stops.
	clk := newFakeClock()
	clk.set(t0.Add(3 * time.Second))
	p := newProber("work", &fakeGroups{views: []wgns.GroupView{{Active: -1, Peers: []wgns.PeerView{{Key: keyA}, {Key: keyB}}}}, records: make(chan string, 10)},
		nil, clk, 2*time.Second, []wgns.GroupRecord{{Peers: []wgtypes.Key{keyA, keyB}}}, make(chan failoverRequest), t.Logf)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.groups[0].seen, p.groups[0].since = true, t0
	if p.step(ctx, t0.Add(3*time.Second)) {
		t.Error("a prober whose loop is gone went on")
	}
}

// Probes that cannot be sent (the namespace deleted and made anew by a recovery: the socket is
// left in the old one) are opened again, and until they are, and while they cannot be, the group
// is judged by WireGuard's counters.
func TestProberOpensItsProbesAgain(t *testing.T) {
	keys := []wgtypes.Key{keyA, keyB}
	h := startProber(t, check, keys...)
	expect(t, "record", h.dev.records, "group 1: 0 failovers")
	h.reply(0, 1)
	// The next probe cannot be sent: the echoer is closed, and a new one opened at the next look.
	old := h.echo
	old.err = errors.New("sendto: network is unreachable")
	h.at(500 * time.Millisecond)
	old.err = nil
	h.probed(2)
	expect(t, "log", h.logs, "wgns: work: failover: probing 192.0.2.1: sendto: network is unreachable")
	if !old.closed {
		t.Error("the echoer that failed was not closed")
	}
	opens := make(chan string, 10)
	fresh := &fakeEcho{sent: make(chan string, 100), replies: make(chan wgns.EchoReply)}
	fail := true
	h.setOpen(func() (echoer, error) {
		if fail {
			fail = false
			opens <- "open: failed"
			return nil, errors.New(`opening an ICMP socket in namespace "work": no such file`)
		}
		opens <- "open"
		return fresh, nil
	})
	h.at(time.Second)
	expect(t, "open", opens, "open: failed")
	expect(t, "log", h.logs, `wgns: work: failover: opening an ICMP socket in namespace "work": no such file; judging by WireGuard's counters until probes can be sent`)
	h.at(1500 * time.Millisecond)
	expect(t, "open", opens, "open")
	h.echo = fresh
	h.probed(3)
	h.reply(1510*time.Millisecond, 3)
	h.at(3 * time.Second)
	h.probed(4)
	h.quiet()
}
