package selftest

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/dns/dnsmessage"
)

// query builds a DNS query with one question, as a client would send it.
func query(t *testing.T, h dnsmessage.Header, name string, qtype dnsmessage.Type, qclass dnsmessage.Class) []byte {
	t.Helper()
	q := dnsmessage.Message{Header: h, Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: qtype, Class: qclass}}}
	msg, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// withOPT adds an EDNS OPT record (as Go's resolver and dig send) to a query.
func withOPT(t *testing.T, h dnsmessage.Header, name string, qtype dnsmessage.Type) []byte {
	t.Helper()
	var opt dnsmessage.ResourceHeader
	if err := opt.SetEDNS0(1232, dnsmessage.RCodeSuccess, false); err != nil {
		t.Fatal(err)
	}
	q := dnsmessage.Message{Header: h,
		Questions:   []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: qtype, Class: dnsmessage.ClassINET}},
		Additionals: []dnsmessage.Resource{{Header: opt, Body: &dnsmessage.OPTResource{}}}}
	msg, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// parsed is a response as the tests compare it.
type parsed struct {
	ID       uint16
	QR, AA   bool
	RD       bool
	Rcode    dnsmessage.RCode
	Question string // name/type, "" if none
	Answers  []string
}

// parseResponse reads what answer wrote, checking its structure as a resolver would.
func parseResponse(t *testing.T, msg []byte) parsed {
	t.Helper()
	var m dnsmessage.Message
	if err := m.Unpack(msg); err != nil {
		t.Fatalf("unpacking the response: %v", err)
	}
	p := parsed{ID: m.ID, QR: m.Response, AA: m.Authoritative, RD: m.RecursionDesired, Rcode: m.RCode}
	if len(m.Authorities) != 0 || len(m.Additionals) != 0 {
		t.Fatalf("response has %d authority and %d additional records", len(m.Authorities), len(m.Additionals))
	}
	switch len(m.Questions) {
	case 0:
	case 1:
		p.Question = m.Questions[0].Name.String() + "/" + typeName(m.Questions[0].Type)
	default:
		t.Fatalf("response has %d questions", len(m.Questions))
	}
	for _, r := range m.Answers {
		if r.Header.Name != m.Questions[0].Name || r.Header.Class != dnsmessage.ClassINET || r.Header.TTL != dnsTTL {
			t.Fatalf("answer record %v, want the question's name, class IN and TTL %d", r.Header, dnsTTL)
		}
		switch b := r.Body.(type) {
		case *dnsmessage.AResource:
			p.Answers = append(p.Answers, "A "+netip.AddrFrom4(b.A).String())
		case *dnsmessage.AAAAResource:
			p.Answers = append(p.Answers, "AAAA "+netip.AddrFrom16(b.AAAA).String())
		default:
			t.Fatalf("answer record %v", r)
		}
	}
	return p
}

func typeName(t dnsmessage.Type) string {
	if t == dnsmessage.TypeALL {
		return "ANY"
	}
	return strings.TrimPrefix(t.String(), "Type")
}

