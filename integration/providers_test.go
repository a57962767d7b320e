package integration

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// The provider corpus: testdata/providers/*.conf are configs shaped exactly as VPN providers and
// generators hand them out (see testdata/providers/README.md), with placeholders for what each
// test world fills in: keys, and TEST-NET/ULA addresses for the providers' own.
const (
	provDNS4b   = "192.0.2.53"   // a second DNS server on the peer's tunnel interface
	provNet4    = "192.0.2.0/24" // the peer's tunnel network
	provNet6    = "fd00:192:0:2::/64"
	provAnswer  = "203.0.113.77" // what the tunnel's DNS server answers for every name
	provMinimum = 30             // the corpus holds at least this many configs
)

// provPlaceholder is any placeholder left in a config.
var provPlaceholder = regexp.MustCompile(`\{[A-Z0-9_]+\}`)

// provHook matches a hook line that is not a comment, case-insensitively, as wgns reads keys.
var provHook = regexp.MustCompile(`(?i)^\s*(preup|postup|predown|postdown)\s*=`)

// provEndpoint matches an Endpoint line: its host (a name, an IPv4 address or a bracketed IPv6
// one) and port.
var provEndpoint = regexp.MustCompile(`(?mi)^\s*endpoint\s*=\s*(\[[^\]]+\]|[^\s:#]+):(\d+)`)

// provConfig is one config of the corpus, filled in.
type provConfig struct {
	file  string // its name in testdata/providers
	text  string // with placeholders filled
	host  string // the Endpoint's host as written, without brackets
	port  string // the Endpoint's port
	psk   bool   // it has a preshared key
	ipv6  bool   // it has an IPv6 address and routes IPv6 through the tunnel
	hooks []provHookLine
	// search is the first search domain of its DNS lines, or "".
	search string
}

// provHookLine is a hook of a config: its line and key.
type provHookLine struct {
	line int
	key  string // as wgns names it: PreUp, PostUp, PreDown or PostDown
}

var provHookKeys = map[string]string{"preup": "PreUp", "postup": "PostUp", "predown": "PreDown", "postdown": "PostDown"}

// provLoad reads the corpus and fills it in for peer p, with hookFile where a hook would create
// a file.
func provLoad(t *testing.T, p *peer, psk wgtypes.Key, hookFile string) []provConfig {
	t.Helper()
	paths, err := filepath.Glob("testdata/providers/*.conf")
	if err != nil {
		t.Fatal(err)
	}
	fill := strings.NewReplacer(
		"{PRIVATE_KEY}", p.ClientKey.String(),
		"{PUBLIC_KEY}", p.Key.PublicKey().String(),
		"{PRESHARED_KEY}", psk.String(),
		"{ADDR4}", clientTunnel4, "{ADDR6}", clientTunnel6,
		"{DNS4}", peerTunnel4, "{DNS4_2}", provDNS4b, "{DNS6}", peerTunnel6,
		"{NET4}", provNet4, "{NET6}", provNet6,
		"{ENDPOINT4}", peerUnderlay4, "{ENDPOINT6}", peerUnderlay6,
		"{HOOK_FILE}", hookFile,
	)
	var out []provConfig
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		c := provConfig{file: filepath.Base(path), text: fill.Replace(string(raw))}
		if left := provPlaceholder.FindString(c.text); left != "" {
			t.Fatalf("%s: placeholder %s is not filled in", c.file, left)
		}
		m := provEndpoint.FindStringSubmatch(c.text)
		if m == nil {
			t.Fatalf("%s: no Endpoint", c.file)
		}
		c.host, c.port = strings.Trim(m[1], "[]"), m[2]
		c.psk = bytes.Contains(raw, []byte("{PRESHARED_KEY}"))
		c.ipv6 = bytes.Contains(raw, []byte("{ADDR6}")) && regexp.MustCompile(`(?mi)^\s*allowedips\s*=.*(::0?/0|\{NET6\})`).Match(raw)
		for i, line := range strings.Split(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n") {
			line, _, _ = strings.Cut(line, "#")
			if h := provHook.FindStringSubmatch(line); h != nil {
				c.hooks = append(c.hooks, provHookLine{line: i + 1, key: provHookKeys[strings.ToLower(h[1])]})
			}
			if s := regexp.MustCompile(`(?i)^\s*dns\s*=\s*(.*)$`).FindStringSubmatch(line); s != nil && c.search == "" {
				for _, e := range strings.FieldsFunc(s[1], func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
					if !strings.HasPrefix(e, "{") && strings.ContainsAny(e, "abcdefghijklmnopqrstuvwxyz") {
						c.search = e
						break
					}
				}
			}
		}
		out = append(out, c)
	}
	if len(out) < provMinimum {
		t.Fatalf("the corpus holds %d configs, want at least %d", len(out), provMinimum)
	}
	return out
}

