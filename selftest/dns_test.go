package selftest

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// query builds a DNS query with one question; the name is written label by label as given.
func query(id uint16, flags uint16, name string, qtype, qclass uint16) []byte {
	msg := make([]byte, dnsHeaderLen)
	binary.BigEndian.PutUint16(msg[0:], id)
	binary.BigEndian.PutUint16(msg[2:], flags)
	binary.BigEndian.PutUint16(msg[4:], 1)
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if l == "" {
			continue
		}
		msg = append(msg, byte(len(l)))
		msg = append(msg, l...)
	}
	msg = append(msg, 0)
	msg = binary.BigEndian.AppendUint16(msg, qtype)
	return binary.BigEndian.AppendUint16(msg, qclass)
}

// withOPT appends an EDNS OPT record (as Go's resolver and dig send) to a query.
func withOPT(q []byte) []byte {
	q = slices.Clone(q)
	binary.BigEndian.PutUint16(q[10:], 1)
	return append(q, 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0)
}

// parsed is a response as the tests compare it.
type parsed struct {
	ID       uint16
	QR, AA   bool
	RD       bool
	Rcode    int
	Question string // name/type, "" if none
	Answers  []string
}

// parseResponse reads what answer wrote, checking its structure as a resolver would.
func parseResponse(t *testing.T, msg []byte) parsed {
	t.Helper()
	if len(msg) < dnsHeaderLen {
		t.Fatalf("response of %d bytes", len(msg))
	}
	f := binary.BigEndian.Uint16(msg[2:])
	p := parsed{
		ID: binary.BigEndian.Uint16(msg), QR: f&dnsFlagQR != 0, AA: f&dnsFlagAA != 0, RD: f&dnsFlagRD != 0,
		Rcode: int(f & 0xF),
	}
	qd, an := binary.BigEndian.Uint16(msg[4:]), binary.BigEndian.Uint16(msg[6:])
	if ns, ar := binary.BigEndian.Uint16(msg[8:]), binary.BigEndian.Uint16(msg[10:]); ns != 0 || ar != 0 {
		t.Fatalf("response has %d authority and %d additional records", ns, ar)
	}
	off := dnsHeaderLen
	if qd == 1 {
		q, err := parseQuestion(msg)
		if err != nil {
			t.Fatalf("response's question: %v", err)
		}
		p.Question = q.name + "/" + typeName(q.qtype)
		off = q.end
	}
	for range an {
		if off+12 > len(msg) {
			t.Fatalf("answer record cut short at %d of %d bytes", off, len(msg))
		}
		if ptr := binary.BigEndian.Uint16(msg[off:]); ptr != 0xC000|dnsHeaderLen {
			t.Fatalf("answer name %#x, want a pointer to the question", ptr)
		}
		typ, class := binary.BigEndian.Uint16(msg[off+2:]), binary.BigEndian.Uint16(msg[off+4:])
		ttl, n := binary.BigEndian.Uint32(msg[off+6:]), int(binary.BigEndian.Uint16(msg[off+10:]))
		if class != dnsClassIN || ttl != dnsTTL || off+12+n > len(msg) {
			t.Fatalf("answer record class %d ttl %d length %d in %d bytes", class, ttl, n, len(msg))
		}
		a, ok := netip.AddrFromSlice(msg[off+12 : off+12+n])
		if !ok {
			t.Fatalf("answer rdata of %d bytes", n)
		}
		p.Answers = append(p.Answers, typeName(typ)+" "+a.String())
		off += 12 + n
	}
	if off != len(msg) {
		t.Fatalf("%d bytes after the last record", len(msg)-off)
	}
	return p
}

func typeName(t uint16) string {
	switch t {
	case dnsTypeA:
		return "A"
	case dnsTypeAAAA:
		return "AAAA"
	case dnsTypeANY:
		return "ANY"
	}
	return "TYPE" + strconv.Itoa(int(t))
}

