package ports

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netns"

	"github.com/wgns/wgns/nsmgr"
)

// Namespace opens sockets inside a tunnel namespace: each is made on an nsmgr.Do thread, so it
// belongs to the namespace, and is then used from any goroutine. It holds the handle it is
// given; the caller keeps it open while the Namespace is in use and closes it afterwards.
type Namespace struct {
	h netns.NsHandle
}

// InNamespace returns a Namespace for the namespace open as h.
func InNamespace(h netns.NsHandle) *Namespace { return &Namespace{h: h} }

var _ inside = (*Namespace)(nil)

var (
	loopback4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	loopback6 = netip.IPv6Loopback()
)

// dialTCP connects to port on the namespace's loopback: 127.0.0.1, or ::1 when nothing listens
// on 127.0.0.1 (a service bound to ::1 only).
func (n *Namespace) dialTCP(ctx context.Context, port uint16) (*net.TCPConn, error) {
	var c net.Conn
	err := nsmgr.Do(n.h, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, "tcp4", netip.AddrPortFrom(loopback4, port).String())
		if errors.Is(err, syscall.ECONNREFUSED) {
			if c6, err6 := d.DialContext(ctx, "tcp6", netip.AddrPortFrom(loopback6, port).String()); err6 == nil {
				c, err = c6, nil
			}
		}
		return err
	})
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
