package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/nsmgr"
)

// pinger sends ICMP echo requests from a raw socket, in-process, so that "the first ping
// answered" costs neither side a ping(8) start-up.
type pinger struct {
	fd  int
	v6  bool
	dst unix.Sockaddr
	id  uint16
	seq uint16
}

var pingIDs atomic.Uint32

// openPinger opens a raw ICMP socket towards dst. With nsPath ("/run/netns/NAME") the socket is
// made inside that namespace (on a thread of nsmgr.Do); it stays there whatever thread uses it.
func openPinger(nsPath string, dst netip.Addr) (*pinger, error) {
	p := &pinger{v6: dst.Is6(), id: uint16(os.Getpid()) + uint16(pingIDs.Add(1))}
	open := func() error {
		var err error
		if p.v6 {
			p.fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
			p.dst = &unix.SockaddrInet6{Addr: dst.As16()}
		} else {
			p.fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
			p.dst = &unix.SockaddrInet4{Addr: dst.As4()}
		}
		return err
	}
	if nsPath == "" {
		if err := open(); err != nil {
			return nil, fmt.Errorf("opening an ICMP socket: %w", err)
		}
		return p, nil
	}
	h, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", nsPath, err)
	}
	defer h.Close()
	if err := nsmgr.Do(h, open); err != nil {
		return nil, fmt.Errorf("opening an ICMP socket in %s: %w", nsPath, err)
	}
	return p, nil
}

func (p *pinger) close() { unix.Close(p.fd) }

// send sends one echo request with the next sequence number.
func (p *pinger) send() error {
	p.seq++
	pkt := make([]byte, 8+16)
	pkt[0] = 8 // echo request
	if p.v6 {
		pkt[0] = 128
	}
	binary.BigEndian.PutUint16(pkt[4:], p.id)
	binary.BigEndian.PutUint16(pkt[6:], p.seq)
	copy(pkt[8:], "wgns-bench-ping!")
	if !p.v6 { // the kernel computes ICMPv6 checksums of raw sockets itself
		binary.BigEndian.PutUint16(pkt[2:], checksum(pkt))
	}
	return unix.Sendto(p.fd, pkt, 0, p.dst)
}

// mustPing pings dst from the namespace at nsPath ("" for the host's) until it answers, for up to
// 5 s, and returns when the answer came (before the socket is closed); it exits the harness if
// none does, with through naming the path.
func mustPing(nsPath string, dst netip.Addr, through string) time.Time {
	pg, err := openPinger(nsPath, dst)
	if err != nil {
		fatalf("%v", err)
	}
	defer pg.close()
	if !pg.ping(5*time.Second, 100*time.Millisecond) {
		fatalf("no answer to ping %s through %s", dst, through)
	}
	return time.Now()
}

// ping sends an echo request, and another every resend, until a reply to any of them arrives
// (true) or limit passes (false).
func (p *pinger) ping(limit, resend time.Duration) bool {
	deadline := time.Now().Add(limit)
	first := p.seq + 1
	buf := make([]byte, 1500)
	for time.Now().Before(deadline) {
		if err := p.send(); err != nil {
			// No route yet, or the link is not up: try again at the next resend.
			time.Sleep(resend)
			continue
		}
		next := time.Now().Add(resend)
		for {
			wait := time.Until(next)
			if wait <= 0 {
				break
			}
			fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
			n, err := unix.Poll(fds, int(wait/time.Millisecond)+1)
			if err == unix.EINTR || n == 0 {
				continue
			}
			if err != nil {
				return false
			}
			m, _, err := unix.Recvfrom(p.fd, buf, unix.MSG_DONTWAIT)
			if err != nil {
				continue
			}
			if p.isReply(buf[:m], first) {
				return true
			}
		}
	}
	return false
}

// isReply reports whether pkt (with its IPv4 header on an IPv4 raw socket) is an echo reply to
// one of this pinger's requests since sequence number first.
func (p *pinger) isReply(pkt []byte, first uint16) bool {
	want := byte(129)
	if !p.v6 {
		if len(pkt) < 20 {
			return false
		}
		pkt = pkt[int(pkt[0]&0x0f)*4:]
		want = 0
	}
	if len(pkt) < 8 || pkt[0] != want || binary.BigEndian.Uint16(pkt[4:]) != p.id {
		return false
	}
	seq := binary.BigEndian.Uint16(pkt[6:])
	return seq-first <= p.seq-first
}

// checksum is the Internet checksum of b.
func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
