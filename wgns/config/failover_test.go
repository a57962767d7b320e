package config

import (
	"fmt"
	"strings"
	"testing"
)

// failoverSet reports whether ns sets any failover key to other than its default (a zero
// FailoverTimeout, in a Config made by hand, stands for the default).
func failoverSet(ns Namespace) bool {
	return ns.Failover || timeoutSet(ns) || ns.FailoverCheck != nil || ns.FailoverCheckOff
}

func timeoutSet(ns Namespace) bool {
	return ns.FailoverTimeout != 0 && ns.FailoverTimeout != DefaultFailoverTimeout
}

// formatFailover writes the failover keys of ns that differ from their defaults.
func formatFailover(line func(key string, v any), ns Namespace) {
	if ns.Failover {
		line("Failover", "on")
	}
	if timeoutSet(ns) {
		line("FailoverTimeout", ns.FailoverTimeout)
	}
	if len(ns.FailoverCheck) > 0 {
		line("FailoverCheck", joinStrings(ns.FailoverCheck))
	}
	if ns.FailoverCheckOff {
		line("FailoverCheck", "none")
	}
}

// dumpFailover renders the failover settings and groups of c, when any is set.
func dumpFailover(b *strings.Builder, c *Config) {
	ns := c.Namespace
	if !failoverSet(ns) && len(c.Groups) == 0 {
		return
	}
	fmt.Fprintf(b, "failover on=%t timeout=%v check=%v none=%t\n", ns.Failover, ns.FailoverTimeout, ns.FailoverCheck, ns.FailoverCheckOff)
	for _, g := range c.Groups {
		check := "none"
		if g.Check.IsValid() {
			check = g.Check.String()
		}
		fmt.Fprintf(b, "group peers=%v check=%s\n", g.Peers, check)
	}
}

// Peers D, E and F, for configs with more than two peers (made with wg genkey).
const (
	keyD = "sC/rvfu8BBztjmdSAuvDDVEnA6sTvMmLCHw5ZLP0rnE="
	keyE = "cACsRT1b4pfen49aXx4KFkG1poy/BzjwDzSfYJPfoHw="
	keyF = "IIPZGXls+IzFyhHFeQ5JmE5kpj3v2zr02lp44cbaQ0c="
)

// expandMore is expand with {PD}, {PE} and {PF} too.
func expandMore(t testing.TB, s string) string {
	return expand(t, strings.NewReplacer("{PD}", mustPub(keyD), "{PE}", mustPub(keyE), "{PF}", mustPub(keyF)).Replace(s))
}

