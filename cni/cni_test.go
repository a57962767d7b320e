package cni

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/internal/golden"
	"github.com/wgns/wgns/wgns"
)

var (
	ownKey  = wgtypes.Key{1: 7, 31: 0x40}
	peerKey = wgtypes.Key{2: 9, 31: 0x40}.PublicKey()
	psk     = wgtypes.Key{3: 3}
)

// configText is a provider-style config with a private and a preshared key inline.
var configText = fmt.Sprintf(`[Interface]
PrivateKey = %s
Address = 192.0.2.2/24, fd00:192:0:2::2/64
DNS = 192.0.2.1, vpn.example

[Peer]
PublicKey = %s
PresharedKey = %s
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = 198.51.100.2:51820
`, ownKey, peerKey, psk)

// secrets are the strings that must never appear in a result, an error or a warning.
var secrets = []string{ownKey.String(), psk.String(), "PrivateKey =", "PresharedKey ="}

func noSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, k := range secrets {
		if strings.Contains(s, k) {
			t.Errorf("%s holds %q:\n%s", what, k, s)
		}
	}
}

func conf(t *testing.T, fields map[string]any) []byte {
	t.Helper()
	m := map[string]any{"cniVersion": "1.1.0", "name": "vpn", "type": "wgns"}
	for k, v := range fields {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The network configuration is refused with CNI's codes and a reason naming what is wrong.
func TestParseConf(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stdin []byte
		code  uint
		want  string
	}{
		{"not JSON", []byte("{"), types.ErrDecodingFailure, "decoding the network configuration: unexpected end of JSON input"},
		{"bad mode", conf(t, map[string]any{"mode": "fast"}), types.ErrInvalidNetworkConfig,
			`network vpn: mode "fast": want "kernel", "userspace" or none (kernel WireGuard when the kernel has it)`},
		{"bad interface", conf(t, map[string]any{"interface": "wg 0"}), types.ErrInvalidNetworkConfig,
			`network vpn: interface: invalid name "wg 0": a name is 1-15 characters of letters, digits and _=+.-, and not "." or ".."`},
		{"bad prevResult", conf(t, map[string]any{"prevResult": map[string]any{"ips": "x"}}), types.ErrDecodingFailure, "network vpn: could not parse prevResult"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConf(tc.stdin)
			var te *types.Error
			if !errors.As(err, &te) || te.Code != tc.code || !strings.HasPrefix(te.Msg, tc.want) {
				t.Errorf("parseConf: %#v, want code %d and %q", err, tc.code, tc.want)
			}
		})
	}
	c, err := parseConf(conf(t, map[string]any{"configText": configText, "interface": "tun0", "mode": "userspace", "keep": []string{"10.0.0.0/8"}}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Interface != "tun0" || c.Mode != "userspace" || len(c.Keep) != 1 || c.chained() {
		t.Errorf("parsed %+v", c)
	}
}

// Where the WireGuard config comes from: exactly one of a file and the text; every refusal says
// why, and none echoes a key.
func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields map[string]any
		want   string
	}{
		{"neither", nil, `network vpn: no WireGuard config: give "config" (a file such as /etc/wgns/vpn.conf) or "configText"`},
		{"both", map[string]any{"config": "/etc/wgns/vpn.conf", "configText": configText}, `network vpn: both "config" and "configText": give one`},
		{"relative", map[string]any{"config": "vpn.conf"}, `network vpn: config "vpn.conf": not an absolute path`},
		{"a key as PublicKey", map[string]any{"configText": strings.Replace(configText, peerKey.String(), ownKey.String(), 1)},
			"configText of network vpn:7: PublicKey is this interface's private key"},
		{"a bad line", map[string]any{"configText": configText + "Bogus = " + psk.String() + "\n"}, "configText of network vpn:11: "},
		{"Publish", map[string]any{"configText": configText + "\n[Namespace]\nPublish = 8080:80\n"},
			"configText of network vpn:13: Publish does not apply to a CNI attachment: publish the container's ports with its runtime"},
		{"PortForward", map[string]any{"configText": configText + "\n[Namespace]\nFirewall = on\nPortForward = natpmp\n"},
			"configText of network vpn:14: PortForward does not apply to a CNI attachment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConf(conf(t, tc.fields))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.load()
			var te *types.Error
			if !errors.As(err, &te) || te.Code != types.ErrInvalidNetworkConfig || !strings.HasPrefix(te.Msg, tc.want) {
				t.Errorf("load: %v, want code 7 and %q", err, tc.want)
			}
			if err != nil {
				noSecret(t, "the error", err.Error())
			}
		})
	}
	c, err := parseConf(conf(t, map[string]any{"configText": configText}))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := c.load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Path != "configText of network vpn" || cfg.Interface.PublicKey != ownKey.PublicKey() {
		t.Errorf("loaded %q with public key %s", cfg.Path, cfg.Interface.PublicKey)
	}
}