func TestAnswer(t *testing.T) {
	rd := dnsmessage.Header{RecursionDesired: true}
	id := func(h dnsmessage.Header, id uint16) dnsmessage.Header { h.ID = id; return h }
	in, typeA, typeAAAA := dnsmessage.ClassINET, dnsmessage.TypeA, dnsmessage.TypeAAAA
	a, aaaa := "A 192.0.2.1", "AAAA fd00:192:0:2::1"
	badLabel := query(t, id(rd, 9), "peer.wgns.test.", typeA, in)
	badLabel[12] = 0xC0 // a compression pointer in the question, past the end
	// A pointer that a decoder could follow: into the header, where QDCOUNT's high byte reads as
	// the root's empty label.
	intoHeader := append(query(t, id(rd, 18), ".", typeA, in)[:12], 0xC0, 4, 0, 1, 0, 1)
	long := query(t, id(rd, 10), strings.Repeat("a.", 120), typeA, in)
	long = append(long[:12], append(bytes.Repeat([]byte{1, 'a'}, 10), long[12:]...)...) // 130 labels
	twoQ := query(t, id(rd, 11), "peer.wgns.test.", typeA, in)
	twoQ[5] = 2 // QDCOUNT
	noQ := query(t, id(rd, 12), "peer.wgns.test.", typeA, in)
	noQ[5] = 0
	full := query(t, id(rd, 13), "peer.wgns.test.", typeA, in)

	tests := []struct {
		name string
		msg  []byte
		want *parsed // nil: no response
	}{
		{"A", query(t, id(rd, 1), "peer.wgns.test.", typeA, in),
			&parsed{ID: 1, QR: true, AA: true, RD: true, Question: "peer.wgns.test./A", Answers: []string{a}}},
		{"AAAA", query(t, id(rd, 2), "peer.wgns.test.", typeAAAA, in),
			&parsed{ID: 2, QR: true, AA: true, RD: true, Question: "peer.wgns.test./AAAA", Answers: []string{aaaa}}},
		{"ANY", query(t, dnsmessage.Header{ID: 3}, "peer.wgns.test.", dnsmessage.TypeALL, in),
			&parsed{ID: 3, QR: true, AA: true, Question: "peer.wgns.test./ANY", Answers: []string{a, aaaa}}},
		{"case is kept and ignored", query(t, id(rd, 4), "PeEr.WGNS.test.", typeA, in),
			&parsed{ID: 4, QR: true, AA: true, RD: true, Question: "PeEr.WGNS.test./A", Answers: []string{a}}},
		{"EDNS OPT ignored", withOPT(t, id(rd, 5), "peer.wgns.test.", typeAAAA),
			&parsed{ID: 5, QR: true, AA: true, RD: true, Question: "peer.wgns.test./AAAA", Answers: []string{aaaa}}},
		{"other type: no data", query(t, id(rd, 6), "peer.wgns.test.", dnsmessage.TypeMX, in),
			&parsed{ID: 6, QR: true, AA: true, RD: true, Question: "peer.wgns.test./MX"}},
		{"unknown name", query(t, id(rd, 7), "other.wgns.test.", typeA, in),
			&parsed{ID: 7, QR: true, AA: true, RD: true, Rcode: dnsmessage.RCodeNameError, Question: "other.wgns.test./A"}},
		{"subdomain is another name", query(t, id(rd, 8), "x.peer.wgns.test.", typeA, in),
			&parsed{ID: 8, QR: true, AA: true, RD: true, Rcode: dnsmessage.RCodeNameError, Question: "x.peer.wgns.test./A"}},
		{"root", query(t, id(rd, 14), ".", typeA, in),
			&parsed{ID: 14, QR: true, AA: true, RD: true, Rcode: dnsmessage.RCodeNameError, Question: "./A"}},
		{"class CH", query(t, id(rd, 15), "peer.wgns.test.", typeA, dnsmessage.ClassCHAOS),
			&parsed{ID: 15, QR: true, AA: true, RD: true, Rcode: dnsmessage.RCodeRefused, Question: "peer.wgns.test./A"}},
		{"compression pointer", badLabel, &parsed{ID: 9, QR: true, AA: true, RD: true, Rcode: dnsmessage.RCodeFormatError}},
		{"compression pointer into the header", intoHeader, &parsed{ID: 18, QR: true, AA: true, RD: true, Rcode: dnsmessage.RCodeFormatError}},
		{"name too long", long, &parsed{ID: 10, QR: true, AA: true, RD: true, Rcode: dnsmessage.RCodeFormatError}},
		{"two questions", twoQ, &parsed{ID: 11, QR: true, AA: true, RD: true, Rcode: dnsmessage.RCodeFormatError}},
		{"no question", noQ, &parsed{ID: 12, QR: true, AA: true, RD: true, Rcode: dnsmessage.RCodeFormatError}},
		{"cut in the type", full[:len(full)-3], &parsed{ID: 13, QR: true, AA: true, RD: true, Rcode: dnsmessage.RCodeFormatError}},
		{"cut in the name", full[:16], &parsed{ID: 13, QR: true, AA: true, RD: true, Rcode: dnsmessage.RCodeFormatError}},
		{"label past the end", full[:14], &parsed{ID: 13, QR: true, AA: true, RD: true, Rcode: dnsmessage.RCodeFormatError}},
		{"header only", full[:12], &parsed{ID: 13, QR: true, AA: true, RD: true, Rcode: dnsmessage.RCodeFormatError}},
		{"opcode STATUS", query(t, dnsmessage.Header{ID: 16, OpCode: 2, RecursionDesired: true}, "peer.wgns.test.", typeA, in),
			&parsed{ID: 16, QR: true, AA: true, RD: true, Rcode: dnsmessage.RCodeNotImplemented}},
		{"a response", query(t, dnsmessage.Header{ID: 17, Response: true}, "peer.wgns.test.", typeA, in), nil},
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
			if op := out[2] >> 3 & 0xF; op != 0 && tt.want.Rcode != dnsmessage.RCodeNotImplemented {
				t.Errorf("opcode %d in the response", op)
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
