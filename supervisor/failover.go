package supervisor

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/wgns"
)

// Failover between redundant peers ([Namespace] Failover = on): the prober watches the active
// peer of each failover group and, when it stops answering, asks the loop to move the group's
// AllowedIPs to the next peer (wgns.Tunnel.Failover), which gets as long to answer in turn.
//
// A group with an address to probe (FailoverCheck, or the first DNS server it routes) is sent an
// ICMP echo request every FailoverTimeout/4, from a socket inside the namespace, which WireGuard's
// cryptokey routing sends through the active peer; the peer has stopped answering when no reply
// came through it for FailoverTimeout. Until that address has answered once (an address that
// does not answer pings, say), and for a group without one, WireGuard's own evidence decides,
// as WireGuard itself does before it tries a new handshake: the peer was sent something other
// than a keepalive and has sent nothing back for wireGuardWindow (or FailoverTimeout, if longer).
//
// When the first peer answers again the group stays where it is: moving back would cut the
// connections that go through the peer now active, for nothing. With every peer of a group
// silent, the group goes round its peers, each getting FailoverTimeout, so that the first to
// come back is found; its traffic meanwhile goes nowhere (the firewall and routes keep it
// inside), and the record says since when the group is down.

// keepaliveBytes is what a WireGuard keepalive adds to a peer's transmit count: an empty data
// message (a 16-byte header and a 16-byte tag), which asks for no answer.
const keepaliveBytes = 32

// wireGuardWindow is how long a live peer may take to answer what it was sent:
// KEEPALIVE_TIMEOUT (10 s: a peer that received data and had nothing to send answers with a
// keepalive) plus REKEY_TIMEOUT (5 s), after which WireGuard itself gives up on the session.
const wireGuardWindow = 15 * time.Second

// failoverTunnel is what the prober reads of the tunnel, beside the loop.
type failoverTunnel interface {
	FailoverView() ([]wgns.GroupView, error)
	RecordFailovers(wgns.FailoverRecord) error
}

// echoer sends the probes and reports their replies (*wgns.Echo).
type echoer interface {
	Send(a netip.Addr, seq int) error
	Replies() <-chan wgns.EchoReply
	Close() error
}

// failoverRequest asks the loop to move a group's AllowedIPs on (Tunnel.Failover); the loop
// answers on reply, which has room for the answer.
type failoverRequest struct {
	group int
	reply chan failoverResult
}

type failoverResult struct {
	from, to wgtypes.Key
	err      error
}

// failover performs a request of the prober (on the loop: no other act on the tunnel runs
// meanwhile).
func (l *loop) failover(req failoverRequest) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	from, to, err := l.t.Failover(ctx, req.group)
	req.reply <- failoverResult{from: from, to: to, err: err}
	if err == nil && from != to && l.peerChanged != nil {
		l.peerChanged() // the port forwarding asks the new peer's gateway (ports.go)
	}
}

// prober decides when the groups move on. It runs on a goroutine of its own.
type prober struct {
	name     string
	t        failoverTunnel
	echo     echoer                 // nil: no probe can be sent (none opened yet, or none to send)
	open     func() (echoer, error) // opens an echoer (again); nil: never
	clk      clock
	timeout  time.Duration
	requests chan<- failoverRequest
	logf     func(format string, args ...any)
	stepped  func() // called after each look (tests wait on it); nil: nothing

	groups  []*groupWatch
	seq     uint16
	sent    map[uint16]probeSent
	lastErr map[string]string // the last error of each kind, logged once
}

// probeSent is an echo request on its way.
type probeSent struct {
	group int
	peer  wgtypes.Key // the peer that was active when it was sent
	at    time.Time
}

// groupWatch is what the prober knows of one group.
type groupWatch struct {
	n      int // the group's number, from 1
	keys   []wgtypes.Key
	check  netip.Addr
	active int       // the active peer's place in the group; -1 when no single peer holds the AllowedIPs
	since  time.Time // when the active peer became active (or was first seen)
	answer time.Time // the active peer's last answer (since it became active)
	probed bool      // check has answered once: the group is judged by its probes
	// pending is when the active peer was sent something other than a keepalive that it has
	// not answered yet (WireGuard's evidence).
	pending time.Time
	rx, tx  []int64 // each peer's counters at the last look
	seen    bool    // the counters were read once
	failed  int     // peers in a row found silent
	rec     wgns.GroupRecord
}

// newProber returns a prober of the given failover groups (their peers and check addresses, in
// the config's order), moving them on through requests.
func newProber(name string, t failoverTunnel, echo echoer, clk clock, timeout time.Duration, groups []wgns.GroupRecord,
	requests chan<- failoverRequest, logf func(string, ...any)) *prober {
	p := &prober{name: name, t: t, echo: echo, clk: clk, timeout: timeout, requests: requests, logf: logf,
		sent: map[uint16]probeSent{}, lastErr: map[string]string{}}
	for i, g := range groups {
		p.groups = append(p.groups, &groupWatch{n: i + 1, keys: g.Peers, check: g.Check, active: -1,
			rx: make([]int64, len(g.Peers)), tx: make([]int64, len(g.Peers))})
	}
	return p
}

