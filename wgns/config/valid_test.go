package config

import (
	"io/fs"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		file string // config name; default wg0.conf
		conf string
		fs   fakeFS
		uid  uint32 // the user wgns runs as; root by default
		want string // dump, with {P*} keys expanded
		psk  []string
	}{
		{
			name: "Mullvad style",
			conf: `[Interface]
# Device: Quick Otter
PrivateKey = {A}
Address = 198.51.100.7/32,fd00:aaaa:bbbb:cc01::7:6/128
DNS = 198.51.100.1

[Peer]
PublicKey = {PB}
AllowedIPs = 0.0.0.0/0,::/0
Endpoint = 203.0.113.10:51820
`,
			want: `path wg0.conf
interface private=set public={PA}
  addresses=[198.51.100.7/32 fd00:aaaa:bbbb:cc01::7:6/128] dns=[198.51.100.1] search=[] mtu=0 listenport=0
peer line=7 public={PB} psk=none keepalive=0
  endpoint="203.0.113.10:51820" host="203.0.113.10" port=51820 allowed=[0.0.0.0/0 ::/0]
namespace firewall=true inbound=[]
`,
		},
		{
			name: "Proton style",
			conf: `[Interface]
# Key for laptop
# Bouncing = 3
# NetShield = 1
# Moderate NAT = off
# VPN Accelerator = on
PrivateKey = {A}
Address = 192.0.2.2/32
DNS = 192.0.2.1

[Peer]
# NL#123
PublicKey = {PB}
AllowedIPs = 0.0.0.0/0
Endpoint = 203.0.113.20:51820
`,
			want: `path wg0.conf
interface private=set public={PA}
  addresses=[192.0.2.2/32] dns=[192.0.2.1] search=[] mtu=0 listenport=0
peer line=11 public={PB} psk=none keepalive=0
  endpoint="203.0.113.20:51820" host="203.0.113.20" port=51820 allowed=[0.0.0.0/0]
namespace firewall=true inbound=[]
`,
		},
		{
			name: "everything, loosely written",
			file: "/etc/wgns/work.conf",
			conf: "\ufeff# CRLF, a BOM, odd case, tabs, trailing comments\r\n" +
				"[ interface ]\r\n" +
				"privatekeyfile\t=\tkeys/work.key   # relative to the config\r\n" +
				"ADDRESS = 192.0.2.2/24, , fd00::2\r\n" +
				"Address = 198.51.100.9\r\n" +
				"DNS = fd00:1::53, 192.0.2.1,corp.example.com, example.org.\r\n" +
				"MTU = 1280\r\n" +
				"ListenPort = 0\r\n" +
				"Table = off\r\n" +
				"FwMark = 0x1234\r\n" +
				"SaveConfig = true\r\n" +
				"\r\n" +
				"[PEER]\r\n" +
				"PublicKey={PB}\r\n" +
				"PresharedKeyFile = /etc/wgns/work.psk\r\n" +
				"Endpoint = vpn.Example.net:443\r\n" +
				"AllowedIPs = 198.51.100.77/24, fd00:1::1/64\r\n" +
				"AllowedIPs = 192.0.2.1\r\n" +
				"PersistentKeepalive = Off\r\n" +
				"[Peer]\r\n" +
				"PublicKey = {PC}\r\n" +
				"PresharedKey = {PSK}\r\n" +
				"Endpoint = [fd00:0::1]:51820\r\n" +
				"PersistentKeepalive = 25\r\n" +
				"[Namespace]\r\n" +
				"AllowInbound = 51413/tcp, 51413/UDP\r\n" +
				"AllowInbound = 8080/tcp\r\n" +
				"Firewall = yes\r\n",
			fs: fakeFS{
				"/etc/wgns/keys/work.key": rootFile("\n" + keyA + "\n"),
				"/etc/wgns/work.psk":      rootFile(keyPSK),
			},
			psk: []string{keyPSK, keyPSK},
			want: `path /etc/wgns/work.conf
interface private=set public={PA}
  addresses=[192.0.2.2/24 fd00::2/128 198.51.100.9/32] dns=[fd00:1::53 192.0.2.1] search=["corp.example.com" "example.org."] mtu=1280 listenport=0
peer line=13 public={PB} psk=set keepalive=0
  endpoint="vpn.Example.net:443" host="vpn.Example.net" port=443 allowed=[198.51.100.0/24 fd00:1::/64 192.0.2.1/32]
peer line=20 public={PC} psk=set keepalive=25
  endpoint="[fd00::1]:51820" host="fd00::1" port=51820 allowed=[]
namespace firewall=true inbound=[51413/tcp 51413/udp 8080/tcp]
warning /etc/wgns/work.conf:9: Table means nothing inside a namespace; ignored
warning /etc/wgns/work.conf:10: FwMark means nothing inside a namespace; ignored
warning /etc/wgns/work.conf:11: SaveConfig means nothing inside a namespace; ignored
warning /etc/wgns/work.conf:20: [Peer] has no AllowedIPs; nothing will be sent to it
`,
		},
		{
			name: "hooks and ignored keys, each line warned about",
			conf: `[Interface]
PrivateKey = {A}
Address = 192.0.2.2/32
PreUp = iptables -I OUTPUT -j REJECT # kill switch
PostUp = iptables -I OUTPUT ! -o %i -m mark ! --mark $(wg show %i fwmark) -m addrtype ! --dst-type LOCAL -j REJECT && ip6tables -I OUTPUT ! -o %i -j REJECT
PostUp = resolvectl dns %i 192.0.2.1; resolvectl domain %i "~."
PreDown = iptables -D OUTPUT ! -o %i -j REJECT
postdown = touch /tmp/wgns-hook-ran
Table = off
Table = 1234
FwMark = 51820
SaveConfig = true

[Peer]
PublicKey = {PB}
AllowedIPs = 0.0.0.0/0
`,
			want: `path wg0.conf
interface private=set public={PA}
  addresses=[192.0.2.2/32] dns=[] search=[] mtu=0 listenport=0
peer line=14 public={PB} psk=none keepalive=0
  endpoint="" host="" port=0 allowed=[0.0.0.0/0]
namespace firewall=true inbound=[]
warning wg0.conf:4: PreUp is not run: hooks would run as root on the host, and the namespace already fails closed; ignored
warning wg0.conf:5: PostUp is not run: hooks would run as root on the host, and the namespace already fails closed; ignored
warning wg0.conf:6: PostUp is not run: hooks would run as root on the host, and the namespace already fails closed; ignored
warning wg0.conf:7: PreDown is not run: hooks would run as root on the host, and the namespace already fails closed; ignored
warning wg0.conf:8: PostDown is not run: hooks would run as root on the host, and the namespace already fails closed; ignored
warning wg0.conf:9: Table means nothing inside a namespace; ignored
warning wg0.conf:10: Table means nothing inside a namespace; ignored
warning wg0.conf:11: FwMark means nothing inside a namespace; ignored
warning wg0.conf:12: SaveConfig means nothing inside a namespace; ignored
`,
		},
		{
			name: "wg-quick separators: spaces, tabs and commas",
			conf: "[Interface]\nPrivateKey = {A}\nAddress = 192.0.2.2/32 fd00::2/128\n" +
				"DNS = 192.0.2.53 fd00::53\t, corp.example.com example.org\n" +
				"[Peer]\nPublicKey = {PB}\nAllowedIPs = 192.0.2.0/024 ,fd00::/8\t198.51.100.0/24\n",
			want: `path wg0.conf
interface private=set public={PA}
  addresses=[192.0.2.2/32 fd00::2/128] dns=[192.0.2.53 fd00::53] search=["corp.example.com" "example.org"] mtu=0 listenport=0
peer line=5 public={PB} psk=none keepalive=0
  endpoint="" host="" port=0 allowed=[192.0.2.0/24 fd00::/8 198.51.100.0/24]
namespace firewall=true inbound=[]
`,
		},
		{
			name: "key files in places only root can change",
			file: "/etc/wgns/work.conf",
			conf: "[Interface]\nPrivateKeyFile = /tmp/wgns-keys/work.key\nAddress = 192.0.2.2/32\n" +
				"[Peer]\nPublicKey = {PB}\nPresharedKeyFile = keys/../../wireguard/./work.psk\nAllowedIPs = 0.0.0.0/0\n",
			fs: fakeFS{
				"/tmp":                    {Mode: fs.ModeDir | fs.ModeSticky | 0o777},
				"/tmp/wgns-keys":          {Mode: fs.ModeDir | 0o700},
				"/tmp/wgns-keys/work.key": rootFile(keyA),
				"/etc/wgns":               {Mode: fs.ModeSymlink | 0o777, Data: []byte("/srv/wgns")},
				"/srv/wgns/keys":          {Mode: fs.ModeDir | 0o700},
				"/srv/wireguard/work.psk": rootFile(keyPSK),
			},
			psk: []string{keyPSK},
			want: `path /etc/wgns/work.conf
interface private=set public={PA}
  addresses=[192.0.2.2/32] dns=[] search=[] mtu=0 listenport=0
peer line=4 public={PB} psk=set keepalive=0
  endpoint="" host="" port=0 allowed=[0.0.0.0/0]
namespace firewall=true inbound=[]
`,
		},
		{
			name: "run as a user: the user's own key file, and what root would say",
			file: "/home/alice/vpn/work.conf",
			uid:  1000,
			conf: "[Interface]\nPrivateKeyFile = work.key\nAddress = 192.0.2.2/32\n[Peer]\nPublicKey = {PB}\nAllowedIPs = 0.0.0.0/0\n",
			fs: fakeFS{
				"/home/alice":              {Mode: fs.ModeDir | 0o755, UID: 1000},
				"/home/alice/vpn":          {Mode: fs.ModeDir | 0o700, UID: 1000},
				"/home/alice/vpn/work.key": {Mode: 0o600, UID: 1000, Data: []byte(keyA)},
			},
			want: `path /home/alice/vpn/work.conf
interface private=set public={PA}
  addresses=[192.0.2.2/32] dns=[] search=[] mtu=0 listenport=0
peer line=4 public={PB} psk=none keepalive=0
  endpoint="" host="" port=0 allowed=[0.0.0.0/0]
namespace firewall=true inbound=[]
warning /home/alice/vpn/work.conf:2: PrivateKeyFile "/home/alice/vpn/work.key": as root, wgns would refuse it: in directory /home/alice, owned by uid 1000, not root: that user could replace the file; move it to a directory only root can change, such as /etc/wgns
`,
		},
		{
			name: "firewall off and inbound ports",
			conf: ifc + peerB + "PersistentKeepalive = 0\n[Namespace]\nAllowInbound = 22/tcp\nFirewall = off\n",
			want: `path wg0.conf
interface private=set public={PA}
  addresses=[192.0.2.2/32] dns=[] search=[] mtu=0 listenport=0
peer line=4 public={PB} psk=none keepalive=0
  endpoint="" host="" port=0 allowed=[0.0.0.0/0]
namespace firewall=false inbound=[22/tcp]
warning wg0.conf:9: AllowInbound means nothing with Firewall = off: everything may come in
`,
		},
		{
			name: "DNS server the tunnel cannot reach",
			conf: ifc + "DNS = 192.0.2.53, fd00::53, 192.0.2.53\n[Peer]\nPublicKey = {PB}\nAllowedIPs = 192.0.2.0/24\n",
			want: `path wg0.conf
interface private=set public={PA}
  addresses=[192.0.2.2/32] dns=[192.0.2.53 fd00::53 192.0.2.53] search=[] mtu=0 listenport=0
peer line=5 public={PB} psk=none keepalive=0
  endpoint="" host="" port=0 allowed=[192.0.2.0/24]
namespace firewall=true inbound=[]
warning wg0.conf:4: DNS server fd00::53 is in no peer's AllowedIPs; queries to it will fail
`,
		},
		{
			name: "limits",
			conf: ifc + "MTU = 65535\nListenPort = 65535\n" + peerB + "Endpoint = 192.0.2.1:65535\nPersistentKeepalive = 65535\n" +
				"[Namespace]\nAllowInbound = 1/tcp, 65535/udp\n",
			want: `path wg0.conf
interface private=set public={PA}
  addresses=[192.0.2.2/32] dns=[] search=[] mtu=65535 listenport=65535
peer line=6 public={PB} psk=none keepalive=65535
  endpoint="192.0.2.1:65535" host="192.0.2.1" port=65535 allowed=[0.0.0.0/0]
namespace firewall=true inbound=[1/tcp 65535/udp]
`,
		},
		{
			name: "IPv4 only allows MTU 576, empty Namespace section",
			conf: ifc + "MTU = 576\n" + peerB + "[Namespace]\n",
			want: `path wg0.conf
interface private=set public={PA}
  addresses=[192.0.2.2/32] dns=[] search=[] mtu=576 listenport=0
peer line=5 public={PB} psk=none keepalive=0
  endpoint="" host="" port=0 allowed=[0.0.0.0/0]
namespace firewall=true inbound=[]
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := tt.file
			if name == "" {
				name = "wg0.conf"
			}
			input := expand(t, tt.conf)
			cfg, err := newLoader(tt.fs, tt.uid).parse(name, []byte(input))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := dump(cfg), expand(t, tt.want); got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
			if cfg.Interface.PrivateKey.Key() != mustKey(t, keyA) {
				t.Error("wrong private key")
			}
			for i, psk := range tt.psk {
				if got := cfg.Peers[i].PresharedKey; got == nil || got.Key() != mustKey(t, psk) {
					t.Errorf("peer %d: wrong preshared key", i)
				}
			}
			for _, w := range cfg.Warnings {
				assertNoKeys(t, w, input, keyA, keyPSK)
			}
			again, err := newLoader(nil, 0).parse(name, []byte(format(cfg)))
			if err != nil {
				t.Fatalf("parsing the formatted config: %v\n%s", err, format(cfg))
			}
			if got, want := dump(withoutNoise(again)), dump(withoutNoise(cfg)); got != want {
				t.Errorf("round trip through format:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestHasIPv6AndEffectiveMTU(t *testing.T) {
	tests := []struct {
		conf   string
		v6     bool
		uplink int
		want   int
	}{
		{conf: ifc + peerB, v6: false, uplink: 0, want: 1420},
		{conf: ifc + peerB, v6: false, uplink: 1500, want: 1420},
		{conf: ifc + peerB, v6: false, uplink: 9000, want: 8920},
		{conf: ifc + peerB, v6: false, uplink: 600, want: 576},
		{conf: ifc + peerB + "AllowedIPs = ::/0\n", v6: true, uplink: 1340, want: 1280},
		{conf: ifc + "Address = fd00::2\n" + peerB, v6: true, uplink: 1500, want: 1420},
		{conf: ifc + "MTU = 1300\n" + peerB, v6: false, uplink: 9000, want: 1300},
		{conf: ifc + "MTU = 1300\n" + peerB, v6: false, uplink: 0, want: 1300},
	}
	for i, tt := range tests {
		cfg, err := newLoader(nil, 0).parse("wg0.conf", []byte(expand(t, tt.conf)))
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if got := cfg.HasIPv6(); got != tt.v6 {
			t.Errorf("%d: HasIPv6() = %t, want %t", i, got, tt.v6)
		}
		if got := cfg.EffectiveMTU(tt.uplink); got != tt.want {
			t.Errorf("%d: EffectiveMTU(%d) = %d, want %d", i, tt.uplink, got, tt.want)
		}
	}
}

func TestValidHostname(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{"example.com", true}, {"example.com.", true}, {"a", true}, {"xn--bcher-kva.example", true},
		{"1a.example", true}, {long + ".com", true},
		{"", false}, {".", false}, {"a..b", false}, {"a.b..", false}, {".a", false},
		{"-a.com", false}, {"a-.com", false}, {"a_b.com", false}, {"a b", false},
		{long + "a.com", false}, {"192.0.2.1", false}, {"example.123", false},
		{strings.Repeat("a.", 126) + "ab", false}, // 254 characters
		{strings.Repeat("a.", 126) + "a", true},   // 253 characters
	} {
		if got := validHostname(tt.s); got != tt.want {
			t.Errorf("validHostname(%q) = %t, want %t", tt.s, got, tt.want)
		}
	}
}
