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

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/nsmgr"
)

// Namespace opens sockets inside a tunnel namespace. A socket belongs to the namespace it was
// made in, whichever thread uses it later: so the socket alone is made on an nsmgr.Do thread,
// and everything else (connecting, carrying) happens on ordinary goroutines, through Go's
// poller. Sockets for TCP are made ahead, a few at a time, so that a connection to a published
// port does not wait for a thread to switch namespace. It holds the handle it is given; the
// caller keeps it open while the Namespace is in use, and calls Close.
type Namespace struct {
	h netns.NsHandle

	mu      sync.Mutex
	spare   []int // unconnected TCP sockets (IPv4) made inside, non-blocking
	filling bool
	closed  bool
}

// spareSockets is how many unconnected sockets a Namespace keeps made; it makes more, in one
// namespace switch, when it has fewer than half.
const spareSockets = 8

// InNamespace returns a Namespace for the namespace open as h.
func InNamespace(h netns.NsHandle) *Namespace { return &Namespace{h: h} }

// Close closes the sockets made ahead.
func (n *Namespace) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	for _, fd := range n.spare {
		unix.Close(fd)
	}
	n.spare = nil
}

var _ inside = (*Namespace)(nil)

var (
	loopback4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	loopback6 = netip.IPv6Loopback()
)

// sockets makes count non-blocking TCP sockets of family inside the namespace.
func (n *Namespace) sockets(family, count int) ([]int, error) {
	var fds []int
	err := nsmgr.Do(n.h, func() error {
		for range count {
			fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return os.NewSyscallError("socket", err)
			}
			fds = append(fds, fd)
		}
		return nil
	})
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, err
	}
	return fds, nil
}

// socket4 returns an IPv4 TCP socket made inside, a spare one if there is one, and has more made
// in the background when the spares run low.
func (n *Namespace) socket4() (int, error) {
	n.mu.Lock()
	var fd = -1
	if k := len(n.spare); k > 0 {
		fd, n.spare = n.spare[k-1], n.spare[:k-1]
	}
	refill := len(n.spare) < spareSockets/2 && !n.filling && !n.closed
	if refill {
		n.filling = true
	}
	n.mu.Unlock()
	if refill {
		go func() {
			fds, _ := n.sockets(unix.AF_INET, spareSockets)
			n.mu.Lock()
			defer n.mu.Unlock()
			n.filling = false
			if n.closed {
				for _, fd := range fds {
					unix.Close(fd)
				}
				return
			}
			n.spare = append(n.spare, fds...)
		}()
	}
	if fd >= 0 {
		return fd, nil
	}
	fds, err := n.sockets(unix.AF_INET, 1)
	if err != nil {
		return -1, err
	}
	return fds[0], nil
}

// dialTCP connects to port on the namespace's loopback: 127.0.0.1, or ::1 when nothing listens
// on 127.0.0.1 (a service bound to ::1 only).
func (n *Namespace) dialTCP(ctx context.Context, port uint16) (*net.TCPConn, error) {
	fd, err := n.socket4()
	if err != nil {
		return nil, err
	}
	c, err := connect(ctx, fd, netip.AddrPortFrom(loopback4, port))
	if errors.Is(err, syscall.ECONNREFUSED) {
		if fds, err6 := n.sockets(unix.AF_INET6, 1); err6 == nil {
			if c6, err6 := connect(ctx, fds[0], netip.AddrPortFrom(loopback6, port)); err6 == nil {
				return c6, nil
			}
		}
	}
	return c, err
}

// connect connects the non-blocking TCP socket fd to addr, waiting through Go's poller (so that
// no thread waits, and ctx can end the wait), and returns it as a *net.TCPConn. fd is consumed.
func connect(ctx context.Context, fd int, addr netip.AddrPort) (*net.TCPConn, error) {
	f := os.NewFile(uintptr(fd), "tcp "+addr.String())
	defer f.Close()
	var sa unix.Sockaddr
	if addr.Addr().Is4() {
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: addr.Addr().As16()}
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	err = unix.Connect(fd, sa)
	if err == unix.EINPROGRESS {
		// The wait ends with ctx (its deadline, or Close of the Publisher).
		stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Unix(1, 0)) })
		defer stop()
		// RawWrite forgets readiness seen before it began, so the callback looks at the
		// socket itself (a connection on loopback is often made by then) and asks to wait only
		// while the connection is still being made.
		werr := rc.Write(func(fd uintptr) bool {
			if _, perr := unix.Getpeername(int(fd)); perr == nil {
				err = nil // connected
				return true
			}
			switch v, gerr := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR); {
			case gerr != nil:
				err = gerr
			case v != 0:
				err = syscall.Errno(v)
			default:
				return false // still connecting
			}
			return true
		})
		if werr != nil {
			err = werr
			if ctx.Err() != nil {
				err = ctx.Err()
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// dialUDP opens a UDP socket connected to port on the namespace's 127.0.0.1.
func (n *Namespace) dialUDP(port uint16) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := nsmgr.Do(n.h, func() error {
		var err error
		c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback4, port)))
		return err
	})
	return c, err
}

// dialGateway opens a UDP socket connected to gateway:port, routed as the namespace routes it:
// through the tunnel.
func (n *Namespace) dialGateway(gateway netip.AddrPort) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := nsmgr.Do(n.h, func() error {
		var err error
		c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(gateway))
		return err
	})
	return c, err
}