// ptpResult is what Debian's ptp plugin (with host-local) returns, as wgns gets it in prevResult.
const ptpResult = `{"cniVersion":"1.0.0","interfaces":[{"name":"veth1a2b3c4d","mac":"a6:41:0b:54:0e:1c"},{"name":"eth0","mac":"6e:91:33:2c:7f:10","sandbox":"/run/netns/cni-pod1"}],
"ips":[{"interface":1,"address":"203.0.113.70/26","gateway":"203.0.113.65"}],
"routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["203.0.113.65"]}}`

func chainedConf(t *testing.T, fields map[string]any) *netConf {
	t.Helper()
	var prev map[string]any
	if err := json.Unmarshal([]byte(ptpResult), &prev); err != nil {
		t.Fatal(err)
	}
	f := map[string]any{"cniVersion": "1.0.0", "configText": configText, "prevResult": prev}
	for k, v := range fields {
		f[k] = v
	}
	c, err := parseConf(conf(t, f))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// What ADD asks of wgns.Attach: standalone, the interface is CNI_IFNAME and nothing is kept;
// chained, it is wg0 beside the primary interface CNI_IFNAME, with the kept prefixes routed
// through the primary's gateway from prevResult.
func TestAttachOptions(t *testing.T) {
	key := wgns.AttachKey{Network: "vpn", ContainerID: "pod1", IfName: "eth0"}
	c, err := parseConf(conf(t, map[string]any{"configText": configText}))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := c.load()
	o, err := c.attachOptions(key, "/run/netns/cni-pod1", cfg)
	if err != nil || o.Interface != "eth0" || o.Primary != nil {
		t.Errorf("standalone: %+v, %v", o, err)
	}
	c, _ = parseConf(conf(t, map[string]any{"configText": configText, "keep": []string{"10.0.0.0/8"}}))
	if _, err := c.attachOptions(key, "/run/netns/cni-pod1", cfg); err == nil || !strings.Contains(err.Error(), `"keep" needs a primary interface to keep the prefixes on`) {
		t.Errorf("standalone with keep: %v", err)
	}
	// Beside the pod's own network (a Multus secondary network, CNI_IFNAME net1): the pod's
	// eth0 is named, its gateways are Attach's to find.
	c, _ = parseConf(conf(t, map[string]any{"configText": configText, "keep": []string{"10.0.0.0/8"}, "primary": "eth0"}))
	secondary := wgns.AttachKey{Network: "vpn", ContainerID: "pod1", IfName: "net1"}
	o, err = c.attachOptions(secondary, "/run/netns/cni-pod1", cfg)
	if err != nil || o.Interface != "net1" || o.Primary == nil || o.Primary.Interface != "eth0" || len(o.Primary.Keep) != 1 || o.Primary.Gateways != nil {
		t.Errorf("secondary: %+v, %+v, %v", o, o.Primary, err)
	}
	if _, err := chainedConf(t, map[string]any{"primary": "eth1"}).attachOptions(key, "/run/netns/cni-pod1", cfg); err == nil ||
		err.Error() != `network vpn: primary "eth1": chained, the primary interface is the one the plugins before wgns made, eth0` {
		t.Errorf("chained with another primary: %v", err)
	}

	c = chainedConf(t, map[string]any{"keep": []string{"203.0.113.64/26", "fd00:10::/64"}})
	o, err = c.attachOptions(key, "/run/netns/cni-pod1", cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := &wgns.Primary{Interface: "eth0", Keep: []netip.Prefix{netip.MustParsePrefix("203.0.113.64/26"), netip.MustParsePrefix("fd00:10::/64")},
		Gateways: []netip.Addr{netip.MustParseAddr("203.0.113.65")}}
	if o.Interface != "wg0" || fmt.Sprint(o.Primary) != fmt.Sprint(want) {
		t.Errorf("chained: interface %s, primary %+v, want wg0 and %+v", o.Interface, o.Primary, want)
	}
	for _, bad := range []struct{ keep, want string }{
		{"10.1.2.3/8", "network vpn: keep: 10.1.2.3/8 has host bits set (the prefix is 10.0.0.0/8)"},
		{"10.0.0.0", `network vpn: keep: "10.0.0.0" is not a prefix (like 10.244.0.0/16)`},
	} {
		c := chainedConf(t, map[string]any{"keep": []string{bad.keep}})
		if _, err := c.attachOptions(key, "/run/netns/cni-pod1", cfg); err == nil || err.Error() != bad.want {
			t.Errorf("keep %s: %v, want %q", bad.keep, err, bad.want)
		}
	}
}

// The result of ADD in each version the plugin speaks, standalone and chained after ptp: the
// WireGuard interface in the container, its addresses, the tunnel's routes (the ptp default
// route replaced), the kept prefixes through ptp's gateway, the tunnel's DNS. No key.
func TestResult(t *testing.T) {
	key := wgns.AttachKey{Network: "vpn", ContainerID: "pod1", IfName: "eth0"}
	var out strings.Builder
	for _, tc := range []struct {
		name string
		c    *netConf
	}{
		{"standalone", func() *netConf { c, _ := parseConf(conf(t, map[string]any{"configText": configText})); return c }()},
		{"chained after ptp", chainedConf(t, map[string]any{"keep": []string{"203.0.113.64/26", "198.18.0.0/15"}})},
	} {
		cfg, err := tc.c.load()
		if err != nil {
			t.Fatal(err)
		}
		o, err := tc.c.attachOptions(key, "/run/netns/cni-pod1", cfg)
		if err != nil {
			t.Fatal(err)
		}
		var prev *types100.Result
		if tc.c.chained() {
			if prev, err = types100.NewResultFromResult(tc.c.PrevResult); err != nil {
				t.Fatal(err)
			}
		}
		res := result(prev, o, cfg)
		for _, v := range []string{"1.1.0", "1.0.0", "0.4.0"} {
			r, err := res.GetAsVersion(v)
			if err != nil {
				t.Fatalf("%s as %s: %v", tc.name, v, err)
			}
			var b bytes.Buffer
			if err := r.PrintTo(&b); err != nil {
				t.Fatal(err)
			}
			noSecret(t, "the result", b.String())
			fmt.Fprintf(&out, "#### %s, CNI %s\n%s\n", tc.name, v, b.String())
		}
	}
	golden.Check(t, "result", out.String())
}

// The description of an attachment its holder gets on a pipe carries the configText (it has
// nowhere else to come from) and nothing more; the holder parses it under the same name.
func TestHolderSpec(t *testing.T) {
	c := chainedConf(t, map[string]any{"keep": []string{"203.0.113.64/26"}})
	cfg, _ := c.load()
	o, err := c.attachOptions(wgns.AttachKey{Network: "vpn", ContainerID: "pod1", IfName: "eth0"}, "/run/netns/cni-pod1", cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newHolderSpec(c, o)
	if err != nil {
		t.Fatal(err)
	}
	var s holderSpec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.ConfigText != configText || s.ConfigName != "configText of network vpn" || s.Interface != "wg0" || s.Primary.Interface != "eth0" || s.IfName != "eth0" {
		t.Errorf("holder spec %+v", s)
	}
}
