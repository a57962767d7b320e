package selftest

import (
	"net/netip"
	"os"
	"slices"
	"testing"

	"golang.zx2c4.com/wireguard/tun"
)

// fakeTUN records what is written to it.
type fakeTUN struct {
	tun.Device
	written [][]byte
}

func (f *fakeTUN) Write(bufs [][]byte, offset int) (int, error) {
	for _, b := range bufs {
		f.written = append(f.written, b[offset:])
	}
	return len(bufs), nil
}

var _ tun.Device = (*filterTUN)(nil)

// packet returns an IP packet header (version and destination only filled in) after offset
// bytes of room, as WireGuard hands them to its TUN.
func packet(offset int, dst string) []byte {
	a := netip.MustParseAddr(dst)
	if a.Is4() {
		p := make([]byte, offset+20)
		p[offset] = 0x45
		copy(p[offset+16:], a.AsSlice())
		return p
	}
	p := make([]byte, offset+40)
	p[offset] = 0x60
	copy(p[offset+24:], a.AsSlice())
	return p
}

func TestFilterTUN(t *testing.T) {
	const offset = 16
	tests := []struct {
		name    string
		bufs    [][]byte
		kept    []string
		dropped int64
	}{
		{"tunnel v4 and v6 kept", [][]byte{packet(offset, "192.0.2.1"), packet(offset, "fd00:192:0:2::1")},
			[]string{"192.0.2.1", "fd00:192:0:2::1"}, 0},
		{"underlay dropped", [][]byte{packet(offset, "198.51.100.2"), packet(offset, "192.0.2.77"),
			packet(offset, "fd00:198:51:100::1"), packet(offset, "198.51.100.1")},
			[]string{"192.0.2.77"}, 3},
		{"garbage dropped", [][]byte{make([]byte, offset), append(make([]byte, offset), 0x45, 0), append(make([]byte, offset), 0x20)},
			nil, 3},
		{"none", nil, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner := &fakeTUN{}
			f := &filterTUN{Device: inner, allow: []netip.Prefix{peerTun4.Masked(), peerTun6.Masked()}}
			n, err := f.Write(tt.bufs, offset)
			if err != nil || n != len(tt.bufs) {
				t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(tt.bufs))
			}
			var kept []string
			for _, p := range inner.written {
				d, ok := destination(p)
				if !ok {
					t.Fatalf("the filter passed on a packet without a destination: %x", p)
				}
				kept = append(kept, d.String())
			}
			if !slices.Equal(kept, tt.kept) {
				t.Errorf("passed on %v, want %v", kept, tt.kept)
			}
			if got := f.dropped.Load(); got != tt.dropped {
				t.Errorf("dropped %d, want %d", got, tt.dropped)
			}
		})
	}
}

func TestCheckWorldRefusesTheHost(t *testing.T) {
	self, err := nsIDOf("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, env string
		role      worldRole
	}{
		{"no world at all", "", roleSteps},
		{"host namespace, steps", self, roleSteps},
		{"host namespace, init", self, roleInit},
		{"host namespace, helper", self, roleHelper},
		{"another namespace, but not PID 1", "1:1", roleInit},
		{"another namespace, but PID 1 is not the world's", "1:1", roleHelper},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(hostNSEnv, tt.env)
			if tt.env == "" {
				os.Unsetenv(hostNSEnv)
			}
			if err := checkWorld(tt.role); err == nil {
				t.Errorf("checkWorld(%v) with %s=%q: nil, want a refusal", tt.role, hostNSEnv, tt.env)
			}
		})
	}
}

func TestNameservers(t *testing.T) {
	got := nameservers([]byte("# c\nnameserver 192.0.2.1\n  nameserver   fd00::1 \nsearch x\nnameserver\noptions ndots:1\n"))
	if want := []string{"192.0.2.1", "fd00::1"}; !slices.Equal(got, want) {
		t.Errorf("nameservers = %q, want %q", got, want)
	}
}
