package config

import (
	"strings"
	"testing"
)

// dnsIfc is ifc with a DNS server: lines 1-4.
const dnsIfc = "[Interface]\nPrivateKey = {A}\nAddress = 192.0.2.2/32\nDNS = fd00::53, 192.0.2.1\n"

func TestParsePorts(t *testing.T) {
	tests := []struct {
		name string
		conf string
		want string // the dump's lines from "namespace" on
	}{
		{
			name: "Publish, docker's shapes",
			conf: ifc + peerB + "[Namespace]\nPublish = 8080:80, 127.0.0.1:8081:81/tcp 5353:53/UDP\nPublish = [::1]:8443:443,[fd00::2]:9:9/udp\n",
			want: `namespace firewall=true inbound=[]
  publish line=8 127.0.0.1:8080:80/tcp
  publish line=8 127.0.0.1:8081:81/tcp
  publish line=8 127.0.0.1:5353:53/udp
  publish line=9 [::1]:8443:443/tcp
  publish line=9 [fd00::2]:9:9/udp
warning wg0.conf:9: Publish [fd00::2]:9:9/udp listens on fd00::2: anyone who can reach it reaches the service inside, not just this host's users
`,
		},
		{
			name: "Publish on every address, same port for each protocol and family",
			conf: ifc + peerB + "[Namespace]\nPublish = 0.0.0.0:8080:80, 0.0.0.0:8080:80/udp, [::]:8080:80\n",
			want: `namespace firewall=true inbound=[]
  publish line=8 0.0.0.0:8080:80/tcp
  publish line=8 0.0.0.0:8080:80/udp
  publish line=8 [::]:8080:80/tcp
warning wg0.conf:8: Publish 0.0.0.0:8080:80/tcp listens on 0.0.0.0: anyone who can reach it reaches the service inside, not just this host's users
warning wg0.conf:8: Publish 0.0.0.0:8080:80/udp listens on 0.0.0.0: anyone who can reach it reaches the service inside, not just this host's users
warning wg0.conf:8: Publish [::]:8080:80/tcp listens on ::: anyone who can reach it reaches the service inside, not just this host's users
`,
		},
		{
			name: "PortForward: the gateway is the first IPv4 DNS server",
			conf: dnsIfc + peerB + "[Namespace]\nPortForward = natpmp\n",
			want: `namespace firewall=true inbound=[]
  portforward line=9 natpmp gateway=192.0.2.1 command=[] (line 0) user="" (line 0)
warning wg0.conf:4: DNS server fd00::53 is in no peer's AllowedIPs; queries to it will fail
`,
		},
		{
			name: "PortForward with a gateway, a command and its user",
			conf: ifc + peerB + "[Namespace]\nPortForwardUser = debian-transmission\nPortForward = NATPMP:10.2.0.1\n" +
				"PortForwardCommand = /usr/local/bin/tell-transmission --port\n",
			want: `namespace firewall=true inbound=[]
  portforward line=9 natpmp gateway=10.2.0.1 command=["/usr/local/bin/tell-transmission" "--port"] (line 10) user="debian-transmission" (line 8)
`,
		},
		{
			name: "PortForward user by uid",
			conf: dnsIfc + peerB + "[Namespace]\nPortForward = natpmp\nPortForwardCommand = /bin/true\nPortForwardUser = 1000\n",
			want: `namespace firewall=true inbound=[]
  portforward line=9 natpmp gateway=192.0.2.1 command=["/bin/true"] (line 10) user="1000" (line 11)
warning wg0.conf:4: DNS server fd00::53 is in no peer's AllowedIPs; queries to it will fail
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := newLoader(fakeFS{}, 0).parse("wg0.conf", []byte(expand(t, tt.conf)))
			if err != nil {
				t.Fatal(err)
			}
			d := dump(cfg)
			got := d[strings.Index(d, "namespace "):]
			if got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestParsePortsInvalid(t *testing.T) {
	ns := ifc + peerB + "[Namespace]\n" // the next line is 8
	tests := []struct {
		name string
		conf string
		want string
	}{
		{"Publish without a port inside", ns + "Publish = 8080\n",
			`wg0.conf:8: invalid Publish "8080": expected [HOSTIP:]HOSTPORT:PORT[/tcp|/udp], like 8080:80 or 127.0.0.1:8080:80/tcp`},
		{"Publish HOSTPORT 0", ns + "Publish = 0:80\n", `wg0.conf:8: invalid Publish "0:80": HOSTPORT must be 1-65535`},
		{"Publish PORT too large", ns + "Publish = 8080:65536\n", `wg0.conf:8: invalid Publish "8080:65536": PORT must be 1-65535`},
		{"Publish PORT word", ns + "Publish = 8080:http\n", `wg0.conf:8: invalid Publish "8080:http": PORT must be 1-65535`},
		{"Publish sctp", ns + "Publish = 8080:80/sctp\n", `wg0.conf:8: invalid Publish "8080:80/sctp": protocol must be tcp or udp`},
		{"Publish empty protocol", ns + "Publish = 8080:80/\n", `wg0.conf:8: invalid Publish "8080:80/": protocol must be tcp or udp`},
		{"Publish host name", ns + "Publish = localhost:8080:80\n",
			`wg0.conf:8: invalid Publish "localhost:8080:80": HOSTIP is not an IPv4 address (an IPv6 one goes in brackets, like [::1]:8080:80)`},
		{"Publish IPv6 without brackets", ns + "Publish = ::1:8080:80\n",
			`wg0.conf:8: invalid Publish "::1:8080:80": an IPv6 HOSTIP must be in brackets, like [::1]:8080:80`},
		{"Publish IPv4 in brackets", ns + "Publish = [127.0.0.1]:8080:80\n",
			`wg0.conf:8: invalid Publish "[127.0.0.1]:8080:80": not an IPv6 address inside the brackets`},
		{"Publish unclosed bracket", ns + "Publish = [::1:8080:80\n", `wg0.conf:8: invalid Publish "[::1:8080:80": missing "]" after the IPv6 address`},
		{"Publish bracket without ports", ns + "Publish = [::1]\n", `wg0.conf:8: invalid Publish "[::1]": expected ":" and HOSTPORT:PORT after "]"`},
		{"Publish zone", ns + "Publish = [fe80::1%lo]:8080:80\n", `wg0.conf:8: invalid Publish "[fe80::1%lo]:8080:80": IPv6 zones are not allowed`},
		{"Publish multicast", ns + "Publish = 224.0.0.1:8080:80\n", `wg0.conf:8: invalid Publish "224.0.0.1:8080:80": HOSTIP is a multicast address`},
		{"Publish mapped", ns + "Publish = [::ffff:127.0.0.1]:8080:80\n",
			`wg0.conf:8: invalid Publish "[::ffff:127.0.0.1]:8080:80": HOSTIP is an IPv4-mapped IPv6 address; write it as IPv4`},
		{"Publish twice", ns + "Publish = 8080:80\nPublish = 127.0.0.1:8080:81/tcp\n",
			"wg0.conf:9: Publish 127.0.0.1:8080/tcp is listed twice (first on line 8)"},
		{"Publish overlapping every address", ns + "Publish = 127.0.0.1:8080:80, 0.0.0.0:8080:81\n",
			"wg0.conf:8: Publish 0.0.0.0:8080/tcp overlaps 127.0.0.1:8080/tcp on line 8 (0.0.0.0:8080 listens on every IPv4 address)"},
		{"Publish in Interface", "[Interface]\nPublish = 8080:80\n", "wg0.conf:2: Publish belongs in [Namespace], not in [Interface]"},

		{"PortForward upnp", ns + "PortForward = upnp\n",
			`wg0.conf:8: invalid PortForward "upnp": the only method is natpmp (natpmp or natpmp:GATEWAY)`},
		{"PortForward IPv6 gateway", ns + "PortForward = natpmp:fd00::1\n",
			`wg0.conf:8: invalid PortForward "natpmp:fd00::1": GATEWAY must be an IPv4 address (NAT-PMP is IPv4 only)`},
		{"PortForward broadcast gateway", ns + "PortForward = natpmp:255.255.255.255\n",
			`wg0.conf:8: invalid PortForward "natpmp:255.255.255.255": GATEWAY must be the address of one host`},
		{"PortForward without a gateway", ifc + "DNS = fd00::53\n" + peerB + "[Namespace]\nPortForward = natpmp\n",
			"wg0.conf:9: PortForward = natpmp needs a gateway: write natpmp:GATEWAY, or give [Interface] an IPv4 DNS server (the provider's gateway)"},
		{"PortForward gateway not routed", "[Interface]\nPrivateKey = {A}\nAddress = 192.0.2.2/32\n[Peer]\nPublicKey = {PB}\nAllowedIPs = 192.0.2.0/24\n[Namespace]\nPortForward = natpmp:10.2.0.1\n",
			"wg0.conf:8: PortForward gateway 10.2.0.1 is in no peer's AllowedIPs: the tunnel cannot reach it"},
		{"PortForward twice", ns + "PortForward = natpmp:10.2.0.1\nPortForward = natpmp:10.2.0.1\n",
			"wg0.conf:9: duplicate PortForward (first on line 8)"},
		{"PortForwardCommand relative", ns + "PortForward = natpmp:10.2.0.1\nPortForwardCommand = tell-transmission\n",
			`wg0.conf:9: invalid PortForwardCommand "tell-transmission": the command must be an absolute path (it is not looked up in PATH)`},
		{"PortForwardCommand without a user", ns + "PortForward = natpmp:10.2.0.1\nPortForwardCommand = /bin/true\n",
			"wg0.conf:9: PortForwardCommand needs PortForwardUser: the command never runs as root"},
		{"PortForwardUser without a command", ns + "PortForward = natpmp:10.2.0.1\nPortForwardUser = nobody\n",
			"wg0.conf:9: PortForwardUser means nothing without PortForwardCommand"},
		{"PortForwardUser root", ns + "PortForwardUser = root\n",
			`wg0.conf:8: PortForwardUser "root" is root; the command never runs as root: name the service's own user`},
		{"PortForwardUser uid 0", ns + "PortForwardUser = 000\n",
			`wg0.conf:8: PortForwardUser "000" is root; the command never runs as root: name the service's own user`},
		{"PortForwardUser with a colon", ns + "PortForwardUser = a:b\n", `wg0.conf:8: invalid PortForwardUser "a:b": not a user name or uid`},
		{"PortForwardCommand without PortForward", ns + "PortForwardCommand = /bin/true\nPortForwardUser = nobody\n",
			"wg0.conf:8: PortForwardCommand needs PortForward = natpmp[:GATEWAY]"},
		{"PortForwardUser without PortForward", ns + "PortForwardUser = nobody\n",
			"wg0.conf:8: PortForwardUser needs PortForward = natpmp[:GATEWAY]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := expand(t, tt.conf)
			cfg, err := newLoader(fakeFS{}, 0).parse("wg0.conf", []byte(input))
			if err == nil {
				t.Fatalf("parse succeeded, want error %q; got\n%s", tt.want, dump(cfg))
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}
