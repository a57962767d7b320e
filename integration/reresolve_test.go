package integration

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestIntegrationReresolve: a peer's endpoint given as a host name is resolved again, in the
// host world, when handshakes stop coming (here after the test hook's 1 s instead of 135 s), and
// the tunnel follows the name to its new address, as wg-quick's reresolve-dns does.
func TestIntegrationReresolve(t *testing.T) {
	const name = "tn"
	p := newPeer(t, name)
	const second = "198.51.100.3"
	mustRun(t, "ip", "-n", p.NS, "addr", "add", second+"/24", "dev", "vp-"+name)
	hosts, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile("/etc/hosts", hosts, 0o644) })
	setHost := func(addr string) {
		if err := os.WriteFile("/etc/hosts", append(append([]byte{}, hosts...), []byte(addr+" vpn.wgns.test\n")...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setHost(peerUnderlay4)
	conf, err := os.ReadFile(p.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.ConfigPath, []byte(strings.Replace(string(conf), "Endpoint = "+peerUnderlay4, "Endpoint = vpn.wgns.test", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, e, code := wgnsRunEnv(t, []string{"WGNS_TEST_RERESOLVE_EVERY=1s"}, "up", p.ConfigPath); code != 0 {
		t.Fatalf("up: %s", e)
	}
	t.Cleanup(func() { wgnsRun(t, "down", "--force", name) })
	mustWgns(t, "exec", name, "--", "ping", "-c1", "-W5", peerTunnel4)
	if ep := status(t, name).Peers[0].Endpoint; ep != peerUnderlay4+":51820" {
		t.Fatalf("endpoint %q, want %s:51820", ep, peerUnderlay4)
	}
	setHost(second)
	waitFor(t, 15*time.Second, "the holder to move the endpoint to "+second, func() bool {
		return status(t, name).Peers[0].Endpoint == second+":51820"
	})
	mustWgns(t, "exec", name, "--", "ping", "-c1", "-W5", peerTunnel4)
}
