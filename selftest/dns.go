package selftest

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"
)

// A minimal authoritative DNS server: enough for the peer to answer the lookups of the probe,
// and for the decoy to count the lookups that should never reach it. It answers one question
// per message, for A, AAAA and ANY in class IN, from a fixed zone.

// dnsZone maps lower-case, fully qualified names ("peer.wgns.test.") to their addresses.
type dnsZone map[string][]netip.Addr

// DNS constants (RFC 1035, RFC 3596).
const (
	dnsTypeA    = 1
	dnsTypeAAAA = 28
	dnsTypeANY  = 255
	dnsClassIN  = 1

	dnsRcodeOK       = 0
	dnsRcodeFormErr  = 1
	dnsRcodeNXDomain = 3
	dnsRcodeNotImp   = 4
	dnsRcodeRefused  = 5

	dnsFlagQR = 1 << 15
	dnsFlagAA = 1 << 10
	dnsFlagTC = 1 << 9
	dnsFlagRD = 1 << 8
	dnsFlagRA = 1 << 7

	dnsHeaderLen = 12
	dnsTTL       = 60
)

// errFormat is the reason a question could not be read.
var errFormat = errors.New("malformed DNS question")

// dnsQuestion is the one question of a query.
type dnsQuestion struct {
	name   string // as sent, with a trailing dot; "." for the root
	qtype  uint16
	qclass uint16
	end    int // offset just after the question in the message
}

// parseQuestion reads the question that starts at the end of the header. Compression pointers
// are refused: a question comes first, so there is nothing earlier to point to.
func parseQuestion(msg []byte) (dnsQuestion, error) {
	var b strings.Builder
	off, total := dnsHeaderLen, 0
	for {
		if off >= len(msg) {
			return dnsQuestion{}, errFormat
		}
		n := int(msg[off])
		off++
		if n == 0 {
			break
		}
		if n&0xC0 != 0 || off+n > len(msg) {
			return dnsQuestion{}, errFormat
		}
		if total += n + 1; total > 254 {
			return dnsQuestion{}, errFormat
		}
		b.Write(msg[off : off+n])
		b.WriteByte('.')
		off += n
	}
	if off+4 > len(msg) {
		return dnsQuestion{}, errFormat
	}
	name := b.String()
	if name == "" {
		name = "."
	}
	return dnsQuestion{
		name:   name,
		qtype:  binary.BigEndian.Uint16(msg[off:]),
		qclass: binary.BigEndian.Uint16(msg[off+2:]),
		end:    off + 4,
	}, nil
}

// answer returns the response to the DNS message msg, or nil when msg deserves none (too short
// to hold a header, or a response itself). Anything past the question (an EDNS OPT record, for
// instance) is ignored, and the response has no additional records.
func (z dnsZone) answer(msg []byte) []byte {
	if len(msg) < dnsHeaderLen {
		return nil
	}
	id := binary.BigEndian.Uint16(msg[0:])
	flags := binary.BigEndian.Uint16(msg[2:])
	if flags&dnsFlagQR != 0 {
		return nil
	}
	reply := func(rcode uint16, question []byte, answers []netip.Addr) []byte {
		out := make([]byte, dnsHeaderLen, dnsHeaderLen+len(question)+len(answers)*28)
		binary.BigEndian.PutUint16(out[0:], id)
		f := dnsFlagQR | dnsFlagAA | dnsFlagRA | flags&(0xF<<11) | flags&dnsFlagRD | rcode
		binary.BigEndian.PutUint16(out[2:], f)
		if question != nil {
			binary.BigEndian.PutUint16(out[4:], 1)
		}
		binary.BigEndian.PutUint16(out[6:], uint16(len(answers)))
		out = append(out, question...)
		for _, a := range answers {
			typ := uint16(dnsTypeA)
			if a.Is6() {
				typ = dnsTypeAAAA
			}
			rdata := a.AsSlice()
			out = binary.BigEndian.AppendUint16(out, 0xC000|dnsHeaderLen) // the question's name
			out = binary.BigEndian.AppendUint16(out, typ)
			out = binary.BigEndian.AppendUint16(out, dnsClassIN)
			out = binary.BigEndian.AppendUint32(out, dnsTTL)
			out = binary.BigEndian.AppendUint16(out, uint16(len(rdata)))
			out = append(out, rdata...)
		}
		return out
	}
	if opcode := flags >> 11 & 0xF; opcode != 0 {
		return reply(dnsRcodeNotImp, nil, nil)
	}
	if binary.BigEndian.Uint16(msg[4:]) != 1 {
		return reply(dnsRcodeFormErr, nil, nil)
	}
	q, err := parseQuestion(msg)
	if err != nil {
		return reply(dnsRcodeFormErr, nil, nil)
	}
	question := msg[dnsHeaderLen:q.end]
	if q.qclass != dnsClassIN {
		return reply(dnsRcodeRefused, question, nil)
	}
	addrs, ok := z[strings.ToLower(q.name)]
	if !ok {
		return reply(dnsRcodeNXDomain, question, nil)
	}
	var answers []netip.Addr
	for _, a := range addrs {
		if q.qtype == dnsTypeANY || q.qtype == dnsTypeA && a.Is4() || q.qtype == dnsTypeAAAA && a.Is6() {
			answers = append(answers, a)
		}
	}
	return reply(dnsRcodeOK, question, answers)
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
