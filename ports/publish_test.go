package ports

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/wgns/config"
)

// fakeInside stands in for the namespace: a "port inside" is a port of this process's own
// loopback, found in ports.
type fakeInside struct {
	ports map[uint16]uint16 // port inside -> real port on 127.0.0.1
	dials atomic.Int32
}

func (f *fakeInside) real(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(loopback4, f.ports[port])
}

func (f *fakeInside) dialTCP(ctx context.Context, port uint16) (*net.TCPConn, error) {
	f.dials.Add(1)
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp4", f.real(port).String())
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

func (f *fakeInside) dialUDP(port uint16) (*net.UDPConn, error) {
	f.dials.Add(1)
	return net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(f.real(port)))
}

// freePort returns a port of 127.0.0.1 that nothing listens on (for proto) just now.
func freePort(t *testing.T, proto string) uint16 {
	t.Helper()
	if proto == "udp" {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return uint16(c.LocalAddr().(*net.UDPAddr).Port)
	}
	l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// service is a TCP server "inside" that runs handle for each connection.
func service(t *testing.T, handle func(c *net.TCPConn)) uint16 {
	t.Helper()
	l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.AcceptTCP()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) logf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *logs) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// publish serves one entry, host port -> port 80 "inside", which is real port backend.
func publish(t *testing.T, proto string, backend uint16, tune func(p *Publisher)) (*Publisher, netip.AddrPort, *logs) {
	t.Helper()
	host := netip.AddrPortFrom(loopback4, freePort(t, proto))
	lg := &logs{}
	p, err := Listen("wg0.conf", []config.Publish{{Host: host, Port: 80, Proto: proto, Line: 9}}, lg.logf)
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(p)
	}
	p.Serve(&fakeInside{ports: map[uint16]uint16{80: backend}})
	t.Cleanup(p.Close)
	return p, host, lg
}

