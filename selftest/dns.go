package selftest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// A minimal authoritative DNS server: enough for the peer to answer the lookups of the probe,
// and for the decoy to count the lookups that should never reach it. It answers one question
// per message, for A, AAAA and ANY in class IN, from a fixed zone.

// dnsZone maps lower-case, fully qualified names ("peer.wgns.test.") to their addresses.
type dnsZone map[string][]netip.Addr

// dnsTTL is the time to live of every answer, in seconds.
const dnsTTL = 60

// answer returns the response to the DNS message msg, or nil when msg deserves none (too short
// to hold a header, or a response itself). It answers one question, written out in full (a
// compression pointer in it is malformed: there is nothing before it to point to); anything past
// the question (an EDNS OPT record, for instance) is ignored, and the response has no
// additional records.
func (z dnsZone) answer(msg []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || h.Response {
		return nil
	}
	reply := func(rcode dnsmessage.RCode, q *dnsmessage.Question, answers []netip.Addr) []byte {
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, Authoritative: true,
			RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: rcode})
		b.EnableCompression() // the answers name the question's name by a pointer to it
		b.StartQuestions()
		if q != nil {
			b.Question(*q)
		}
		b.StartAnswers()
		for _, a := range answers {
			rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: dnsTTL}
			if a.Is4() {
				b.AResource(rh, dnsmessage.AResource{A: a.As4()})
			} else {
				b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
			}
		}
		out, err := b.Finish()
		if err != nil { // not expected: every part is well formed
			return nil
		}
		return out
	}
	if h.OpCode != 0 {
		return reply(dnsmessage.RCodeNotImplemented, nil, nil)
	}
	q, err := p.Question()
	if err != nil || !writtenInFull(msg, q) {
		return reply(dnsmessage.RCodeFormatError, nil, nil)
	}
	if _, err := p.Question(); !errors.Is(err, dnsmessage.ErrSectionDone) {
		return reply(dnsmessage.RCodeFormatError, nil, nil) // not exactly one question
	}
	if q.Class != dnsmessage.ClassINET {
		return reply(dnsmessage.RCodeRefused, &q, nil)
	}
	addrs, ok := z[strings.ToLower(q.Name.String())]
	if !ok {
		return reply(dnsmessage.RCodeNameError, &q, nil)
	}
	var answers []netip.Addr
	for _, a := range addrs {
		if q.Type == dnsmessage.TypeALL || q.Type == dnsmessage.TypeA && a.Is4() || q.Type == dnsmessage.TypeAAAA && a.Is6() {
			answers = append(answers, a)
		}
	}
	return reply(dnsmessage.RCodeSuccess, &q, answers)
}

// writtenInFull reports whether msg's question section starts with q written without
// compression, as a question must be.
func writtenInFull(msg []byte, q dnsmessage.Question) bool {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{})
	b.StartQuestions()
	if b.Question(q) != nil {
		return false
	}
	full, err := b.Finish()
	if err != nil {
		return false
	}
	const headerLen = 12
	return bytes.HasPrefix(msg[headerLen:], full[headerLen:])
}

// dnsServer answers from zone over UDP and TCP and counts the messages it gets.
type dnsServer struct {
	zone     dnsZone
	udp, tcp atomic.Int64
}

// serveUDP answers the datagrams of pc until pc is closed.
func (s *dnsServer) serveUDP(pc net.PacketConn) {
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.udp.Add(1)
		if out := s.zone.answer(buf[:n]); out != nil {
			pc.WriteTo(out, from)
		}
	}
}

// serveTCP answers the connections of l until l is closed: each carries messages with a
// two-byte length in front (RFC 1035 4.2.2), until the client closes it or is idle for 5s.
func (s *dnsServer) serveTCP(l net.Listener) {
	acceptEach(l, func(c net.Conn) {
		defer c.Close()
		var n [2]byte
		for {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(c, n[:]); err != nil {
				return
			}
			msg := make([]byte, binary.BigEndian.Uint16(n[:]))
			if _, err := io.ReadFull(c, msg); err != nil {
				return
			}
			s.tcp.Add(1)
			out := s.zone.answer(msg)
			if out == nil {
				return
			}
			if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(out))), out...)); err != nil {
				return
			}
		}
	})
}

// listen starts the server on addr (UDP and TCP). The caller must close the returned closers.
func (s *dnsServer) listen(addr netip.AddrPort) ([]io.Closer, error) {
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
	if err != nil {
		pc.Close()
		return nil, err
	}
	go s.serveUDP(pc)
	go s.serveTCP(l)
	return []io.Closer{pc, l}, nil
}
