package wgns

import (
	"context"
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wgns/wgns/internal/golden"
)

// The holder recovers its device from the config as it was read at up: a changed file (a user
// who could write it appended "Firewall = off") changes nothing until an admin's up or repair.
func TestRecoverUsesTheConfigReadAtUp(t *testing.T) {
	f := newFakeSys()
	cfg := testConfig(t, "")
	f.configs[cfg.Path] = testConfig(t, "[Namespace]\nFirewall = off\n") // the file as it is now
	tun, err, _ := upOnce(f, cfg, ModeUserspace)
	if err != nil {
		t.Fatal(err)
	}
	f.acts = nil
	tun.dev.close() // the device stops (its interface deleted)
	f.acts = nil
	actions, err := tun.Recover()
	if err != nil {
		t.Fatal(err)
	}
	out := transcript("recover", f, actions, nil)
	if f.files["work"].fw != "ok" {
		t.Errorf("the firewall is %q after recovery, want it kept", f.files["work"].fw)
	}
	golden.Check(t, "recover", out)
}

func TestReresolve(t *testing.T) {
	f := newFakeSys()
	cfg := testConfig(t, "")
	// Two peers: one by host name, one by address.
	cfg.Peers = append(cfg.Peers, cfg.Peers[0])
	cfg.Peers[0].Endpoint, cfg.Peers[0].EndpointHost = "vpn.example.net:51820", "vpn.example.net"
	cfg.Peers[1].PublicKey = testOwnKey // any other key
	cfg.Peers[1].AllowedIPs = []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}
	f.names["vpn.example.net"] = netip.MustParseAddr("203.0.113.1") // what up resolved (the fake's resolve)
	tun, err, _ := upOnce(f, cfg, ModeKernel)
	if err != nil {
		t.Fatal(err)
	}
	if !tun.NamedEndpoints() {
		t.Fatal("NamedEndpoints is false with a host name")
	}
	dev := f.files["work"].links["work"].dev
	ctx := context.Background()

	// A recent handshake: nothing is resolved.
	dev.Peers[0].LastHandshakeTime = time.Now()
	f.acts = nil
	if moved, err := tun.Reresolve(ctx); err != nil || len(moved) != 0 || len(f.acts) != 0 {
		t.Errorf("with a fresh handshake: moved %q, err %v, acts %q", moved, err, f.acts)
	}
	// Stale, same address: resolved, not changed.
	dev.Peers[0].LastHandshakeTime = time.Now().Add(-ReresolveAfter - time.Second)
	if moved, err := tun.Reresolve(ctx); err != nil || len(moved) != 0 {
		t.Errorf("same address: moved %q, err %v", moved, err)
	}
	// Stale, the name moved: the peer follows it; the literal one is never looked up.
	f.names["vpn.example.net"] = netip.MustParseAddr("203.0.113.77")
	moved, err := tun.Reresolve(ctx)
	if err != nil || strings.Join(moved, ";") != "vpn.example.net:51820 -> 203.0.113.77:51820" {
		t.Errorf("moved %q, err %v", moved, err)
	}
	if got := f.files["work"].links["work"].dev.Peers; len(got) == 0 || got[0].Endpoint.String() != "203.0.113.77:51820" {
		t.Errorf("the device's peers after the move: %+v", got)
	}
	// A name that does not resolve keeps the old address.
	delete(f.names, "vpn.example.net")
	if moved, err := tun.Reresolve(ctx); err != nil || len(moved) != 0 {
		t.Errorf("unresolvable: moved %q, err %v", moved, err)
	}
}

func TestStatus(t *testing.T) {
	var out strings.Builder
	for _, tt := range []struct {
		title string
		brief bool
		setup func(f *fakeSys)
	}{
		{title: "ready, list", brief: true},
		{title: "ready, status"},
		{title: "holder gone", setup: func(f *fakeSys) { f.die() }},
		{title: "firewall altered, a program inside", setup: func(f *fakeSys) {
			f.files["work"].fw = "altered"
			f.files["work"].procs = []*fakeProc{{f: f, pid: 300, comm: "curl"}}
		}},
		{title: "namespace deleted", setup: func(f *fakeSys) { delete(f.files, "work") }},
	} {
		f := newFakeSys()
		cfg := testConfig(t, "")
		f.configs[cfg.Path] = cfg
		if _, err, _ := upOnce(f, cfg, ModeUserspace); err != nil {
			t.Fatal(err)
		}
		// An interface gets an IPv6 link-local address from the kernel: list does not show it.
		l := f.files["work"].links["work"]
		l.addrs = append(l.addrs, netip.MustParsePrefix("fe80::1/64"))
		if tt.setup != nil {
			tt.setup(f)
		}
		s, err := getStatus(f, "work", tt.brief)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.MarshalIndent(s, "", "  ")
		out.WriteString("#### " + tt.title + "\n" + string(b) + "\n")
	}
	if _, err := getStatus(newFakeSys(), "work", false); err == nil || err.Error() != `tunnel "work" is not up` {
		t.Errorf("status of a tunnel that is not up: %v", err)
	}
	golden.Check(t, "status", out.String())
}

// After the host's network changed, the peers are pointed at their (freshly resolved) endpoints
// again; after a resume, every peer also gets a new session at once.
func TestRebindAndRehandshake(t *testing.T) {
	f := newFakeSys()
	cfg := testConfig(t, "")
	cfg.Peers[0].Endpoint, cfg.Peers[0].EndpointHost = "vpn.example.net:51820", "vpn.example.net"
	f.names["vpn.example.net"] = netip.MustParseAddr("203.0.113.1")
	tun, err, _ := upOnce(f, cfg, ModeUserspace)
	if err != nil {
		t.Fatal(err)
	}
	if tun.UplinkChanged() {
		t.Error("the first look at the uplink says it changed")
	}
	if tun.UplinkChanged() {
		t.Error("an unchanged uplink says it changed")
	}
	f.uplink = "wlan0"
	if !tun.UplinkChanged() {
		t.Error("a new uplink is not seen")
	}
	f.names["vpn.example.net"] = netip.MustParseAddr("203.0.113.2")
	f.acts = nil
	done, err := tun.Rehandshake(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "rehandshake", transcript("rehandshake", f, done, nil))
}

// PeerStates reads the peers as status shows them, from the device alone: it works where the
// config cannot be read and sees no process.
func TestPeerStates(t *testing.T) {
	f := newFakeSys()
	cfg := testConfig(t, "")
	f.configs[cfg.Path] = cfg
	if _, err, _ := upOnce(f, cfg, ModeUserspace); err != nil {
		t.Fatal(err)
	}
	s, err := getStatus(f, "work", false)
	if err != nil {
		t.Fatal(err)
	}
	delete(f.configs, cfg.Path)
	f.files["work"].procs = []*fakeProc{{f: f, pid: 300, comm: "curl"}}
	peers, err := peerStates(f, "work")
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) == 0 || !reflect.DeepEqual(peers, s.Peers) {
		t.Errorf("PeerStates: %+v, want status's %+v", peers, s.Peers)
	}
	if _, err := peerStates(f, "other"); err == nil {
		t.Error("PeerStates of a tunnel that is not up: no error")
	}
	if _, err := peerStates(f, "../x"); err == nil {
		t.Error("PeerStates of a bad name: no error")
	}
}