// run probes every timeout/4 until ctx ends.
func (p *prober) run(ctx context.Context) {
	tick, stop := p.clk.ticker(p.timeout / 4)
	defer stop()
	step := func(now time.Time) bool {
		ok := p.step(ctx, now)
		if p.stepped != nil {
			p.stepped()
		}
		return ok
	}
	if !step(p.clk.now()) {
		return
	}
	for {
		var replies <-chan wgns.EchoReply
		if p.echo != nil {
			replies = p.echo.Replies()
		}
		select {
		case <-ctx.Done():
			return
		case now := <-tick:
			if !step(now) {
				return
			}
		case r := <-replies:
			p.answered(r)
		}
	}
}

// step looks at the device at now, moves on the groups whose active peer stopped answering,
// and sends the next probes. It returns false when the loop is gone.
func (p *prober) step(ctx context.Context, now time.Time) bool {
	views, err := p.t.FailoverView()
	if err != nil {
		// The device is being made again, say: nothing to judge until it is back.
		p.once("view", "reading the device: %v", err)
		return true
	}
	delete(p.lastErr, "view")
	if p.echo == nil && p.open != nil && slices.ContainsFunc(p.groups, func(w *groupWatch) bool { return w.check.IsValid() }) {
		if e, err := p.open(); err != nil {
			p.once("echo", "%v; judging by WireGuard's counters until probes can be sent", err)
		} else {
			p.echo = e
			delete(p.lastErr, "echo")
		}
	}
	for i, w := range p.groups {
		if i >= len(views) {
			break
		}
		if w.look(now, views[i]) && !w.probed {
			p.heard(w, now) // unprobed, anything received is an answer
		}
		if w.dead(now, p.timeout) && !p.failover(ctx, i, now) {
			return false
		}
		if w.check.IsValid() && p.echo != nil {
			p.probe(i, now)
		}
	}
	for seq, s := range p.sent {
		if now.Sub(s.at) > 2*p.timeout {
			delete(p.sent, seq) // lost
		}
	}
	return true
}

// look takes in the device's view of the group: which peer holds the AllowedIPs, and whether
// the active one was sent something that asks for an answer. It reports whether the active peer
// sent anything since the last look.
func (w *groupWatch) look(now time.Time, v wgns.GroupView) (received bool) {
	if !w.seen || v.Active != w.active {
		// The first look, or the device changed without the prober (made again after it
		// stopped, or repaired): the peer that holds the AllowedIPs now starts afresh.
		w.setActive(v.Active, now)
	}
	for j, pv := range v.Peers {
		if j >= len(w.rx) {
			break
		}
		rx, tx := pv.RxBytes-w.rx[j], pv.TxBytes-w.tx[j]
		if pv.RxBytes < w.rx[j] || pv.TxBytes < w.tx[j] {
			rx, tx = pv.RxBytes, pv.TxBytes // the peer was made again: its counts start over
		}
		w.rx[j], w.tx[j] = pv.RxBytes, pv.TxBytes
		if !w.seen || j != w.active {
			continue
		}
		switch {
		case rx > 0:
			w.pending, received = time.Time{}, true
		case tx > 0 && tx != keepaliveBytes && w.pending.IsZero():
			w.pending = now
		}
	}
	w.seen = true
	return received
}

// setActive makes the peer at place pos the active one, from now.
func (w *groupWatch) setActive(pos int, now time.Time) {
	w.active, w.since, w.answer, w.pending = pos, now, time.Time{}, time.Time{}
}

// silentFor is how long the active peer has not answered.
func (w *groupWatch) silentFor(now time.Time) time.Duration {
	if w.answer.After(w.since) {
		return now.Sub(w.answer)
	}
	return now.Sub(w.since)
}

// dead reports whether the active peer has stopped answering (or no single peer holds the
// AllowedIPs, for timeout).
func (w *groupWatch) dead(now time.Time, timeout time.Duration) bool {
	switch {
	case w.active < 0:
		return now.Sub(w.since) >= timeout
	case w.probed:
		return w.silentFor(now) >= timeout
	}
	return !w.pending.IsZero() && now.Sub(w.pending) >= max(timeout, wireGuardWindow)
}