func dial(t *testing.T, addr netip.AddrPort) *net.TCPConn {
	t.Helper()
	c, err := tryDial(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func tryDial(t *testing.T, addr netip.AddrPort) (*net.TCPConn, error) {
	c, err := net.DialTCP("tcp4", nil, net.TCPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, nil
}

// refused reports whether a connection to addr is refused: reset at once, as soon as it is
// made (on loopback the reset may even beat connect's return) or at the first read.
func refused(t *testing.T, addr netip.AddrPort) bool {
	c, err := tryDial(t, addr)
	if err != nil {
		return true
	}
	_, err = c.Read(make([]byte, 1))
	return err != nil
}

// waitLog waits until the log holds want.
func waitLog(t *testing.T, lg *logs, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(lg.text(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the log lacks %q:\n%s", want, lg.text())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPublishTCPCarriesBothWaysAndHalfCloses(t *testing.T) {
	// The service reads everything, then answers with the byte count and what it read, and
	// closes.
	backend := service(t, func(c *net.TCPConn) {
		got, _ := io.ReadAll(c)
		fmt.Fprintf(c, "%d\n", len(got))
		c.Write(got)
	})
	_, host, _ := publish(t, "tcp", backend, nil)
	data := make([]byte, 8<<20)
	rand.Read(data)
	c := dial(t, host)
	go func() { c.Write(data); c.CloseWrite() }()
	back, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := bytes.Cut(back, []byte("\n"))
	if string(head) != fmt.Sprint(len(data)) || !bytes.Equal(body, data) {
		t.Fatalf("the service counted %q bytes and %d came back equal=%v; sent %d", head, len(body), bytes.Equal(body, data), len(data))
	}
}

func TestPublishTCPLimitsConnections(t *testing.T) {
	release := make(chan struct{})
	backend := service(t, func(c *net.TCPConn) {
		c.Write([]byte("hi\n"))
		<-release
	})
	defer close(release)
	_, host, lg := publish(t, "tcp", backend, func(p *Publisher) { p.maxConns = 2; p.halfOpenIdle = 200 * time.Millisecond })
	var held []*net.TCPConn
	for range 2 {
		c := dial(t, host)
		if _, err := io.ReadFull(c, make([]byte, 3)); err != nil {
			t.Fatalf("a connection within the limit: %v", err)
		}
		held = append(held, c)
	}
	if !refused(t, host) {
		t.Fatal("a connection over the limit was carried")
	}
	waitLog(t, lg, "2 connections already (the limit)")
	// A slot freed is a slot taken again: the client's close leaves the connection half-open
	// (the service holds its end), until it has been idle for halfOpenIdle.
	held[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := tryDial(t, host); err == nil {
			if _, err := io.ReadFull(c, make([]byte, 3)); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection got through after one of the two was closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPublishTCPHalfOpenIdle(t *testing.T) {
	// The service reads to the end and then never answers nor closes.
	hold := make(chan struct{})
	defer close(hold)
	backend := service(t, func(c *net.TCPConn) { io.ReadAll(c); <-hold })
	_, host, _ := publish(t, "tcp", backend, func(p *Publisher) { p.halfOpenIdle = 200 * time.Millisecond })
	c := dial(t, host)
	c.Write([]byte("request"))
	c.CloseWrite()
	start := time.Now()
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("reading after the half-close: %v", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 10*time.Second {
		t.Errorf("the half-open connection was closed after %v, want about 200ms", d)
	}
}

func TestPublishTCPHalfOpenStillMoving(t *testing.T) {
	// After the client's half-close, the service answers slowly but steadily, for longer than
	// the idle period: the connection stays.
	backend := service(t, func(c *net.TCPConn) {
		io.ReadAll(c)
		for range 12 {
			c.Write([]byte("x"))
			time.Sleep(50 * time.Millisecond)
		}
	})
	_, host, _ := publish(t, "tcp", backend, func(p *Publisher) { p.halfOpenIdle = 250 * time.Millisecond })
	c := dial(t, host)
	c.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != strings.Repeat("x", 12) {
		t.Fatalf("read %q, %v; want all 12 bytes", got, err)
	}
}

func TestPublishTCPNothingInside(t *testing.T) {
	_, host, lg := publish(t, "tcp", freePort(t, "tcp"), nil)
	if !refused(t, host) {
		t.Fatal("a published port with nothing behind it carried a connection")
	}
	waitLog(t, lg, "connecting to port 80 inside: dial tcp4")
	waitLog(t, lg, "connection refused")
}

// udpEcho is a UDP service "inside" that answers each datagram with "echo: " and it.
func udpEcho(t *testing.T) uint16 {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(append([]byte("echo: "), buf[:n]...), from)
		}
	}()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

func udpAsk(t *testing.T, c *net.UDPConn, msg string) (string, error) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

func TestPublishUDP(t *testing.T) {
	p, host, lg := publish(t, "udp", udpEcho(t), func(p *Publisher) { p.maxConns = 2; p.udpIdle = 300 * time.Millisecond })
	var clients []*net.UDPConn
	for i := range 3 {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(host))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
		got, err := udpAsk(t, c, fmt.Sprint("hello ", i))
		switch {
		case i < 2 && (err != nil || got != fmt.Sprint("echo: hello ", i)):
			t.Fatalf("client %d got %q, %v", i, got, err)
		case i == 2 && err == nil:
			t.Fatalf("a third flow over the limit of 2 got %q", got)
		}
	}
	if !strings.Contains(lg.text(), "2 flows already (the limit)") {
		t.Errorf("log:\n%s", lg.text())
	}
	// Idle flows end, and then the third client gets through.
	u := p.udp[0]
	deadline := time.Now().Add(10 * time.Second)
	for {
		u.mu.Lock()
		n := len(u.flows)
		u.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d flows left after the idle period", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, err := udpAsk(t, clients[2], "again"); err != nil || got != "echo: again" {
		t.Fatalf("after the idle flows ended, the third client got %q, %v", got, err)
	}
}

func TestListenErrors(t *testing.T) {
	busy, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := uint16(busy.Addr().(*net.TCPAddr).Port)
	first := freePort(t, "tcp")
	ok := config.Publish{Host: netip.AddrPortFrom(loopback4, first), Port: 80, Proto: "tcp", Line: 8}
	for _, tc := range []struct {
		pub  config.Publish
		want string
	}{
		{config.Publish{Host: netip.AddrPortFrom(loopback4, busyPort), Port: 80, Proto: "tcp", Line: 9},
			fmt.Sprintf("wg0.conf:9: Publish 127.0.0.1:%d:80/tcp: listening: address already in use", busyPort)},
		{config.Publish{Host: netip.MustParseAddrPort("192.0.2.77:8080"), Port: 80, Proto: "udp", Line: 10},
			"wg0.conf:10: Publish 192.0.2.77:8080:80/udp: listening: cannot assign requested address"},
	} {
		p, err := Listen("wg0.conf", []config.Publish{ok, tc.pub}, t.Logf)
		if err == nil {
			p.Close()
			t.Fatalf("Listen(%s) succeeded", tc.pub)
		}
		if err.Error() != tc.want {
			t.Errorf("Listen(%s):\n got %v\nwant %s", tc.pub, err, tc.want)
		}
		// What was bound before the failure is closed again.
		l, err := net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(ok.Host))
		if err != nil {
			t.Fatalf("port %d stays bound after a failed Listen: %v", first, err)
		}
		l.Close()
	}
}

func TestPublishCloseEndsConnections(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	backend := service(t, func(c *net.TCPConn) { c.Write([]byte("hi\n")); <-hold })
	p, host, _ := publish(t, "tcp", backend, nil)
	c := dial(t, host)
	if _, err := io.ReadFull(c, make([]byte, 3)); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with a connection open")
	}
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the connection stays open after Close: %v", err)
	}
	if _, err := net.DialTCP("tcp4", nil, net.TCPAddrFromAddrPort(host)); err == nil {
		t.Error("the published port still takes connections after Close")
	}
}

func TestConnect(t *testing.T) {
	backend := service(t, func(c *net.TCPConn) { c.Write([]byte("hi")) })
	socket := func() int {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		return fd
	}
	c, err := connect(context.Background(), socket(), netip.AddrPortFrom(loopback4, backend))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(c); err != nil || string(b) != "hi" {
		t.Errorf("read %q, %v through the connected socket", b, err)
	}
	// A connection made before connect waits for it (on loopback, most are) is seen as made.
	for i := range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := connect(ctx, socket(), netip.AddrPortFrom(loopback4, backend))
		cancel()
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		c.Close()
	}
	closed := freePort(t, "tcp")
	_, err = connect(context.Background(), socket(), netip.AddrPortFrom(loopback4, closed))
	if !errors.Is(err, unix.ECONNREFUSED) || err.Error() != fmt.Sprintf("connecting to 127.0.0.1:%d: connection refused", closed) {
		t.Errorf("connect to a closed port: %v", err)
	}
}

func TestConnectTimeout(t *testing.T) {
	// A listener that never accepts, with no room in its queue: the kernel drops further SYNs,
	// so a connection to it is never made, as with a service inside that is stuck.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	port := uint16(sa.(*unix.SockaddrInet4).Port)
	stuck := netip.AddrPortFrom(loopback4, port)
	var held []*net.TCPConn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 4 { // fill the queue
		c, err := net.DialTimeout("tcp4", stuck.String(), 200*time.Millisecond)
		if err != nil {
			break
		}
		held = append(held, c.(*net.TCPConn))
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	c, err := connect(ctx, s, stuck)
	if err == nil {
		c.Close()
		t.Fatal("a connection to a listener whose queue is full was made")
	}
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("connect to a stuck listener: %v after %s, want the context's deadline after 300ms", err, time.Since(start))
	}
}

// A UDP port published on every address (0.0.0.0) answers each client from the address the
// client sent to: a host with several addresses would otherwise answer from the one its route
// picks, and the client (a connected socket, as most are) would drop the reply.
func TestPublishUDPAnswersFromTheAddressAskedOn(t *testing.T) {
	port := freePort(t, "udp")
	lg := &logs{}
	p, err := Listen("wg0.conf", []config.Publish{{Host: netip.AddrPortFrom(netip.IPv4Unspecified(), port), Port: 80, Proto: "udp", Line: 9}}, lg.logf)
	if err != nil {
		t.Fatal(err)
	}
	p.Serve(&fakeInside{ports: map[uint16]uint16{80: udpEcho(t)}})
	t.Cleanup(p.Close)
	// 127.0.0.2 is this host's too (all of 127/8 is), but a reply routed to 127.0.0.1 leaves
	// from 127.0.0.1.
	for _, to := range []string{"127.0.0.2", "127.0.0.1", "127.0.0.3"} {
		c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(to), port)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got, err := udpAsk(t, c, "to "+to); err != nil || got != "echo: to "+to {
			t.Errorf("asked on %s: got %q, %v", to, got, err)
		}
	}
}
