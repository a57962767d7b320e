package selftest

import (
	"fmt"
	"net"
	"net/netip"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/internal/uapi"
)

// The names of the hidden commands `wgns selftest` runs itself as. cmd/wgns must register its
// hidden commands under exactly these names.
const (
	// CmdWorld is PID 1 of the private world: it makes the world's mounts, runs CmdSteps as its
	// child, and reaps every orphan.
	CmdWorld = "selftest-world"
	// CmdSteps runs the steps inside the world.
	CmdSteps = "selftest-run"
	// CmdPeer is the local WireGuard peer; with --inside it is the stage already in the peer's
	// namespace.
	CmdPeer = "selftest-peer"
	// CmdProbe runs inside the tunnel (through `wgns exec`) and prints what it saw as JSON.
	CmdProbe = "selftest-probe"
)

// The private world. Only TEST-NET and ULA addresses are used, and only inside the world.
const (
	tunnelName = "st"           // the wgns tunnel under test
	peerNS     = "wgns-st-peer" // the peer's network namespace
	worldVeth  = "st-world"     // the world's end of the underlay
	peerVeth   = "st-peer"      // the peer's end
	peerTUN    = "stpeer"       // the peer's WireGuard TUN
	peerPort   = 51820
	dnsName    = "peer.wgns.test."
	echoPort   = 7
	stateDir   = "/run/wgns-selftest" // on the world's tmpfs
	hostNSEnv  = "WGNS_SELFTEST_HOST_NETNS"
)

var (
	worldUnder4 = netip.MustParsePrefix("198.51.100.1/24")
	worldUnder6 = netip.MustParsePrefix("fd00:198:51:100::1/64")
	peerUnder4  = netip.MustParsePrefix("198.51.100.2/24")
	peerUnder6  = netip.MustParsePrefix("fd00:198:51:100::2/64")
	peerTun4    = netip.MustParsePrefix("192.0.2.1/24")
	peerTun6    = netip.MustParsePrefix("fd00:192:0:2::1/64")
	clientTun4  = netip.MustParsePrefix("192.0.2.2/24")
	clientTun6  = netip.MustParsePrefix("fd00:192:0:2::2/64")
	// wrongAnswer4 and wrongAnswer6 are what the decoy DNS server answers: a lookup that leaked
	// to it gets addresses that the probe does not accept.
	wrongAnswer4 = netip.MustParseAddr("203.0.113.66")
	wrongAnswer6 = netip.MustParseAddr("fd00:203:0:113::66")
)

// peerZone is what the peer's DNS server knows; decoyZone is the decoy's.
var (
	peerZone  = dnsZone{dnsName: {peerTun4.Addr(), peerTun6.Addr()}}
	decoyZone = dnsZone{dnsName: {wrongAnswer4, wrongAnswer6}}
)

// underlayTargets are addresses outside the tunnel that listen in the world (the decoy DNS
// server's TCP port, the peer's echo port on its underlay): reachable from the world, and never
// from inside the tunnel.
var underlayTargets = []netip.AddrPort{
	netip.AddrPortFrom(worldUnder4.Addr(), 53),
	netip.AddrPortFrom(worldUnder6.Addr(), 53),
	netip.AddrPortFrom(peerUnder4.Addr(), echoPort),
	netip.AddrPortFrom(peerUnder6.Addr(), echoPort),
}

// decoySockets are unix sockets of host resolver services, made in the world with decoy
// listeners: `wgns exec` must hide them.
var decoySockets = []string{
	"/run/nscd/socket",
	"/run/systemd/resolve/io.systemd.Resolve",
}

// peerUAPI is the peer's configuration in WireGuard's cross-platform UAPI text (what
// device.IpcSet reads): its key and port, and the client as its only peer. It holds a private
// key: it travels on the peer's stdin only.
func peerUAPI(peerKey wgtypes.Key, clientPub wgtypes.Key) string {
	port := peerPort
	return uapi.Config(wgtypes.Config{PrivateKey: &peerKey, ListenPort: &port, ReplacePeers: true,
		Peers: []wgtypes.PeerConfig{{PublicKey: clientPub, ReplaceAllowedIPs: true, AllowedIPs: []net.IPNet{
			{IP: clientTun4.Addr().AsSlice(), Mask: net.CIDRMask(32, 32)},
			{IP: clientTun6.Addr().AsSlice(), Mask: net.CIDRMask(128, 128)},
		}}}})
}

// clientConfig is the wg-quick config `wgns up` gets: what a provider would hand out for this
// peer. It holds a private key: it is written with mode 0600 only.
func clientConfig(clientKey wgtypes.Key, peerPub wgtypes.Key) string {
	return fmt.Sprintf(`# wgns selftest: a throwaway tunnel to a local peer in a private world.
[Interface]
PrivateKey = %s
Address = %s, %s
DNS = %s

[Peer]
PublicKey = %s
Endpoint = %s
AllowedIPs = 0.0.0.0/0, ::/0
PersistentKeepalive = 25
`, clientKey, clientTun4, clientTun6, peerTun4.Addr(), peerPub, netip.AddrPortFrom(peerUnder4.Addr(), peerPort))
}