func TestParseFailover(t *testing.T) {
	const ifcDNS = "[Interface]\nPrivateKey = {A}\nAddress = 192.0.2.2/32, fd00::2/128\nDNS = 10.64.0.1, example.com\n" // lines 1-4
	tests := []struct {
		name string
		conf string
		want string // dump, with {P*} keys expanded
	}{
		{
			name: "two servers of one provider, AllowedIPs in another order",
			conf: ifcDNS +
				"[Peer]\nPublicKey = {PB}\nAllowedIPs = 0.0.0.0/0, ::/0\nEndpoint = 203.0.113.1:51820\n" +
				"[Peer]\nPublicKey = {PC}\nAllowedIPs = ::/0\nAllowedIPs = 0.0.0.0/0\nEndpoint = 203.0.113.2:51820\n" +
				"[Namespace]\nFailover = on\n",
			want: `path wg0.conf
interface private=set public={PA}
  addresses=[192.0.2.2/32 fd00::2/128] dns=[10.64.0.1] search=["example.com"] mtu=0 listenport=0
peer line=5 public={PB} psk=none keepalive=0
  endpoint="203.0.113.1:51820" host="203.0.113.1" port=51820 allowed=[0.0.0.0/0 ::/0]
peer line=9 public={PC} psk=none keepalive=0
  endpoint="203.0.113.2:51820" host="203.0.113.2" port=51820 allowed=[::/0 0.0.0.0/0]
namespace firewall=true inbound=[]
failover on=true timeout=2s check=[] none=false
group peers=[0 1] check=10.64.0.1
`,
		},
		{
			name: "two groups in the order of their first peers, a peer of its own, checks given",
			conf: ifcDNS +
				"[Peer]\nPublicKey = {PB}\nAllowedIPs = 0.0.0.0/0\nEndpoint = 203.0.113.1:51820\n" + // line 5
				"[Peer]\nPublicKey = {PC}\nAllowedIPs = 10.0.0.0/8\nEndpoint = 203.0.113.2:51820\n" + // line 9
				"[Peer]\nPublicKey = {PD}\nAllowedIPs = 10.0.0.0/8\nEndpoint = 203.0.113.3:51820\n" + // line 13
				"[Peer]\nPublicKey = {PE}\nAllowedIPs = 0.0.0.0/0\nEndpoint = 203.0.113.4:51820\n" + // line 17
				"[Peer]\nPublicKey = {PF}\nAllowedIPs = 198.51.100.0/24\nEndpoint = 203.0.113.5:51820\n" + // line 21
				"[Namespace]\nfailover = yes\nFailoverTimeout = 1500ms\nFailoverCheck = 10.8.0.1\nFailoverCheck = 192.0.2.1\n",
			want: `path wg0.conf
interface private=set public={PA}
  addresses=[192.0.2.2/32 fd00::2/128] dns=[10.64.0.1] search=["example.com"] mtu=0 listenport=0
peer line=5 public={PB} psk=none keepalive=0
  endpoint="203.0.113.1:51820" host="203.0.113.1" port=51820 allowed=[0.0.0.0/0]
peer line=9 public={PC} psk=none keepalive=0
  endpoint="203.0.113.2:51820" host="203.0.113.2" port=51820 allowed=[10.0.0.0/8]
peer line=13 public={PD} psk=none keepalive=0
  endpoint="203.0.113.3:51820" host="203.0.113.3" port=51820 allowed=[10.0.0.0/8]
peer line=17 public={PE} psk=none keepalive=0
  endpoint="203.0.113.4:51820" host="203.0.113.4" port=51820 allowed=[0.0.0.0/0]
peer line=21 public={PF} psk=none keepalive=0
  endpoint="203.0.113.5:51820" host="203.0.113.5" port=51820 allowed=[198.51.100.0/24]
namespace firewall=true inbound=[]
failover on=true timeout=1.5s check=[10.8.0.1 192.0.2.1] none=false
group peers=[0 3] check=192.0.2.1
group peers=[1 2] check=10.8.0.1
`,
		},
		{
			name: "the default check is the first DNS server each group routes, by the longest prefix",
			conf: "[Interface]\nPrivateKey = {A}\nAddress = 192.0.2.2/32\nDNS = 10.1.0.53, 10.2.0.53, 192.0.2.53, 10.1.0.54\n" +
				"[Peer]\nPublicKey = {PB}\nAllowedIPs = 0.0.0.0/0\nEndpoint = 203.0.113.1:51820\n" + // line 5
				"[Peer]\nPublicKey = {PC}\nAllowedIPs = 0.0.0.0/0\nEndpoint = 203.0.113.2:51820\n" + // line 9
				"[Peer]\nPublicKey = {PD}\nAllowedIPs = 10.1.0.0/16\nEndpoint = 203.0.113.3:51820\n" + // line 13
				"[Peer]\nPublicKey = {PE}\nAllowedIPs = 10.1.0.0/16\nEndpoint = 203.0.113.4:51820\n" + // line 17
				"[Namespace]\nFailover = on\n",
			want: `path wg0.conf
interface private=set public={PA}
  addresses=[192.0.2.2/32] dns=[10.1.0.53 10.2.0.53 192.0.2.53 10.1.0.54] search=[] mtu=0 listenport=0
peer line=5 public={PB} psk=none keepalive=0
  endpoint="203.0.113.1:51820" host="203.0.113.1" port=51820 allowed=[0.0.0.0/0]
peer line=9 public={PC} psk=none keepalive=0
  endpoint="203.0.113.2:51820" host="203.0.113.2" port=51820 allowed=[0.0.0.0/0]
peer line=13 public={PD} psk=none keepalive=0
  endpoint="203.0.113.3:51820" host="203.0.113.3" port=51820 allowed=[10.1.0.0/16]
peer line=17 public={PE} psk=none keepalive=0
  endpoint="203.0.113.4:51820" host="203.0.113.4" port=51820 allowed=[10.1.0.0/16]
namespace firewall=true inbound=[]
failover on=true timeout=2s check=[] none=false
group peers=[0 1] check=10.2.0.53
group peers=[2 3] check=10.1.0.53
`,
		},
		{
			name: "no check, in seconds; a peer without an endpoint",
			conf: ifcDNS +
				"[Peer]\nPublicKey = {PB}\nAllowedIPs = 0.0.0.0/0\nEndpoint = 203.0.113.1:51820\n" +
				"[Peer]\nPublicKey = {PC}\nAllowedIPs = 0.0.0.0/0\n" + // line 9
				"[Namespace]\nFailover = on\nFailoverTimeout = 10\nFailoverCheck = NONE\n",
			want: `path wg0.conf
interface private=set public={PA}
  addresses=[192.0.2.2/32 fd00::2/128] dns=[10.64.0.1] search=["example.com"] mtu=0 listenport=0
peer line=5 public={PB} psk=none keepalive=0
  endpoint="203.0.113.1:51820" host="203.0.113.1" port=51820 allowed=[0.0.0.0/0]
peer line=9 public={PC} psk=none keepalive=0
  endpoint="" host="" port=0 allowed=[0.0.0.0/0]
namespace firewall=true inbound=[]
failover on=true timeout=10s check=[] none=true
group peers=[0 1] check=none
warning wg0.conf:9: [Peer] is in a failover group but has no Endpoint: wgns cannot start a session with it, so it can take over only after it reached this side
`,
		},
		{
			name: "a group with nothing to probe is judged by WireGuard's counters",
			conf: "[Interface]\nPrivateKey = {A}\nAddress = 192.0.2.2/32\nDNS = 10.1.0.53\n" +
				"[Peer]\nPublicKey = {PB}\nAllowedIPs = 0.0.0.0/0\nEndpoint = 203.0.113.1:51820\n" +
				"[Peer]\nPublicKey = {PC}\nAllowedIPs = 0.0.0.0/0\nEndpoint = 203.0.113.2:51820\n" +
				"[Peer]\nPublicKey = {PD}\nAllowedIPs = 10.1.0.0/16\nEndpoint = 203.0.113.3:51820\n" +
				"[Namespace]\nFailover = on\n",
			want: `path wg0.conf
interface private=set public={PA}
  addresses=[192.0.2.2/32] dns=[10.1.0.53] search=[] mtu=0 listenport=0
peer line=5 public={PB} psk=none keepalive=0
  endpoint="203.0.113.1:51820" host="203.0.113.1" port=51820 allowed=[0.0.0.0/0]
peer line=9 public={PC} psk=none keepalive=0
  endpoint="203.0.113.2:51820" host="203.0.113.2" port=51820 allowed=[0.0.0.0/0]
peer line=13 public={PD} psk=none keepalive=0
  endpoint="203.0.113.3:51820" host="203.0.113.3" port=51820 allowed=[10.1.0.0/16]
namespace firewall=true inbound=[]
failover on=true timeout=2s check=[] none=false
group peers=[0 1] check=none
warning wg0.conf:5: the failover group of this [Peer] and the one on line 9 has no address to probe (no FailoverCheck or DNS server in its AllowedIPs): a peer that stops answering is noticed from WireGuard's own counters, after about 15 s
`,
		},
		{
			name: "Failover on with nothing to fail over to",
			conf: ifcDNS + "[Peer]\nPublicKey = {PB}\nAllowedIPs = 0.0.0.0/0\n[Peer]\nPublicKey = {PC}\nAllowedIPs = 10.0.0.0/8\n" +
				"[Namespace]\nFailover = on\n",
			want: `path wg0.conf
interface private=set public={PA}
  addresses=[192.0.2.2/32 fd00::2/128] dns=[10.64.0.1] search=["example.com"] mtu=0 listenport=0
peer line=5 public={PB} psk=none keepalive=0
  endpoint="" host="" port=0 allowed=[0.0.0.0/0]
peer line=8 public={PC} psk=none keepalive=0
  endpoint="" host="" port=0 allowed=[10.0.0.0/8]
namespace firewall=true inbound=[]
failover on=true timeout=2s check=[] none=false
warning wg0.conf:12: Failover = on, but no two peers list the same AllowedIPs: there is no failover group
`,
		},
		{
			name: "failover settings without Failover = on",
			conf: ifcDNS + "[Peer]\nPublicKey = {PB}\nAllowedIPs = 0.0.0.0/0\n" +
				"[Namespace]\nFailover = off\nFailoverTimeout = 5s\nFailoverCheck = 198.51.100.1\n",
			want: `path wg0.conf
interface private=set public={PA}
  addresses=[192.0.2.2/32 fd00::2/128] dns=[10.64.0.1] search=["example.com"] mtu=0 listenport=0
peer line=5 public={PB} psk=none keepalive=0
  endpoint="" host="" port=0 allowed=[0.0.0.0/0]
namespace firewall=true inbound=[]
failover on=false timeout=5s check=[198.51.100.1] none=false
warning wg0.conf:10: FailoverTimeout means nothing without Failover = on
warning wg0.conf:11: FailoverCheck means nothing without Failover = on
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := expandMore(t, tt.conf)
			cfg, err := newLoader(nil, 0).parse("wg0.conf", []byte(input))
			if err != nil {
				t.Fatal(err)
			}
			want := expandMore(t, tt.want)
			if got := dump(cfg); got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
			again, err := newLoader(nil, 0).parse("wg0.conf", []byte(format(cfg)))
			if err != nil {
				t.Fatalf("parsing the formatted config: %v\n%s", err, format(cfg))
			}
			if got, want := dump(withoutNoise(again)), dump(withoutNoise(cfg)); got != want {
				t.Errorf("round trip through format:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestParseFailoverInvalid(t *testing.T) {
	const (
		ifcDNS = "[Interface]\nPrivateKey = {A}\nAddress = 192.0.2.2/32\nDNS = 10.64.0.1\n"                             // lines 1-4
		two    = "[Peer]\nPublicKey = {PB}\nAllowedIPs = 0.0.0.0/0\n[Peer]\nPublicKey = {PC}\nAllowedIPs = 0.0.0.0/0\n" // lines 5-10
		ns     = two + "[Namespace]\nFailover = on\n"                                                                   // lines 11-12
	)
	tests := []struct {
		name string
		conf string
		want string
	}{
		{"Failover maybe", ifcDNS + two + "[Namespace]\nFailover = maybe\n",
			`wg0.conf:12: invalid Failover "maybe": must be on or off`},
		{"Failover in [Peer]", ifcDNS + two + "Failover = on\n",
			"wg0.conf:11: Failover belongs in [Namespace], not in [Peer]"},
		{"Failover twice", ifcDNS + ns + "Failover = on\n",
			"wg0.conf:13: duplicate Failover (first on line 12)"},
		{"Failover empty", ifcDNS + two + "[Namespace]\nFailover =\n",
			"wg0.conf:12: Failover has no value"},
		{"shared AllowedIPs without Failover", ifcDNS + two + "[Namespace]\nFailover = off\n",
			"wg0.conf:10: AllowedIPs 0.0.0.0/0 is already allowed for the [Peer] on line 5 (AllowedIPs on line 7); a prefix can belong to one peer only, unless [Namespace] Failover = on makes peers with identical AllowedIPs a failover group"},
		{"overlapping, not identical", ifcDNS + "[Peer]\nPublicKey = {PB}\nAllowedIPs = 0.0.0.0/0, ::/0\n[Peer]\nPublicKey = {PC}\nAllowedIPs = 0.0.0.0/0\n[Namespace]\nFailover = on\n",
			"wg0.conf:10: AllowedIPs 0.0.0.0/0 is already allowed for the [Peer] on line 5 (AllowedIPs on line 7); with Failover = on, peers that share a prefix form a failover group and must list the same AllowedIPs (that one lists 0.0.0.0/0, ::/0, this one 0.0.0.0/0)"},
		{"a superset", ifcDNS + "[Peer]\nPublicKey = {PB}\nAllowedIPs = 0.0.0.0/0\n[Peer]\nPublicKey = {PC}\nAllowedIPs = 10.1.0.0/16, 10.2.0.0/16, 10.3.0.0/16, 10.4.0.0/16, 10.5.0.0/16, 0.0.0.0/0\n[Namespace]\nFailover = on\n",
			"wg0.conf:10: AllowedIPs 0.0.0.0/0 is already allowed for the [Peer] on line 5 (AllowedIPs on line 7); with Failover = on, peers that share a prefix form a failover group and must list the same AllowedIPs (that one lists 0.0.0.0/0, this one 10.1.0.0/16, 10.2.0.0/16, 10.3.0.0/16, 10.4.0.0/16 and 2 more)"},
		{"listed twice by one peer of a group", ifcDNS + two + "AllowedIPs = 0.0.0.0/0\n[Namespace]\nFailover = on\n",
			"wg0.conf:11: AllowedIPs 0.0.0.0/0 is listed twice (first on line 10)"},
		{"timeout too short", ifcDNS + ns + "FailoverTimeout = 999ms\n",
			`wg0.conf:13: invalid FailoverTimeout "999ms": must be a duration from 1s to 5m0s, like 2s or 1500ms`},
		{"timeout zero", ifcDNS + ns + "FailoverTimeout = 0\n",
			`wg0.conf:13: invalid FailoverTimeout "0": must be a duration from 1s to 5m0s, like 2s or 1500ms`},
		{"timeout too long", ifcDNS + ns + "FailoverTimeout = 301\n",
			`wg0.conf:13: invalid FailoverTimeout "301": must be a duration from 1s to 5m0s, like 2s or 1500ms`},
		{"timeout negative", ifcDNS + ns + "FailoverTimeout = -2s\n",
			`wg0.conf:13: invalid FailoverTimeout "-2s": must be a duration from 1s to 5m0s, like 2s or 1500ms`},
		{"timeout with a space", ifcDNS + ns + "FailoverTimeout = 2 s\n",
			`wg0.conf:13: invalid FailoverTimeout "2 s": must be a duration from 1s to 5m0s, like 2s or 1500ms`},
		{"timeout huge", ifcDNS + ns + "FailoverTimeout = 99999999999999999999h\n",
			`wg0.conf:13: invalid FailoverTimeout "99999999999999999999h": must be a duration from 1s to 5m0s, like 2s or 1500ms`},
		{"timeout twice", ifcDNS + ns + "FailoverTimeout = 2s\nFailoverTimeout = 3s\n",
			"wg0.conf:14: duplicate FailoverTimeout (first on line 13)"},
		{"check not an address", ifcDNS + ns + "FailoverCheck = gateway.example.com\n",
			`wg0.conf:13: invalid FailoverCheck "gateway.example.com": not an IP address (or none)`},
		{"check a prefix", ifcDNS + ns + "FailoverCheck = 10.64.0.0/24\n",
			`wg0.conf:13: invalid FailoverCheck "10.64.0.0/24": not an IP address (or none)`},
		{"check multicast", ifcDNS + ns + "FailoverCheck = 224.0.0.1\n",
			`wg0.conf:13: invalid FailoverCheck "224.0.0.1": multicast address`},
		{"check with a zone", ifcDNS + ns + "FailoverCheck = fe80::1%eth0\n",
			`wg0.conf:13: invalid FailoverCheck "fe80::1%eth0": IPv6 zones are not allowed`},
		{"check twice", ifcDNS + ns + "FailoverCheck = 10.64.0.1\nFailoverCheck = 10.64.0.1\n",
			"wg0.conf:14: FailoverCheck 10.64.0.1 is listed twice (first on line 13)"},
		{"none, then an address", ifcDNS + ns + "FailoverCheck = none, 10.64.0.1\n",
			"wg0.conf:13: FailoverCheck 10.64.0.1 cannot go with none (line 13); give addresses, or none"},
		{"an address, then none", ifcDNS + ns + "FailoverCheck = 10.64.0.1\nFailoverCheck = none\n",
			`wg0.conf:14: FailoverCheck "none" cannot go with addresses (line 13); give addresses, or none`},
		{"check outside every AllowedIPs", ifcDNS + "[Peer]\nPublicKey = {PB}\nAllowedIPs = 10.0.0.0/8\n[Peer]\nPublicKey = {PC}\nAllowedIPs = 10.0.0.0/8\n[Namespace]\nFailover = on\nFailoverCheck = 192.0.2.1\n",
			"wg0.conf:13: FailoverCheck 192.0.2.1 is in no peer's AllowedIPs: a probe could not reach it"},
		{"check routed to a peer of its own", ifcDNS + two + "[Peer]\nPublicKey = {PD}\nAllowedIPs = 10.0.0.0/8\n[Namespace]\nFailover = on\nFailoverCheck = 10.64.0.1\n",
			"wg0.conf:16: FailoverCheck 10.64.0.1 is routed to the [Peer] on line 11, which is in no failover group (no other peer lists the same AllowedIPs)"},
		{"two checks for one group", ifcDNS + ns + "FailoverCheck = 10.64.0.1\nFailoverCheck = 198.51.100.1\n",
			"wg0.conf:14: FailoverCheck 198.51.100.1 probes the same failover group as 10.64.0.1 (line 13); give one address per group"},
		{"check in [Interface]", "[Interface]\nPrivateKey = {A}\nFailoverCheck = 10.64.0.1\n",
			"wg0.conf:3: FailoverCheck belongs in [Namespace], not in [Interface]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := expandMore(t, tt.conf)
			cfg, err := newLoader(nil, 0).parse("wg0.conf", []byte(input))
			if err == nil {
				t.Fatalf("parse succeeded, want error %q; got\n%s", tt.want, dump(cfg))
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got %s\nwant %s", got, tt.want)
			}
			assertNoKeys(t, err.Error(), input, keyD, keyE, keyF)
		})
	}
}
