package ports

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/wgns/wgns/firewall"
)

// ForwardState is what a Forwarder has of the provider's port forwarding, for status.
type ForwardState struct {
	// Gateway is the NAT-PMP server asked.
	Gateway netip.Addr `json:"gateway"`
	// Port is the forwarded port, open in the firewall for TCP (and UDP unless UDPPort says
	// otherwise); 0 while there is none.
	Port uint16 `json:"port,omitempty"`
	// UDPPort is the UDP mapping's port when the gateway gave it another one than TCP's.
	UDPPort uint16 `json:"udp_port,omitempty"`
	// External is the port the gateway forwards to Port, when it is another one (a gateway that
	// would not map a port to itself).
	External uint16 `json:"external,omitempty"`
	// Expires is when the lease runs out unless renewed.
	Expires time.Time `json:"expires,omitzero"`
	// Renewed is when the gateway last granted the lease.
	Renewed time.Time `json:"renewed,omitzero"`
	// Error is the latest failure to get or renew the lease, "" once one works again; Since is
	// when failures began.
	Error string    `json:"error,omitempty"`
	Since time.Time `json:"error_since,omitzero"`
}

// forwardEnv is what a Forwarder acts on, outside its own memory.
type forwardEnv interface {
	// dial opens a socket to the gateway inside the tunnel namespace.
	dial(gw netip.AddrPort) (gatewayConn, error)
	// open makes the firewall's forwarded ports exactly ports (none closes them).
	open(ports []firewall.Port) error
	// granted is told the port each time it is granted anew or changes (0: the lease ran out):
	// it writes the port file and runs the command.
	granted(port uint16)
	// record keeps st for status.
	record(st ForwardState)
	now() time.Time
	// after returns a channel that receives once d has passed.
	after(d time.Duration) <-chan time.Time
}

// The timing of a Forwarder.
const (
	// Lifetime is the lease a Forwarder asks for: ProtonVPN's 60 s.
	Lifetime = 60 * time.Second
	// retryFirst and retryMax bound the back-off between failed attempts.
	retryFirst = 2 * time.Second
	retryMax   = 60 * time.Second
	// rounds bounds the requests that try to make a gateway map a port to itself.
	rounds = 3
)

// Forwarder keeps a NAT-PMP port forwarding: it asks the gateway for a TCP and a UDP mapping
// of one port, renews them at half their lifetime, and on every grant or change opens exactly
// that port in the firewall, closing the old one. Make one with NewForwarder; Run does the work.
type Forwarder struct {
	gw       netip.AddrPort
	env      forwardEnv
	logf     func(format string, args ...any)
	lifetime time.Duration
	rt       retransmit
	reask    chan struct{}
	want     uint16 // the port to ask for first
	epoch    uint32 // the gateway's epoch at the last grant

	mu    sync.Mutex
	state ForwardState
}

// ForwardOptions says what a Forwarder asks and whom it tells.
type ForwardOptions struct {
	// Gateway is the NAT-PMP server, asked on port NATPMPPort through Namespace (the tunnel).
	Gateway   netip.Addr
	Namespace *Namespace
	// Lifetime is the lease asked for.
	Lifetime time.Duration
	// Last is the port an earlier run had (from the port file), asked for first; 0 for none,
	// when a random port of the dynamic range is.
	Last uint16
	// Firewall sets the firewall's forwarded ports (nil when the firewall is off).
	Firewall func([]firewall.Port) error
	// Granted is told each new port (0: the lease ran out), from Run's goroutine.
	Granted func(port uint16)
	// Record keeps the state for status.
	Record func(ForwardState)
	// Logf reports grants, changes and failures.
	Logf func(format string, args ...any)
}

// NewForwarder returns a Forwarder as o says.
func NewForwarder(o ForwardOptions) *Forwarder {
	env := &realEnv{ns: o.Namespace, fw: o.Firewall, onGrant: o.Granted, onRecord: o.Record}
	return newForwarder(netip.AddrPortFrom(o.Gateway, NATPMPPort), env, o.Lifetime, o.Last, o.Logf)
}