// provQueriesFrom returns how many queries for name the server has logged from the client's
// tunnel addresses.
func provQueriesFrom(d *dnsServer, name string) int {
	n := 0
	for _, q := range d.queries() {
		if strings.Contains(q, "] "+name+" from ") &&
			(strings.HasSuffix(q, " from "+clientTunnel4) || strings.HasSuffix(q, " from "+clientTunnel6)) {
			n++
		}
	}
	return n
}

// TestIntegrationProviderConfigs: every config of the provider corpus, as its provider or
// generator shapes it (hooks, comments, CRLF and a BOM, several Address and DNS lines, lists
// separated by spaces, search domains, host names, IPv6, MTU, Table = off, ListenPort, preshared
// keys), comes up against Debian's wireguard-go, carries a ping and a DNS lookup through the
// tunnel, and goes down. Each hook line draws one warning naming FILE:LINE and none ever runs:
// the file the corpus's hooks would create never appears, and the world's firewall stays empty.
// One peer world serves the whole corpus: between configs only the peer's listen port and
// preshared key change, as the next config needs.
func TestIntegrationProviderConfigs(t *testing.T) {
	p := newPeer(t, "prov")
	mustRun(t, "ip", "-n", p.NS, "addr", "add", provDNS4b+"/24", "dev", p.Dev)
	dns := startDnsmasq(t, p.NS, "the tunnel's DNS", []string{peerTunnel4, provDNS4b, peerTunnel6}, "/#/"+provAnswer)
	psk, err := wgtypes.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pskFile := filepath.Join(dir, "psk")
	if err := os.WriteFile(pskFile, []byte(psk.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hookFile := filepath.Join(dir, "a-hook-ran")
	corpus := provLoad(t, p, psk, hookFile)

	// Endpoint host names resolve, in the world, to the peer's underlay address.
	var hosts []string
	for _, c := range corpus {
		if _, err := netip.ParseAddr(c.host); err != nil {
			hosts = append(hosts, peerUnderlay4+" "+c.host)
		}
	}
	sort.Strings(hosts)
	keepFile(t, "/etc/hosts")
	replaceFile(t, "/etc/hosts", readFile(t, "/etc/hosts")+strings.Join(hosts, "\n")+"\n")

	firewallBefore := mustRun(t, "nft", "list", "ruleset")
	start := time.Now()
	for i, c := range corpus {
		name := fmt.Sprintf("pv%02d", i)
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join(dir, c.file)
			if err := os.WriteFile(path, []byte(c.text), 0o600); err != nil {
				t.Fatal(err)
			}
			mustRun(t, "ip", "netns", "exec", p.NS, "wg", "set", p.Dev, "listen-port", c.port)
			key := "/dev/null"
			if c.psk {
				key = pskFile
			}
			mustRun(t, "ip", "netns", "exec", p.NS, "wg", "set", p.Dev, "peer", p.ClientKey.PublicKey().String(), "preshared-key", key)

			o, e, code := wgnsRun(t, "up", "--userspace", "--name", name, path)
			if code != 0 {
				t.Fatalf("up: exit %d\nstdout: %s\nstderr: %s", code, o, e)
			}
			t.Cleanup(func() { wgnsRun(t, "down", "--force", name) })
			for _, h := range c.hooks {
				want := fmt.Sprintf("%s:%d: %s is not run: hooks would run as root on the host, and the namespace already fails closed; ignored\n", path, h.line, h.key)
				if n := strings.Count(e, want); n != 1 {
					t.Errorf("the %s on line %d drew %d warnings %q, want one:\n%s", h.key, h.line, n, want, e)
				}
			}
			if n := strings.Count(e, "is not run"); n != len(c.hooks) {
				t.Errorf("%d hook warnings for %d hooks:\n%s", n, len(c.hooks), e)
			}
			if strings.Contains(e, p.ClientKey.String()) || strings.Contains(e, psk.String()) {
				t.Errorf("up showed a secret key:\n%s", e)
			}

			// -w: until one reply, or 10 s (on a loaded machine one packet may be lost).
			mustWgns(t, "exec", name, "--", "ping", "-c1", "-w10", peerTunnel4)
			if c.ipv6 {
				mustWgns(t, "exec", name, "--", "ping", "-6", "-c1", "-w10", peerTunnel6)
			}
			lookup := func(host, query string) {
				t.Helper()
				before := provQueriesFrom(dns, query)
				if out := mustWgns(t, "exec", name, "--", "getent", "ahostsv4", host); !strings.HasPrefix(out, provAnswer+" ") {
					t.Errorf("getent ahostsv4 %s inside: %q, want %s from the tunnel's DNS server", host, out, provAnswer)
				}
				waitFor(t, 5*time.Second, "the tunnel's DNS server to log "+query+" from the client", func() bool {
					return provQueriesFrom(dns, query) > before
				})
			}
			lookup("probe.wgns.test", "probe.wgns.test")
			if c.search != "" {
				lookup("probe", "probe."+c.search)
			}

			if o, e, code := wgnsRun(t, "down", name); code != 0 {
				t.Fatalf("down: exit %d\nstdout: %s\nstderr: %s", code, o, e)
			}
			if _, err := os.Lstat(hookFile); err == nil {
				t.Fatalf("a hook ran: %s exists", hookFile)
			}
			if after := mustRun(t, "nft", "list", "ruleset"); after != firewallBefore {
				t.Fatalf("the world's firewall changed (a hook ran?):\n%s", after)
			}
		})
	}
	t.Logf("%d provider configs up, checked and down in %v", len(corpus), time.Since(start).Round(time.Millisecond))
}

