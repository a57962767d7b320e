package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// The addresses every peer world uses (TEST-NET and ULA only).
const (
	hostUnderlay4 = "198.51.100.1"
	peerUnderlay4 = "198.51.100.2"
	hostUnderlay6 = "fd00:198:51:100::1"
	peerUnderlay6 = "fd00:198:51:100::2"
	peerTunnel4   = "192.0.2.1"
	clientTunnel4 = "192.0.2.2"
	peerTunnel6   = "fd00:192:0:2::1"
	clientTunnel6 = "fd00:192:0:2::2"
	peerPort      = 51820
	outside4      = "203.0.113.9" // reachable from the host world, never in AllowedIPs
)

// peer is a WireGuard server no one here wrote: Debian's wireguard-go, configured with wg(8),
// in a namespace of its own joined to the test world (which plays the host) by a veth pair.
type peer struct {
	NS         string // its namespace
	Dev        string // its WireGuard interface
	Key        wgtypes.Key
	ClientKey  wgtypes.Key
	ConfigPath string // a client config for wgns, provider style
	Underlay   underlay
	proc       *exec.Cmd
}

// underlay is how a peer's namespace is joined to the test world: the addresses of the world's
// end and of the peer's end of their veth pair.
type underlay struct {
	Host4, Peer4, Host6, Peer6 string
	Bits4, Bits6               int
}

// mainUnderlay is the underlay of newPeer's peer.
var mainUnderlay = underlay{hostUnderlay4, peerUnderlay4, hostUnderlay6, peerUnderlay6, 24, 64}

// newPeer builds the peer world; t.Cleanup removes it. tunnel is the name the client config's
// file gets (and so the wgns tunnel's default name).
func newPeer(t *testing.T, tunnel string) *peer {
	t.Helper()
	return newPeerAt(t, tunnel, mainUnderlay, wgtypes.Key{})
}

// newPeerAt builds a peer world joined to the test world by underlay u, whose peer accepts the
// client key clientKey (a new one when zero): a second server of one provider has u of its own
// and the first one's client key. Only mainUnderlay's world routes outside4 to its peer.
func newPeerAt(t *testing.T, tunnel string, u underlay, clientKey wgtypes.Key) *peer {
	t.Helper()
	p := &peer{NS: "peer-" + tunnel, Dev: "wgp" + tunnel, Underlay: u, ClientKey: clientKey}
	if len(p.NS) > 15 {
		p.NS = p.NS[:15]
	}
	if len(p.Dev) > 15 {
		p.Dev = p.Dev[:15]
	}
	var err error
	if p.Key, err = wgtypes.GeneratePrivateKey(); err != nil {
		t.Fatal(err)
	}
	if p.ClientKey == (wgtypes.Key{}) {
		if p.ClientKey, err = wgtypes.GeneratePrivateKey(); err != nil {
			t.Fatal(err)
		}
	}
	vh, vp := "vh-"+tunnel, "vp-"+tunnel
	if len(vh) > 15 {
		vh, vp = vh[:15], vp[:15]
	}
	mustRun(t, "ip", "netns", "add", p.NS)
	t.Cleanup(func() { run("ip", "netns", "del", p.NS) })
	mustRun(t, "ip", "link", "add", vh, "type", "veth", "peer", "name", vp, "netns", p.NS)
	t.Cleanup(func() { run("ip", "link", "del", vh) })
	mustRun(t, "ip", "addr", "add", fmt.Sprintf("%s/%d", u.Host4, u.Bits4), "dev", vh)
	mustRun(t, "ip", "-6", "addr", "add", fmt.Sprintf("%s/%d", u.Host6, u.Bits6), "dev", vh, "nodad")
	mustRun(t, "ip", "link", "set", vh, "up")
	mustRun(t, "ip", "-n", p.NS, "addr", "add", fmt.Sprintf("%s/%d", u.Peer4, u.Bits4), "dev", vp)
	mustRun(t, "ip", "-n", p.NS, "-6", "addr", "add", fmt.Sprintf("%s/%d", u.Peer6, u.Bits6), "dev", vp, "nodad")
	mustRun(t, "ip", "-n", p.NS, "link", "set", vp, "up")
	mustRun(t, "ip", "-n", p.NS, "link", "set", "lo", "up")
	if u == mainUnderlay {
		// The host world can reach an address that is not in any AllowedIPs: a leak would go there.
		mustRun(t, "ip", "-n", p.NS, "addr", "add", outside4+"/32", "dev", "lo")
		mustRun(t, "ip", "route", "add", outside4+"/32", "via", peerUnderlay4)
	}
	p.start(t)
	p.ConfigPath = filepath.Join(t.TempDir(), tunnel+".conf")
	p.writeConfig(t, p.ConfigPath, "")
	return p
}

// start starts the peer's wireguard-go and configures it: its key, port and client, and its
// tunnel addresses. A peer stopped (its process killed) can be started again.
func (p *peer) start(t *testing.T) {
	t.Helper()
	p.proc = exec.Command("ip", "netns", "exec", p.NS, "wireguard-go", "-f", p.Dev)
	p.proc.Env = append(os.Environ(), "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1", "LOG_LEVEL=error")
	var out bytes.Buffer
	p.proc.Stdout, p.proc.Stderr = &out, &out
	if err := p.proc.Start(); err != nil {
		t.Fatalf("starting Debian's wireguard-go: %v", err)
	}
	proc := p.proc
	t.Cleanup(func() {
		proc.Process.Kill()
		proc.Wait()
		os.Remove("/var/run/wireguard/" + p.Dev + ".sock")
	})
	waitFor(t, 5*time.Second, "wireguard-go's UAPI socket", func() bool {
		_, err := os.Stat("/var/run/wireguard/" + p.Dev + ".sock")
		return err == nil
	})
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "peer.key")
	if err := os.WriteFile(keyFile, []byte(p.Key.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "ip", "netns", "exec", p.NS, "wg", "set", p.Dev, "private-key", keyFile,
		"listen-port", fmt.Sprint(peerPort), "peer", p.ClientKey.PublicKey().String(),
		"allowed-ips", clientTunnel4+"/32,"+clientTunnel6+"/128")
	mustRun(t, "ip", "-n", p.NS, "addr", "add", peerTunnel4+"/24", "dev", p.Dev)
	mustRun(t, "ip", "-n", p.NS, "-6", "addr", "add", peerTunnel6+"/64", "dev", p.Dev, "nodad")
	mustRun(t, "ip", "-n", p.NS, "link", "set", p.Dev, "up")
}

// stop kills the peer's wireguard-go, and waits until it is gone with its interface.
func (p *peer) stop(t *testing.T) {
	t.Helper()
	p.proc.Process.Kill()
	p.proc.Wait()
	waitFor(t, 5*time.Second, p.Dev+" gone", func() bool {
		_, err := run("ip", "-n", p.NS, "link", "show", p.Dev)
		return err != nil
	})
	os.Remove("/var/run/wireguard/" + p.Dev + ".sock")
}

// writeConfig writes a provider-style client config for this peer, with extra appended.
func (p *peer) writeConfig(t *testing.T, path, extra string) {
	t.Helper()
	conf := fmt.Sprintf(`# A config as a VPN provider hands it out.
[Interface]
PrivateKey = %s
Address = %s/24, %s/64
DNS = %s

[Peer]
PublicKey = %s
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = %s:%d
PersistentKeepalive = 25
%s`, p.ClientKey, clientTunnel4, clientTunnel6, peerTunnel4, p.Key.PublicKey(), p.Underlay.Peer4, peerPort, extra)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
}