func newForwarder(gw netip.AddrPort, env forwardEnv, lifetime time.Duration, last uint16, logf func(string, ...any)) *Forwarder {
	if last == 0 {
		last = uint16(49152 + rand.IntN(65536-49152))
	}
	return &Forwarder{gw: gw, env: env, logf: logf, lifetime: lifetime, rt: defaultRetransmit,
		reask: make(chan struct{}, 1), want: last, state: ForwardState{Gateway: gw.Addr()}}
}

// Reask makes Run ask the gateway again at once (after a failover to another peer, whose
// gateway knows nothing of the lease). It never blocks.
func (f *Forwarder) Reask() {
	select {
	case f.reask <- struct{}{}:
	default:
	}
}

// State returns what the Forwarder has now.
func (f *Forwarder) State() ForwardState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

func (f *Forwarder) set(st ForwardState) {
	f.mu.Lock()
	f.state = st
	f.mu.Unlock()
	f.env.record(st)
}

// Run keeps the forwarding until ctx ends; then it asks the gateway to delete the mappings
// (briefly: the tunnel may be gone) and returns.
func (f *Forwarder) Run(ctx context.Context) {
	st := f.State()
	f.env.record(st)
	failures := 0
	// What an earlier run opened (the firewall's sets survive a restart of the supervisor, and
	// so does the port file) is this run's to close until a lease replaces it: if the gateway
	// does not answer, nothing can say that port is still forwarded.
	inherited := true
	for {
		var wait time.Duration
		got, err := f.obtain(ctx, f.want)
		if ctx.Err() != nil {
			break
		}
		now := f.env.now()
		if err != nil {
			failures++
			if st.Error == "" {
				st.Since = now
			}
			st.Error = err.Error()
			f.logf("port forwarding: asking %s: %v", f.gw.Addr(), err)
			if st.Port != 0 && !now.Before(st.Expires) {
				f.logf("port forwarding: the lease of port %d ran out; closing it", st.Port)
				f.close(&st)
			} else if st.Port == 0 && inherited {
				f.close(&st)
			}
			inherited = false
			wait = min(retryFirst<<min(failures-1, 10), retryMax)
			if st.Port != 0 {
				wait = max(min(wait, st.Expires.Sub(now)), time.Second)
			}
		} else {
			failures, inherited = 0, false
			f.grant(&st, got, now)
			wait = max(got.lease()/2, time.Second)
		}
		f.set(st)
		select {
		case <-ctx.Done():
		case <-f.reask:
			f.logf("port forwarding: asking %s again (the tunnel's peer changed)", f.gw.Addr())
		case <-f.env.after(wait):
		}
		if ctx.Err() != nil {
			break
		}
	}
	f.release(st)
}

// lease is a TCP and a UDP mapping got together.
type lease struct{ tcp, udp mapping }

func (l lease) lease() time.Duration { return min(l.tcp.lifetime, l.udp.lifetime) }

// grant takes a lease into st: the firewall opens its ports (the old ones close), and a new
// port is announced.
func (f *Forwarder) grant(st *ForwardState, l lease, now time.Time) {
	port, udp := l.tcp.internal, l.udp.internal
	ports := []firewall.Port{{Port: port, Proto: "tcp"}, {Port: udp, Proto: "udp"}}
	// Every renewal sets the firewall again: it costs one transaction, and undoes a repair that
	// replaced the table at the wrong moment.
	if err := f.env.open(ports); err != nil {
		f.logf("port forwarding: %v", err)
	}
	oldUDP := st.UDPPort
	if oldUDP == 0 {
		oldUDP = st.Port
	}
	changed := port != st.Port || udp != oldUDP
	st.Port, st.UDPPort, st.External = port, 0, 0
	if udp != port {
		st.UDPPort = udp
	}
	if l.tcp.external != port {
		st.External = l.tcp.external
	}
	st.Expires, st.Renewed, st.Error, st.Since = now.Add(l.lease()), now, "", time.Time{}
	f.want = port
	if l.tcp.epoch < f.epoch {
		// RFC 6886: an epoch that goes back means the gateway lost its mappings (it restarted).
		f.logf("port forwarding: %s restarted (its epoch went from %d to %d)", f.gw.Addr(), f.epoch, l.tcp.epoch)
	}
	f.epoch = l.tcp.epoch
	if changed {
		msg := fmt.Sprintf("port forwarding: port %d forwarded by %s for %s", port, f.gw.Addr(), l.lease())
		if st.UDPPort != 0 {
			msg += fmt.Sprintf(" (UDP: port %d)", udp)
		}
		if st.External != 0 {
			msg += fmt.Sprintf(" (its public port is %d: the gateway would not forward %d to itself)", st.External, port)
		}
		f.logf("%s", msg)
		f.env.granted(port)
	}
}

