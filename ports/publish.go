package ports

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/wgns/wgns/wgns/config"
)

// MaxConns is how many connections (TCP) or flows (UDP) one published port carries at once.
const MaxConns = 256

// The timeouts of published ports.
const (
	// DialTimeout bounds the connection to the service inside.
	DialTimeout = 10 * time.Second
	// HalfOpenIdle is how long a TCP connection that one side has finished sending on may go
	// without a byte the other way before it is closed.
	HalfOpenIdle = 60 * time.Second
	// UDPIdle is how long a UDP flow may go without a datagram either way before its socket
	// inside is closed.
	UDPIdle = 60 * time.Second
)

// inside opens sockets inside the tunnel namespace, connected to a port on its loopback.
type inside interface {
	dialTCP(ctx context.Context, port uint16) (*net.TCPConn, error)
	dialUDP(port uint16) (*net.UDPConn, error)
}

// Publisher serves a tunnel's Publish entries: it listens on the host's side and carries each
// connection or UDP flow to the namespace's loopback. Make one with Listen, start it with Serve,
// end it with Close.
type Publisher struct {
	pubs []config.Publish
	tcp  []*tcpPort
	udp  []*udpPort
	logf func(format string, args ...any)

	maxConns     int
	dialTimeout  time.Duration
	halfOpenIdle time.Duration
	udpIdle      time.Duration

	wg     sync.WaitGroup
	done   chan struct{}
	ctx    context.Context // ends with Close: a dial in progress ends with it
	cancel context.CancelFunc
	closed sync.Once
}

// Listen binds the host's side of every Publish entry of cfg (path names the config in errors).
// It fails, having closed what it bound, with "PATH:LINE: Publish ENTRY: listening: CAUSE" when
// an address cannot be bound (a port in use, an address that is not this host's). logf reports
// what goes wrong later (refused connections, a service that does not answer), at most once a
// minute for each port and kind.
func Listen(path string, pubs []config.Publish, logf func(format string, args ...any)) (*Publisher, error) {
	p := &Publisher{pubs: pubs, logf: logf, maxConns: MaxConns, dialTimeout: DialTimeout,
		halfOpenIdle: HalfOpenIdle, udpIdle: UDPIdle, done: make(chan struct{})}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for _, pub := range pubs {
		addr := net.TCPAddrFromAddrPort(pub.Host)
		var err error
		switch pub.Proto {
		case "tcp":
			var l *net.TCPListener
			if l, err = net.ListenTCP(tcpNetwork(pub.Host.Addr()), addr); err == nil {
				p.tcp = append(p.tcp, &tcpPort{pub: pub, l: l, conns: map[*net.TCPConn]bool{}})
			}
		case "udp":
			var c *net.UDPConn
			if c, err = net.ListenUDP(udpNetwork(pub.Host.Addr()), net.UDPAddrFromAddrPort(pub.Host)); err == nil {
				u := &udpPort{pub: pub, c: c, flows: map[netip.AddrPort]*flow{}}
				p.udp = append(p.udp, u)
				err = u.learnDestinations()
			}
		default:
			err = fmt.Errorf("protocol %q", pub.Proto)
		}
		if err != nil {
			p.closeSockets()
			return nil, fmt.Errorf("%s:%d: Publish %s: listening: %w", path, pub.Line, pub, cause(err))
		}
	}
	return p, nil
}

func tcpNetwork(a netip.Addr) string {
	if a.Is4() {
		return "tcp4"
	}
	return "tcp6" // IPV6_V6ONLY: [::] does not take IPv4 too
}

func udpNetwork(a netip.Addr) string {
	if a.Is4() {
		return "udp4"
	}
	return "udp6"
}

// cause strips the *net.OpError and *os.SyscallError around a system call's error: the caller
// names the act and the address.
func cause(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// Published lists the entries being served, as the config gave them.
func (p *Publisher) Published() []config.Publish { return p.pubs }

// Serve starts carrying connections to the namespace through in, each port on goroutines of its
// own; it returns at once.
func (p *Publisher) Serve(in inside) {
	for _, t := range p.tcp {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.serveTCP(t, in) }()
	}
	for _, u := range p.udp {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.serveUDP(u, in) }()
	}
}

// Close stops listening, ends every connection and flow, and waits for the goroutines of Serve.
func (p *Publisher) Close() {
	p.closed.Do(func() {
		close(p.done)
		p.cancel()
		p.closeSockets()
		for _, t := range p.tcp {
			t.mu.Lock()
			for c := range t.conns {
				c.Close()
			}
			t.mu.Unlock()
		}
		for _, u := range p.udp {
			u.mu.Lock()
			for _, f := range u.flows {
				f.c.Close()
			}
			u.mu.Unlock()
		}
	})
	p.wg.Wait()
}

