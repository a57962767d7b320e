package selftest

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/internal/golden"
	"github.com/wgns/wgns/wgns/config"
)

// fixedKey returns a key whose bytes are all b, so that golden files are stable.
func fixedKey(b byte) wgtypes.Key {
	var k wgtypes.Key
	for i := range k {
		k[i] = b
	}
	return k
}

func TestPeerUAPIGolden(t *testing.T) {
	got := peerUAPI(fixedKey(1), fixedKey(2))
	golden.Check(t, "peer-uapi", got)
}

func TestClientConfigGolden(t *testing.T) {
	golden.Check(t, "client-conf", clientConfig(fixedKey(3), fixedKey(4)))
}

// TestClientConfigParses feeds the client config to wgns's own parser: `wgns up` must accept it
// and read back the tunnel the self-test expects.
func TestClientConfigParses(t *testing.T) {
	clientKey, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	peerKey, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	// Parse, not Load: the self-test writes the file as root into its own /run directory, while
	// this test may run as any user (Load would then warn that root would refuse its directory).
	cfg, err := config.Parse(filepath.Join(stateDir, tunnelName+".conf"), []byte(clientConfig(clientKey, peerKey.PublicKey())))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings %q, want none", cfg.Warnings)
	}
	if cfg.Interface.PublicKey != clientKey.PublicKey() {
		t.Errorf("public key %v, want %v", cfg.Interface.PublicKey, clientKey.PublicKey())
	}
	if !cfg.Interface.PrivateKey.Equal(config.NewSecret(clientKey)) {
		t.Error("the private key did not survive the round trip")
	}
	type view struct {
		Addresses, AllowedIPs []netip.Prefix
		DNS                   []netip.Addr
		PeerKey               wgtypes.Key
		Endpoint              string
		Keepalive, Peers      int
		Firewall              bool
	}
	got := view{Addresses: cfg.Interface.Addresses, DNS: cfg.Interface.DNS, Peers: len(cfg.Peers),
		Firewall: cfg.Namespace.Firewall}
	if len(cfg.Peers) > 0 {
		p := cfg.Peers[0]
		got.PeerKey, got.Endpoint, got.AllowedIPs, got.Keepalive = p.PublicKey, p.Endpoint, p.AllowedIPs, p.PersistentKeepalive
	}
	want := view{
		Addresses:  []netip.Prefix{clientTun4, clientTun6},
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
		DNS:        []netip.Addr{peerTun4.Addr()},
		PeerKey:    peerKey.PublicKey(),
		Endpoint:   "198.51.100.2:51820",
		Keepalive:  25, Peers: 1, Firewall: true,
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("parsed config (-want +got):\n%s", diff)
	}
}

// TestPeerUAPIShape checks what the golden file cannot: every line is key=value with a key
// device.IpcSet knows, and the keys are the ones given.
func TestPeerUAPIShape(t *testing.T) {
	peerKey, clientKey := fixedKey(0xaa), fixedKey(0xbb)
	known := []string{"private_key", "listen_port", "replace_peers", "public_key", "replace_allowed_ips", "allowed_ip"}
	text := peerUAPI(peerKey, clientKey)
	if !strings.HasSuffix(text, "\n") || strings.Contains(text, "\n\n") {
		t.Fatalf("UAPI text must be lines without a blank one (a blank line ends it on the peer's stdin):\n%s", text)
	}
	for line := range strings.Lines(text) {
		k, _, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		if !ok || !slices.Contains(known, k) {
			t.Errorf("line %q: not a known UAPI key=value", line)
		}
	}
	if !strings.Contains(text, "private_key="+strings.Repeat("aa", 32)+"\n") ||
		!strings.Contains(text, "public_key="+strings.Repeat("bb", 32)+"\n") {
		t.Errorf("keys not in the UAPI text as hex:\n%s", text)
	}
}