// close closes the forwarded port in the firewall and tells that it is gone.
func (f *Forwarder) close(st *ForwardState) {
	if err := f.env.open(nil); err != nil {
		f.logf("port forwarding: %v", err)
	}
	st.Port, st.UDPPort, st.External, st.Expires = 0, 0, 0, time.Time{}
	f.env.granted(0)
}

// obtain asks for a TCP and a UDP mapping of port want. A gateway may give another external
// port (the one asked for is taken, or it hands out ports of its own, as ProtonVPN's does):
// the mapping then forwards that port to want, but a service is told one number, so the
// mapping is given back and the gateway's port asked for on both sides, a few rounds at most.
func (f *Forwarder) obtain(ctx context.Context, want uint16) (lease, error) {
	c, err := f.env.dial(f.gw)
	if err != nil {
		return lease{}, fmt.Errorf("opening a socket in the tunnel: %w", err)
	}
	defer c.Close()
	tcp, err := f.converge(ctx, c, "tcp", want)
	if err != nil {
		return lease{}, err
	}
	udp, err := f.converge(ctx, c, "udp", tcp.internal)
	if err != nil {
		return lease{}, err
	}
	return lease{tcp: tcp, udp: udp}, nil
}

func (f *Forwarder) converge(ctx context.Context, c gatewayConn, proto string, want uint16) (mapping, error) {
	secs := uint32(f.lifetime / time.Second)
	for round := 1; ; round++ {
		m, err := ask(ctx, c, f.rt, proto, want, want, secs)
		if err != nil {
			return mapping{}, fmt.Errorf("mapping %s port %d: %w", proto, want, err)
		}
		if m.lifetime <= 0 {
			return mapping{}, fmt.Errorf("mapping %s port %d: the gateway granted no lifetime", proto, want)
		}
		m.internal = want
		if m.external == want || m.external == 0 || round == rounds {
			return m, nil
		}
		// Give back the mapping of want (its external port goes free), then ask for the port
		// the gateway chose.
		ask(ctx, c, f.rt, proto, want, 0, 0)
		want = m.external
	}
}

// release asks the gateway to delete the mappings of st, spending at most a second: the tunnel
// is about to go down.
func (f *Forwarder) release(st ForwardState) {
	if st.Port == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := f.env.dial(f.gw)
	if err != nil {
		return
	}
	defer c.Close()
	r := retransmit{first: 250 * time.Millisecond, tries: 2}
	udp := st.Port
	if st.UDPPort != 0 {
		udp = st.UDPPort
	}
	ask(ctx, c, r, "tcp", st.Port, 0, 0)
	ask(ctx, c, r, "udp", udp, 0, 0)
}

// realEnv is the Forwarder's environment in the supervisor.
type realEnv struct {
	ns       *Namespace
	fw       func([]firewall.Port) error
	onGrant  func(uint16)
	onRecord func(ForwardState)
}

func (e *realEnv) dial(gw netip.AddrPort) (gatewayConn, error) {
	c, err := e.ns.dialGateway(gw)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (e *realEnv) open(ports []firewall.Port) error {
	if e.fw == nil {
		return nil
	}
	return e.fw(ports)
}

func (e *realEnv) granted(port uint16) {
	if e.onGrant != nil {
		e.onGrant(port)
	}
}

func (e *realEnv) record(st ForwardState) {
	if e.onRecord != nil {
		e.onRecord(st)
	}
}

func (*realEnv) now() time.Time { return time.Now() }

func (*realEnv) after(d time.Duration) <-chan time.Time { return time.After(d) }