// TestIntegrationUpStrictRefusesHooks: `up --strict` refuses a config with a hook, naming its
// FILE:LINE, runs nothing and leaves nothing; `up --dry-run` of the same config warns and plans.
func TestIntegrationUpStrictRefusesHooks(t *testing.T) {
	dir := t.TempDir()
	own, _ := wgtypes.GeneratePrivateKey()
	peerKey, _ := wgtypes.GeneratePrivateKey()
	hookFile := filepath.Join(dir, "a-hook-ran")
	raw, err := os.ReadFile("testdata/providers/mullvad-killswitch.conf")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("{PRIVATE_KEY}", own.String(), "{PUBLIC_KEY}", peerKey.PublicKey().String(),
		"{ADDR4}", clientTunnel4, "{ADDR6}", clientTunnel6, "{DNS4}", peerTunnel4).Replace(string(raw))
	text = strings.Replace(text, "[Peer]", "PostUp = touch "+hookFile+"\n\n[Peer]", 1)
	path := filepath.Join(dir, "strict.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, "strict")
	_, e, code := wgnsRun(t, "up", "--userspace", "--strict", path)
	t.Cleanup(func() { wgnsRun(t, "down", "--force", "strict") })
	want := "wgns: " + path + ":6: PostUp is not run: hooks would run as root on the host, and the namespace already fails closed; refused (--strict)\n"
	if code == 0 || e != want {
		t.Errorf("up --strict: exit %d, stderr:\n%s\nwant:\n%s", code, e, want)
	}
	if after := snapshot(t, "strict"); after != before {
		t.Errorf("a refused config changed the world:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	o, e, code := wgnsRun(t, "up", "--dry-run", path)
	if code != 0 || !strings.Contains(o, "is valid; up would:") {
		t.Errorf("up --dry-run: exit %d\nstdout: %s\nstderr: %s", code, o, e)
	}
	for _, line := range []int{6, 7, 9} {
		if w := fmt.Sprintf("wgns: warning: %s:%d: ", path, line); !strings.Contains(e, w) {
			t.Errorf("up --dry-run does not warn %q:\n%s", w, e)
		}
	}
	if _, err := os.Lstat(hookFile); err == nil {
		t.Errorf("a hook ran: %s exists", hookFile)
	}
}