func (p *Publisher) closeSockets() {
	for _, t := range p.tcp {
		t.l.Close()
	}
	for _, u := range p.udp {
		u.c.Close()
	}
}

// closing reports whether Close was called.
func (p *Publisher) closing() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tcpPort is one published TCP port.
type tcpPort struct {
	pub   config.Publish
	l     *net.TCPListener
	mu    sync.Mutex
	conns map[*net.TCPConn]bool // open connections, both sides, for Close
	n     int                   // connections being carried
	quiet quietLog
}

// track adds c to the connections Close ends; it reports false (and closes c) when Close has
// begun.
func (t *tcpPort) track(p *Publisher, c *net.TCPConn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p.closing() {
		c.Close()
		return false
	}
	t.conns[c] = true
	return true
}

func (t *tcpPort) untrack(c *net.TCPConn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	c.Close()
}

func (p *Publisher) serveTCP(t *tcpPort, in inside) {
	pause := 5 * time.Millisecond
	for {
		c, err := t.l.AcceptTCP()
		if err != nil {
			if p.closing() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, say: wait rather than spin.
			t.quiet.logf(p.logf, "accept", "Publish %s: accepting: %v", t.pub, err)
			select {
			case <-p.done:
				return
			case <-time.After(pause):
			}
			pause = min(2*pause, time.Second)
			continue
		}
		pause = 5 * time.Millisecond
		t.mu.Lock()
		full := t.n >= p.maxConns
		if !full {
			t.n++
		}
		t.mu.Unlock()
		if full {
			c.SetLinger(0) // a reset: the client learns at once
			c.Close()
			t.quiet.logf(p.logf, "full", "Publish %s: refused a connection from %s: %d connections already (the limit)", t.pub, c.RemoteAddr(), p.maxConns)
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer func() { t.mu.Lock(); t.n--; t.mu.Unlock() }()
			p.carry(t, c, in)
		}()
	}
}

// carry connects c to the service inside and relays between the two until both are done.
func (p *Publisher) carry(t *tcpPort, c *net.TCPConn, in inside) {
	if !t.track(p, c) {
		return
	}
	defer t.untrack(c)
	ctx, cancel := context.WithTimeout(p.ctx, p.dialTimeout)
	s, err := in.dialTCP(ctx, t.pub.Port)
	cancel()
	if err != nil {
		c.SetLinger(0)
		t.quiet.logf(p.logf, "dial", "Publish %s: connecting to port %d inside: %v", t.pub, t.pub.Port, err)
		return
	}
	if !t.track(p, s) {
		return
	}
	defer t.untrack(s)
	relay(c, s, p.halfOpenIdle)
}

// udpPort is one published UDP port.
type udpPort struct {
	pub config.Publish
	c   *net.UDPConn
	// On every address (0.0.0.0 or ::), the port reads each datagram's destination through
	// one of these (IP_PKTINFO), and answers from it.
	p4    *ipv4.PacketConn
	p6    *ipv6.PacketConn
	mu    sync.Mutex
	flows map[netip.AddrPort]*flow
	quiet quietLog
}

// flow is one client's datagrams, carried through a socket of its own inside, connected to
// the service.
type flow struct {
	c     *net.UDPConn
	local netip.Addr // the address the client sent to, when the port listens on every address
	last  time.Time  // the latest datagram either way
}

// learnDestinations makes a port that listens on every address learn where each datagram was
// sent, so that the answer leaves from there (a host with several addresses would otherwise
// pick the source by its routes, and the client would drop an answer from another address).
func (u *udpPort) learnDestinations() error {
	if !u.pub.Host.Addr().IsUnspecified() {
		return nil
	}
	if u.pub.Host.Addr().Is4() {
		u.p4 = ipv4.NewPacketConn(u.c)
		return u.p4.SetControlMessage(ipv4.FlagDst, true)
	}
	u.p6 = ipv6.NewPacketConn(u.c)
	return u.p6.SetControlMessage(ipv6.FlagDst, true)
}