// failover moves group i on. It returns false when the loop is gone.
func (p *prober) failover(ctx context.Context, i int, now time.Time) bool {
	w := p.groups[i]
	why := "no single peer holds the group's AllowedIPs"
	if w.active >= 0 {
		if w.probed {
			why = fmt.Sprintf("peer %s has not answered %s for %s", w.keys[w.active], w.check, w.silentFor(now).Round(time.Millisecond))
		} else {
			why = fmt.Sprintf("peer %s has sent nothing back for %s", w.keys[w.active], now.Sub(w.pending).Round(time.Millisecond))
		}
	}
	req := failoverRequest{group: i, reply: make(chan failoverResult, 1)}
	var res failoverResult
	select {
	case p.requests <- req:
	case <-ctx.Done():
		return false
	}
	select {
	case res = <-req.reply:
	case <-ctx.Done():
		return false
	}
	if res.to == (wgtypes.Key{}) {
		p.logf("wgns: %s: %s; %v (trying again in %s)", p.name, why, res.err, p.timeout)
		w.since, w.pending = now, time.Time{}
		return true
	}
	if w.active >= 0 {
		w.failed++ // one more peer found silent
	}
	w.setActive(slices.Index(w.keys, res.to), now)
	w.pending = now // a new session with it has begun: it is due to answer
	w.rec.Failovers++
	w.rec.LastFailover = now
	p.logf("wgns: %s: failover group %d: %s; its AllowedIPs moved to peer %s", p.name, w.n, why, res.to)
	if res.err != nil {
		p.logf("wgns: %s: failover group %d: %v", p.name, w.n, res.err)
	}
	if w.failed >= len(w.keys) && w.rec.DownSince.IsZero() {
		w.rec.DownSince = now
		p.logf("wgns: %s: failover group %d: none of its %d peers answers; its traffic goes nowhere (nothing leaves outside the tunnel) until one does",
			p.name, w.n, len(w.keys))
	}
	p.record()
	return true
}

// probe sends the next echo request to group i's check address.
func (p *prober) probe(i int, now time.Time) {
	w := p.groups[i]
	p.seq++
	s := probeSent{group: i, at: now}
	if w.active >= 0 {
		s.peer = w.keys[w.active]
	}
	p.sent[p.seq] = s
	if err := p.echo.Send(w.check, int(p.seq)); err != nil {
		p.once("probe", "probing %s: %v", w.check, err)
		if p.open != nil {
			// Its namespace may be gone (deleted, and made anew by a recovery): open it again.
			p.echo.Close()
			p.echo = nil
		}
		return
	}
	delete(p.lastErr, "probe")
}

// answered takes in an echo reply: an answer of the peer the request went through, if that
// peer is still the active one.
func (p *prober) answered(r wgns.EchoReply) {
	s, ok := p.sent[uint16(r.Seq)]
	if !ok {
		return
	}
	delete(p.sent, uint16(r.Seq))
	w := p.groups[s.group]
	if r.From != w.check || w.active < 0 || w.keys[w.active] != s.peer {
		return // a late reply through a peer no longer active
	}
	w.probed = true
	p.heard(w, r.At)
}

// heard records that the active peer of w answered at now.
func (p *prober) heard(w *groupWatch, now time.Time) {
	w.answer, w.failed = now, 0
	if !w.rec.DownSince.IsZero() {
		w.rec.DownSince = time.Time{}
		p.logf("wgns: %s: failover group %d: peer %s answers again", p.name, w.n, w.keys[w.active])
		p.record()
	}
}

// record writes the groups' record, for status and check.
func (p *prober) record() {
	var r wgns.FailoverRecord
	for _, w := range p.groups {
		g := w.rec
		g.Peers, g.Check = w.keys, w.check
		r.Groups = append(r.Groups, g)
	}
	if err := p.t.RecordFailovers(r); err != nil {
		p.once("record", "%v", err)
		return
	}
	delete(p.lastErr, "record")
}

// once logs an error of the given kind, unless it is the one last logged of that kind.
func (p *prober) once(kind, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p.lastErr[kind] == msg {
		return
	}
	p.lastErr[kind] = msg
	p.logf("wgns: %s: failover: %s", p.name, msg)
}

// startFailover starts the prober of tunnel t, when it has failover groups, after writing their
// first record. It returns the channel of the prober's requests to the loop (nil without
// groups) and a function that stops the prober, and returns once it has.
func startFailover(name string, t held, logf func(string, ...any)) (<-chan failoverRequest, func()) {
	cfg := t.Config()
	if len(cfg.Groups) == 0 {
		return nil, func() {}
	}
	var groups []wgns.GroupRecord
	for _, g := range cfg.Groups {
		r := wgns.GroupRecord{Check: g.Check}
		for _, i := range g.Peers {
			r.Peers = append(r.Peers, cfg.Peers[i].PublicKey)
		}
		groups = append(groups, r)
	}
	timeout := cfg.Namespace.FailoverTimeout
	requests := make(chan failoverRequest)
	p := newProber(name, t, nil, realClock{}, timeout, groups, requests, logf)
	p.open = func() (echoer, error) {
		e, err := t.OpenEcho()
		if err != nil {
			return nil, err
		}
		return e, nil
	}
	for _, w := range p.groups {
		how := fmt.Sprintf("moving on when one has sent nothing back for %s", max(timeout, wireGuardWindow))
		if w.check.IsValid() {
			how = fmt.Sprintf("probing %s every %s, moving on after %s without an answer", w.check, timeout/4, timeout)
		}
		keys := make([]string, len(w.keys))
		for i, k := range w.keys {
			keys[i] = k.String()
		}
		logf("wgns: %s: failover group %d: peers %s; %s", name, w.n, strings.Join(keys, ", "), how)
	}
	p.record()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.run(ctx); close(done) }()
	var once sync.Once
	return requests, func() {
		once.Do(func() {
			cancel()
			<-done
			if p.echo != nil {
				p.echo.Close()
			}
		})
	}
}
