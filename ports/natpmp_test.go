package ports

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMapRequest(t *testing.T) {
	for _, tc := range []struct {
		proto              string
		internal, external uint16
		lifetime           uint32
		want               string
	}{
		{"tcp", 51413, 51413, 60, "00 02 0000 c8d5 c8d5 0000003c"},
		{"udp", 1, 0, 60, "00 01 0000 0001 0000 0000003c"},
		{"udp", 40000, 0, 0, "00 01 0000 9c40 0000 00000000"}, // a deletion
	} {
		b := mapRequest(tc.proto, tc.internal, tc.external, tc.lifetime)
		got := fmt.Sprintf("%02x %02x %04x %04x %04x %08x", b[0], b[1], b[2:4], b[4:6], b[6:8], b[8:12])
		if len(b) != 12 || got != tc.want {
			t.Errorf("mapRequest(%s, %d, %d, %d) = %s (%d bytes), want %s", tc.proto, tc.internal, tc.external, tc.lifetime, got, len(b), tc.want)
		}
	}
}

// response builds a mapping response.
func response(op byte, result uint16, epoch uint32, internal, external uint16, lifetime uint32) []byte {
	b := make([]byte, 16)
	b[1] = opResponse + op
	binary.BigEndian.PutUint16(b[2:], result)
	binary.BigEndian.PutUint32(b[4:], epoch)
	binary.BigEndian.PutUint16(b[8:], internal)
	binary.BigEndian.PutUint16(b[10:], external)
	binary.BigEndian.PutUint32(b[12:], lifetime)
	return b
}

func TestParseMapResponse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		b     []byte
		proto string
		want  mapping
		err   string
	}{
		{"granted", response(opMapTCP, 0, 7, 40000, 40001, 60), "tcp",
			mapping{proto: "tcp", internal: 40000, external: 40001, lifetime: time.Minute, epoch: 7}, ""},
		{"refused", response(opMapUDP, 2, 7, 40000, 0, 0), "udp", mapping{}, "the gateway refused the request: not authorized (result 2)"},
		{"out of resources", response(opMapTCP, 4, 7, 40000, 0, 0), "tcp", mapping{}, "the gateway refused the request: out of resources (result 4)"},
		{"a short error", response(opMapTCP, 5, 0, 0, 0, 0)[:8], "tcp", mapping{}, "the gateway refused the request: unsupported opcode (result 5)"},
		{"the other protocol's", response(opMapUDP, 0, 7, 40000, 40000, 60), "tcp", mapping{}, errNotOurs.Error()},
		{"a request", mapRequest("tcp", 1, 1, 1), "tcp", mapping{}, errNotOurs.Error()},
		{"version 1", append([]byte{1}, response(opMapTCP, 0, 7, 1, 1, 1)[1:]...), "tcp", mapping{}, errNotOurs.Error()},
		{"short", response(opMapTCP, 0, 7, 1, 1, 1)[:15], "tcp", mapping{}, errNotOurs.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseMapResponse(tc.b, tc.proto)
			if (err == nil) != (tc.err == "") || err != nil && err.Error() != tc.err {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if m != tc.want {
				t.Errorf("mapping %+v, want %+v", m, tc.want)
			}
		})
	}
}

// fakeGateway is a NAT-PMP server in memory, as a gatewayConn. In mode "std" it maps as
// miniupnpd does: the suggested external port (or the internal one) when it is free and not
// denied, else the next one that is; lifetime 0 deletes the client's mapping of the internal
// port. In mode "proton" it hands out its one port whatever is asked, as ProtonVPN's gateway
// does. "silent" answers nothing; "refuse" refuses every mapping.
type fakeGateway struct {
	mu       sync.Mutex
	mode     string
	maps     map[string]uint16 // "tcp/EPORT" -> internal port
	deny     map[uint16]bool
	own      uint16 // proton's port
	epoch    uint32
	requests []string
	queue    [][]byte
	closed   int
}

func newGateway(mode string) *fakeGateway {
	return &fakeGateway{mode: mode, maps: map[string]uint16{}, deny: map[uint16]bool{}, own: 45678, epoch: 1000}
}

func (g *fakeGateway) set(f func(g *fakeGateway)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g)
}

func (g *fakeGateway) log() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := g.requests
	g.requests = nil
	return out
}

func (g *fakeGateway) Write(b []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	proto := map[byte]string{opMapUDP: "udp", opMapTCP: "tcp"}[b[1]]
	iport, eport, life := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:]), binary.BigEndian.Uint32(b[8:])
	g.requests = append(g.requests, fmt.Sprintf("%s %d->%d %ds", proto, eport, iport, life))
	switch {
	case g.mode == "silent":
		return len(b), nil
	case g.mode == "refuse":
		g.queue = append(g.queue, response(b[1], 2, g.epoch, iport, 0, 0))
	case life == 0:
		for k, ip := range g.maps {
			if strings.HasPrefix(k, proto+"/") && ip == iport {
				delete(g.maps, k)
			}
		}
		g.queue = append(g.queue, response(b[1], 0, g.epoch, iport, 0, 0))
	case g.mode == "proton":
		g.queue = append(g.queue, response(b[1], 0, g.epoch, iport, g.own, life))
	default:
		if eport == 0 {
			eport = iport
		}
		for {
			k := fmt.Sprintf("%s/%d", proto, eport)
			if ip, taken := g.maps[k]; !g.deny[eport] && (!taken || ip == iport) {
				g.maps[k] = iport
				break
			}
			eport++
		}
		g.queue = append(g.queue, response(b[1], 0, g.epoch, iport, eport, life))
	}
	return len(b), nil
}

func (g *fakeGateway) Read(b []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queue) == 0 {
		return 0, os.ErrDeadlineExceeded // time passes at once here
	}
	n := copy(b, g.queue[0])
	g.queue = g.queue[1:]
	return n, nil
}

func (*fakeGateway) SetReadDeadline(time.Time) error { return nil }

func (g *fakeGateway) Close() error {
	g.mu.Lock()
	g.closed++
	g.mu.Unlock()
	return nil
}

func TestAskRetransmits(t *testing.T) {
	g := newGateway("silent")
	_, err := ask(context.Background(), g, defaultRetransmit, "tcp", 40000, 40000, 60)
	if !errors.Is(err, ErrNoAnswer) || err.Error() != "no answer in 7.75s (5 tries)" {
		t.Errorf("ask of a silent gateway: %v", err)
	}
	if got := g.log(); len(got) != 5 {
		t.Errorf("requests sent: %q, want 5", got)
	}
}