func TestAnswer(t *testing.T) {
	const rd = dnsFlagRD
	a, aaaa := "A 192.0.2.1", "AAAA fd00:192:0:2::1"
	badLabel := query(9, rd, "peer.wgns.test", dnsTypeA, dnsClassIN)
	badLabel[12] = 0xC0 // a compression pointer in the question
	long := query(10, rd, strings.Repeat("a.", 130), dnsTypeA, dnsClassIN)
	twoQ := query(11, rd, "peer.wgns.test", dnsTypeA, dnsClassIN)
	binary.BigEndian.PutUint16(twoQ[4:], 2)
	noQ := query(12, rd, "peer.wgns.test", dnsTypeA, dnsClassIN)
	binary.BigEndian.PutUint16(noQ[4:], 0)
	full := query(13, rd, "peer.wgns.test", dnsTypeA, dnsClassIN)

	tests := []struct {
		name string
		msg  []byte
		want *parsed // nil: no response
	}{
		{"A", query(1, rd, "peer.wgns.test", dnsTypeA, dnsClassIN),
			&parsed{ID: 1, QR: true, AA: true, RD: true, Question: "peer.wgns.test./A", Answers: []string{a}}},
		{"AAAA", query(2, rd, "peer.wgns.test.", dnsTypeAAAA, dnsClassIN),
			&parsed{ID: 2, QR: true, AA: true, RD: true, Question: "peer.wgns.test./AAAA", Answers: []string{aaaa}}},
		{"ANY", query(3, 0, "peer.wgns.test", dnsTypeANY, dnsClassIN),
			&parsed{ID: 3, QR: true, AA: true, Question: "peer.wgns.test./ANY", Answers: []string{a, aaaa}}},
		{"case is kept and ignored", query(4, rd, "PeEr.WGNS.test", dnsTypeA, dnsClassIN),
			&parsed{ID: 4, QR: true, AA: true, RD: true, Question: "PeEr.WGNS.test./A", Answers: []string{a}}},
		{"EDNS OPT ignored", withOPT(query(5, rd, "peer.wgns.test", dnsTypeAAAA, dnsClassIN)),
			&parsed{ID: 5, QR: true, AA: true, RD: true, Question: "peer.wgns.test./AAAA", Answers: []string{aaaa}}},
		{"other type: no data", query(6, rd, "peer.wgns.test", 15, dnsClassIN),
			&parsed{ID: 6, QR: true, AA: true, RD: true, Question: "peer.wgns.test./TYPE15"}},
		{"unknown name", query(7, rd, "other.wgns.test", dnsTypeA, dnsClassIN),
			&parsed{ID: 7, QR: true, AA: true, RD: true, Rcode: dnsRcodeNXDomain, Question: "other.wgns.test./A"}},
		{"subdomain is another name", query(8, rd, "x.peer.wgns.test", dnsTypeA, dnsClassIN),
			&parsed{ID: 8, QR: true, AA: true, RD: true, Rcode: dnsRcodeNXDomain, Question: "x.peer.wgns.test./A"}},
		{"root", query(14, rd, ".", dnsTypeA, dnsClassIN),
			&parsed{ID: 14, QR: true, AA: true, RD: true, Rcode: dnsRcodeNXDomain, Question: "./A"}},
		{"class CH", query(15, rd, "peer.wgns.test", dnsTypeA, 3),
			&parsed{ID: 15, QR: true, AA: true, RD: true, Rcode: dnsRcodeRefused, Question: "peer.wgns.test./A"}},
		{"compression pointer", badLabel, &parsed{ID: 9, QR: true, AA: true, RD: true, Rcode: dnsRcodeFormErr}},
		{"name too long", long, &parsed{ID: 10, QR: true, AA: true, RD: true, Rcode: dnsRcodeFormErr}},
		{"two questions", twoQ, &parsed{ID: 11, QR: true, AA: true, RD: true, Rcode: dnsRcodeFormErr}},
		{"no question", noQ, &parsed{ID: 12, QR: true, AA: true, RD: true, Rcode: dnsRcodeFormErr}},
		{"cut in the type", full[:len(full)-3], &parsed{ID: 13, QR: true, AA: true, RD: true, Rcode: dnsRcodeFormErr}},
		{"cut in the name", full[:16], &parsed{ID: 13, QR: true, AA: true, RD: true, Rcode: dnsRcodeFormErr}},
		{"label past the end", full[:14], &parsed{ID: 13, QR: true, AA: true, RD: true, Rcode: dnsRcodeFormErr}},
		{"header only", full[:12], &parsed{ID: 13, QR: true, AA: true, RD: true, Rcode: dnsRcodeFormErr}},
		{"opcode STATUS", query(16, 2<<11|rd, "peer.wgns.test", dnsTypeA, dnsClassIN),
			&parsed{ID: 16, QR: true, AA: true, RD: true, Rcode: dnsRcodeNotImp}},
		{"a response", query(17, dnsFlagQR, "peer.wgns.test", dnsTypeA, dnsClassIN), nil},
		{"short", full[:11], nil},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := peerZone.answer(tt.msg)
			if tt.want == nil {
				if out != nil {
					t.Fatalf("answer = %d bytes, want no response", len(out))
				}
				return
			}
			if out == nil {
				t.Fatal("no response")
			}
			got := parseResponse(t, out)
			if f := binary.BigEndian.Uint16(out[2:]); f>>11&0xF != 0 && tt.want.Rcode != dnsRcodeNotImp {
				t.Errorf("opcode %d in the response", f>>11&0xF)
			}
			if diff := cmp.Diff(*tt.want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}

// TestServerWithGoResolver checks the server against a real client: Go's own resolver, over
// UDP and over TCP, on loopback.
func TestServerWithGoResolver(t *testing.T) {
	s := &dnsServer{zone: peerZone}
	closers, err := s.listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	udpAddr := closers[0].(net.PacketConn).LocalAddr().String()
	tcpAddr := closers[1].(net.Listener).Addr().String()
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				if network == "udp" {
					return d.DialContext(ctx, "udp", udpAddr)
				}
				return d.DialContext(ctx, "tcp", tcpAddr)
			}}
			got, err := r.LookupNetIP(context.Background(), "ip", "peer.wgns.test")
			if err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(got, netip.Addr.Compare)
			want := []netip.Addr{peerTun4.Addr(), peerTun6.Addr()}
			if !slices.Equal(got, want) {
				t.Errorf("LookupNetIP = %v, want %v", got, want)
			}
			_, err = r.LookupNetIP(context.Background(), "ip", "nothere.wgns.test")
			var de *net.DNSError
			if !asDNSError(err, &de) || !de.IsNotFound {
				t.Errorf("looking up a name not in the zone: %v, want not found", err)
			}
		})
	}
	if s.udp.Load() < 2 || s.tcp.Load() < 2 {
		t.Errorf("counted %d UDP and %d TCP queries, want at least 2 of each", s.udp.Load(), s.tcp.Load())
	}
}

func asDNSError(err error, de **net.DNSError) bool {
	e, ok := err.(*net.DNSError)
	*de = e
	return ok
}
