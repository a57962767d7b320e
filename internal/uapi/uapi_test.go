package uapi

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

func TestConfig(t *testing.T) {
	var priv, pub, psk wgtypes.Key
	for i := range priv {
		priv[i], pub[i], psk[i] = 1, 2, 3
	}
	port := 51820
	ka := 25 * time.Second
	_, v4, _ := net.ParseCIDR("0.0.0.0/0")
	_, v6, _ := net.ParseCIDR("fd00::/64")
	cfg := wgtypes.Config{PrivateKey: &priv, ListenPort: &port, ReplacePeers: true, Peers: []wgtypes.PeerConfig{
		{PublicKey: pub, PresharedKey: &psk, Endpoint: net.UDPAddrFromAddrPort(netip.MustParseAddrPort("[fd00::1]:51820")),
			PersistentKeepaliveInterval: &ka, ReplaceAllowedIPs: true, AllowedIPs: []net.IPNet{*v4, *v6}},
		{PublicKey: psk, UpdateOnly: true, Endpoint: net.UDPAddrFromAddrPort(netip.MustParseAddrPort("198.51.100.2:1"))},
		{PublicKey: priv, Remove: true},
	}}
	want := `private_key=0101010101010101010101010101010101010101010101010101010101010101
listen_port=51820
replace_peers=true
public_key=0202020202020202020202020202020202020202020202020202020202020202
preshared_key=0303030303030303030303030303030303030303030303030303030303030303
endpoint=[fd00::1]:51820
persistent_keepalive_interval=25
replace_allowed_ips=true
allowed_ip=0.0.0.0/0
allowed_ip=fd00::/64
public_key=0303030303030303030303030303030303030303030303030303030303030303
update_only=true
endpoint=198.51.100.2:1
public_key=0101010101010101010101010101010101010101010101010101010101010101
remove=true
`
	if got := Config(cfg); got != want {
		t.Errorf("Config:\n%s\nwant:\n%s", got, want)
	}
}
