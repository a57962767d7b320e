package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// TestIntegrationInvalidConfigsLeaveNoTrace: `wgns up` refuses each broken config with
// FILE:LINE: and a reason, exits non-zero, and the world is exactly as before.
func TestIntegrationInvalidConfigsLeaveNoTrace(t *testing.T) {
	own, _ := wgtypes.GeneratePrivateKey()
	peerKey, _ := wgtypes.GeneratePrivateKey()
	pub := peerKey.PublicKey().String()
	iface := "[Interface]\nPrivateKey = " + own.String() + "\nAddress = 192.0.2.2/24\n"
	peer := "[Peer]\nPublicKey = " + pub + "\nEndpoint = 198.51.100.2:51820\nAllowedIPs = 0.0.0.0/0\n"
	dir := t.TempDir()
	groupReadable := filepath.Join(dir, "group.key")
	os.WriteFile(groupReadable, []byte(own.String()), 0o640)

	cases := []struct {
		name, conf string
		line       int    // the line the error must name
		want       string // a part of the reason
	}{
		{"no interface", peer, 0, "[Interface]"},
		{"no peer", iface, 0, "[Peer]"},
		{"short key", strings.Replace(iface, own.String(), own.String()[:43], 1) + peer, 2, "PrivateKey"},
		{"long key", strings.Replace(iface, own.String(), own.String()+"A", 1) + peer, 2, "PrivateKey"},
		{"bad base64", strings.Replace(iface, own.String(), strings.Repeat("!", 43)+"=", 1) + peer, 2, "PrivateKey"},
		{"zero key", strings.Replace(iface, own.String(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 1) + peer, 2, "PrivateKey"},
		{"bad address", strings.Replace(iface, "192.0.2.2/24", "192.0.2.300/24", 1) + peer, 3, "Address"},
		{"bad prefix", strings.Replace(iface, "192.0.2.2/24", "192.0.2.2/33", 1) + peer, 3, "Address"},
		{"endpoint without port", iface + strings.Replace(peer, ":51820", "", 1), 6, "Endpoint"},
		{"endpoint port 0", iface + strings.Replace(peer, ":51820", ":0", 1), 6, "Endpoint"},
		{"endpoint port 70000", iface + strings.Replace(peer, ":51820", ":70000", 1), 6, "Endpoint"},
		{"endpoint broken v6", iface + strings.Replace(peer, "198.51.100.2:51820", "[::1", 1), 6, "Endpoint"},
		{"MTU 0", iface + "MTU = 0\n" + peer, 4, "MTU"},
		{"MTU abc", iface + "MTU = abc\n" + peer, 4, "MTU"},
		{"MTU 1279 with IPv6", iface + "Address = fd00::2/64\nMTU = 1279\n" + peer, 5, "MTU"},
		{"MTU 65536", iface + "MTU = 65536\n" + peer, 4, "MTU"},
		{"hook in a peer", iface + peer + "PostUp = iptables -F\n", 8, "PostUp belongs in [Interface]"},
		{"unknown key", iface + "Colour = blue\n" + peer, 4, "Colour"},
		{"line outside a section", "Address = 192.0.2.2/24\n" + iface + peer, 1, ""},
		{"duplicate interface", iface + iface + peer, 4, "Interface"},
		{"peer is ourselves", iface + strings.Replace(peer, pub, own.PublicKey().String(), 1), 5, "own"},
		{"shared AllowedIPs", iface + peer + strings.Replace(peer, pub, mustKey(t), 1), 0, "AllowedIPs"},
		{"key file readable by group", strings.Replace(iface, "PrivateKey = "+own.String(), "PrivateKeyFile = "+groupReadable, 1) + peer, 2, "group"},
		{"binary", "[Interface]\nPrivateKey = \x00\x01\x02\n", 0, ""},
		{"bad DNS", iface + "DNS = 192.0.2.1, bad..domain\n" + peer, 4, "DNS"},
		{"bad AllowedIPs", iface + strings.Replace(peer, "0.0.0.0/0", "0.0.0.0/0, 10.0.0.0/40", 1), 7, "AllowedIPs"},
		{"keepalive", iface + peer + "PersistentKeepalive = 70000\n", 8, "PersistentKeepalive"},
		{"bad inbound port", iface + peer + "[Namespace]\nAllowInbound = 51413/sctp\n", 9, "AllowInbound"},
	}
	before := snapshot(t, "bad")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.conf")
			if err := os.WriteFile(path, []byte(c.conf), 0o600); err != nil {
				t.Fatal(err)
			}
			_, e, code := wgnsRun(t, "up", "--userspace", path)
			if code == 0 {
				t.Fatalf("up accepted it")
			}
			prefix := regexp.QuoteMeta(path) + `:\d+: `
			if c.line > 0 {
				prefix = regexp.QuoteMeta(path) + `:` + strconv.Itoa(c.line) + `: `
			}
			if !regexp.MustCompile(`(?m)^wgns: `+prefix).MatchString(e) && !(c.line == 0 && strings.Contains(e, path)) {
				t.Errorf("error does not start with %s:LINE: %q", path, e)
			}
			if !strings.Contains(e, c.want) {
				t.Errorf("error %q does not mention %q", e, c.want)
			}
			for _, k := range []string{own.String(), peerKey.String()} {
				if strings.Contains(e, k) || strings.Contains(e, k[:20]) {
					t.Errorf("error shows a private key: %q", e)
				}
			}
			if after := snapshot(t, "bad"); after != before {
				t.Errorf("a refused config changed the world:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

func mustKey(t *testing.T) string {
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey().String()
}