// read receives a datagram: its sender, and the address it was sent to when the port learns it.
func (u *udpPort) read(buf []byte) (n int, from netip.AddrPort, to netip.Addr, err error) {
	var src net.Addr
	var dst net.IP
	switch {
	case u.p4 != nil:
		var cm *ipv4.ControlMessage
		if n, cm, src, err = u.p4.ReadFrom(buf); cm != nil {
			dst = cm.Dst
		}
	case u.p6 != nil:
		var cm *ipv6.ControlMessage
		if n, cm, src, err = u.p6.ReadFrom(buf); cm != nil {
			dst = cm.Dst
		}
	default:
		n, from, err = u.c.ReadFromUDPAddrPort(buf)
		return n, from, netip.Addr{}, err
	}
	if a, ok := src.(*net.UDPAddr); ok {
		from = a.AddrPort()
	}
	if a, ok := netip.AddrFromSlice(dst); ok {
		to = a.Unmap()
	}
	return n, from, to, err
}

// write sends b to the client to, from the address local when it is known.
func (u *udpPort) write(b []byte, to netip.AddrPort, local netip.Addr) {
	dst := net.UDPAddrFromAddrPort(to)
	switch {
	case u.p4 != nil && local.IsValid():
		u.p4.WriteTo(b, &ipv4.ControlMessage{Src: local.AsSlice()}, dst)
	case u.p6 != nil && local.IsValid():
		u.p6.WriteTo(b, &ipv6.ControlMessage{Src: local.AsSlice()}, dst)
	default:
		u.c.WriteToUDPAddrPort(b, to)
	}
}

func (p *Publisher) serveUDP(u *udpPort, in inside) {
	buf := make([]byte, 64<<10)
	for {
		n, from, local, err := u.read(buf)
		if err != nil {
			if p.closing() || errors.Is(err, net.ErrClosed) {
				return
			}
			u.quiet.logf(p.logf, "read", "Publish %s: receiving: %v", u.pub, err)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		u.mu.Lock()
		f := u.flows[from]
		full := f == nil && len(u.flows) >= p.maxConns
		u.mu.Unlock()
		if full {
			u.quiet.logf(p.logf, "full", "Publish %s: dropped a datagram from %s: %d flows already (the limit)", u.pub, from, p.maxConns)
			continue
		}
		if f == nil {
			c, err := in.dialUDP(u.pub.Port)
			if err != nil {
				u.quiet.logf(p.logf, "dial", "Publish %s: opening a socket to port %d inside: %v", u.pub, u.pub.Port, err)
				continue
			}
			f = &flow{c: c, local: local, last: time.Now()}
			u.mu.Lock()
			if p.closing() {
				u.mu.Unlock()
				c.Close()
				return
			}
			u.flows[from] = f
			u.mu.Unlock()
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.replies(u, from, f) }()
		}
		u.mu.Lock()
		f.last = time.Now()
		u.mu.Unlock()
		// A service that is not listening makes the next read of the flow fail
		// (ECONNREFUSED); the flow stays until it goes idle.
		f.c.Write(buf[:n])
	}
}

// replies carries the service's datagrams back to the client until the flow goes idle.
func (p *Publisher) replies(u *udpPort, to netip.AddrPort, f *flow) {
	defer func() {
		u.mu.Lock()
		delete(u.flows, to)
		u.mu.Unlock()
		f.c.Close()
	}()
	buf := make([]byte, 64<<10)
	for {
		u.mu.Lock()
		deadline := f.last.Add(p.udpIdle)
		u.mu.Unlock()
		if !time.Now().Before(deadline) {
			return
		}
		f.c.SetReadDeadline(deadline)
		n, err := f.c.Read(buf)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			continue // idle, unless a datagram came from the client meanwhile
		case errors.Is(err, syscall.ECONNREFUSED):
			continue // nothing listens inside (yet)
		case err != nil:
			return
		}
		u.mu.Lock()
		f.last = time.Now()
		u.mu.Unlock()
		u.write(buf[:n], to, f.local)
	}
}

// quietLog logs each kind of message at most once a minute, with the count of those it held
// back, so that a flood of connections cannot flood the log.
type quietLog struct {
	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

const quietEvery = time.Minute

func (q *quietLog) logf(logf func(string, ...any), kind, format string, args ...any) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.last == nil {
		q.last, q.held = map[string]time.Time{}, map[string]int{}
	}
	now := time.Now()
	if t, ok := q.last[kind]; ok && now.Sub(t) < quietEvery {
		q.held[kind]++
		return
	}
	msg := fmt.Sprintf(format, args...)
	if n := q.held[kind]; n > 0 {
		msg += fmt.Sprintf(" (and %d more like it in the last minute)", n)
	}
	q.last[kind], q.held[kind] = now, 0
	logf("%s", msg)
}
