package config

import (
	"fmt"
	"io/fs"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// format writes c back as a config that Parse reads to the same Config (but
// for Warnings and Peer.Line). Keys read from files are written inline.
func format(c *Config) string {
	var b strings.Builder
	line := func(key string, v any) { fmt.Fprintf(&b, "%s = %v\n", key, v) }
	b.WriteString("[Interface]\n")
	line("PrivateKey", c.Interface.PrivateKey.k.String())
	if len(c.Interface.Addresses) > 0 {
		line("Address", joinStrings(c.Interface.Addresses))
	}
	var dns []string
	for _, a := range c.Interface.DNS {
		dns = append(dns, a.String())
	}
	dns = append(dns, c.Interface.Search...)
	if len(dns) > 0 {
		line("DNS", strings.Join(dns, ", "))
	}
	if c.Interface.MTU != 0 {
		line("MTU", c.Interface.MTU)
	}
	if c.Interface.ListenPort != 0 {
		line("ListenPort", c.Interface.ListenPort)
	}
	for _, p := range c.Peers {
		b.WriteString("\n[Peer]\n")
		line("PublicKey", p.PublicKey.String())
		if p.PresharedKey != nil {
			line("PresharedKey", p.PresharedKey.k.String())
		}
		if p.Endpoint != "" {
			line("Endpoint", p.Endpoint)
		}
		if len(p.AllowedIPs) > 0 {
			line("AllowedIPs", joinStrings(p.AllowedIPs))
		}
		if p.PersistentKeepalive != 0 {
			line("PersistentKeepalive", p.PersistentKeepalive)
		}
	}
	if ns := c.Namespace; len(ns.AllowInbound) > 0 || !ns.Firewall || failoverSet(ns) || len(ns.Publish) > 0 || ns.PortForward != nil || len(ns.Users) > 0 {
		b.WriteString("\n[Namespace]\n")
		if len(ns.AllowInbound) > 0 {
			line("AllowInbound", joinStrings(ns.AllowInbound))
		}
		if !ns.Firewall {
			line("Firewall", "off")
		}
		formatFailover(line, ns)
		if len(ns.Publish) > 0 {
			line("Publish", joinStrings(ns.Publish))
		}
		if pf := ns.PortForward; pf != nil {
			line("PortForward", "natpmp:"+pf.Gateway.String())
			if pf.Command != nil {
				line("PortForwardCommand", strings.Join(pf.Command, " "))
				line("PortForwardUser", pf.User)
			}
		}
		if len(ns.Users) > 0 {
			line("Users", joinStrings(ns.Users))
		}
	}
	return b.String()
}

func joinStrings[T fmt.Stringer](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = x.String()
	}
	return strings.Join(s, ", ")
}

// dump renders every field of c, for golden comparisons. Secrets show only
// whether they are set; check their values with Key.
func dump(c *Config) string {
	var b strings.Builder
	in := c.Interface
	fmt.Fprintf(&b, "path %s\n", c.Path)
	fmt.Fprintf(&b, "interface private=%s public=%s\n", setOrNot(!in.PrivateKey.IsZero()), in.PublicKey)
	fmt.Fprintf(&b, "  addresses=%v dns=%v search=%q mtu=%d listenport=%d\n", in.Addresses, in.DNS, in.Search, in.MTU, in.ListenPort)
	for _, p := range c.Peers {
		fmt.Fprintf(&b, "peer line=%d public=%s psk=%s keepalive=%d\n", p.Line, p.PublicKey, setOrNot(p.PresharedKey != nil), p.PersistentKeepalive)
		fmt.Fprintf(&b, "  endpoint=%q host=%q port=%d allowed=%v\n", p.Endpoint, p.EndpointHost, p.EndpointPort, p.AllowedIPs)
	}
	fmt.Fprintf(&b, "namespace firewall=%t inbound=%v\n", c.Namespace.Firewall, c.Namespace.AllowInbound)
	dumpFailover(&b, c)
	for _, p := range c.Namespace.Publish {
		fmt.Fprintf(&b, "  publish line=%d %s\n", p.Line, p)
	}
	if pf := c.Namespace.PortForward; pf != nil {
		fmt.Fprintf(&b, "  portforward line=%d natpmp gateway=%s command=%q (line %d) user=%q (line %d)\n",
			pf.Line, pf.Gateway, pf.Command, pf.CommandLine, pf.User, pf.UserLine)
	}
	if len(c.Namespace.Users) > 0 {
		fmt.Fprintf(&b, "  users=%v\n", c.Namespace.Users)
	}
	for _, w := range c.Warnings {
		fmt.Fprintf(&b, "warning %s\n", w)
	}
	return b.String()
}

// withoutNoise returns a copy of c without what a round trip through format
// may change: warnings and peers' line numbers.
func withoutNoise(c *Config) *Config {
	cc := *c
	cc.Warnings = nil
	cc.Peers = slices.Clone(c.Peers)
	for i := range cc.Peers {
		cc.Peers[i].Line = 0
	}
	cc.Namespace.Publish = slices.Clone(c.Namespace.Publish)
	for i := range cc.Namespace.Publish {
		cc.Namespace.Publish[i].Line = 0
	}
	if pf := c.Namespace.PortForward; pf != nil {
		pf2 := *pf
		pf2.Line, pf2.CommandLine, pf2.UserLine = 0, 0, 0
		cc.Namespace.PortForward = &pf2
	}
	return &cc
}

func setOrNot(set bool) string {
	if set {
		return "set"
	}
	return "none"
}

// fakeFile is a file of a fakeFS: a regular file holding Data, a directory,
// or a symbolic link (Mode has fs.ModeSymlink) to Data.
type fakeFile struct {
	Mode fs.FileMode
	UID  uint32
	Data []byte
}

// fakeFS is a fileSystem serving files from a map of absolute paths. A
// directory that holds a listed path but is not listed itself is root's,
// mode 0755.
type fakeFS map[string]fakeFile

func (f fakeFS) lookup(path string) (fakeFile, error) {
	if ff, ok := f[path]; ok {
		return ff, nil
	}
	prefix := strings.TrimSuffix(path, "/") + "/"
	for p := range f {
		if strings.HasPrefix(p, prefix) {
			return fakeFile{Mode: fs.ModeDir | 0o755}, nil
		}
	}
	return fakeFile{}, &fs.PathError{Op: "lstat", Path: path, Err: syscall.ENOENT}
}

func (f fakeFS) Lstat(path string) (fileInfo, error) {
	ff, err := f.lookup(path)
	return fileInfo{Mode: ff.Mode, UID: ff.UID, Size: int64(len(ff.Data))}, err
}

func (f fakeFS) Readlink(path string) (string, error) {
	ff, err := f.lookup(path)
	if err == nil && ff.Mode&fs.ModeSymlink == 0 {
		err = &fs.PathError{Op: "readlink", Path: path, Err: syscall.EINVAL}
	}
	return string(ff.Data), err
}

func (f fakeFS) ReadFile(path string, limit int64) (fileInfo, []byte, error) {
	fi, err := f.Lstat(path)
	if err != nil || !fi.Mode.IsRegular() {
		return fi, nil, err
	}
	data := []byte(string(f[path].Data)) // a copy: the parser clears what it read
	return fi, data[:min(int64(len(data)), limit+1)], nil
}

// rootFile is a key file as it should be: root's, mode 0600.
func rootFile(data string) fakeFile {
	return fakeFile{Mode: 0o600, UID: 0, Data: []byte(data)}
}

// keyWindows returns every 43-character window of every run of base64
// characters of 43 or more in s: each could be (most of) a key.
func keyWindows(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i < len(s) && isBase64Char(s[i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 && i-start >= 43 {
			for j := start; j+43 <= i; j++ {
				out = append(out, s[j:j+43])
			}
		}
		start = -1
	}
	return out
}

// assertNoKeys fails if msg contains anything that looks like a key in input
// or any of the keys.
func assertNoKeys(t *testing.T, msg, input string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		input += "\n" + k
	}
	for _, w := range keyWindows(input) {
		if strings.Contains(msg, w) {
			t.Fatalf("message shows key material %q: %s", w, msg)
		}
	}
}

func TestFormatRoundTrip(t *testing.T) {
	a, b := mustKey(t, keyA), mustKey(t, keyB)
	psk := NewSecret(mustKey(t, keyPSK))
	c := &Config{
		Path: "rt.conf",
		Interface: Interface{
			PrivateKey: NewSecret(a),
			PublicKey:  a.PublicKey(),
			Addresses:  []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24"), netip.MustParsePrefix("fd00::2/64")},
			DNS:        []netip.Addr{netip.MustParseAddr("192.0.2.1")},
			Search:     []string{"example.com"},
			MTU:        1400,
			ListenPort: 51820,
		},
		Peers: []Peer{{
			PublicKey: b.PublicKey(), PresharedKey: &psk,
			Endpoint: "[fd00::1]:51820", EndpointHost: "fd00::1", EndpointPort: 51820,
			AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
			PersistentKeepalive: 25, Line: 8,
		}},
		Namespace: Namespace{AllowInbound: []Port{{8080, "tcp"}}, Firewall: false,
			Publish: []Publish{
				{Host: netip.MustParseAddrPort("127.0.0.1:8080"), Port: 80, Proto: "tcp"},
				{Host: netip.MustParseAddrPort("[::]:5353"), Port: 53, Proto: "udp"},
			},
			PortForward: &PortForward{Gateway: netip.MustParseAddr("192.0.2.1"),
				Command: []string{"/usr/local/bin/tell", "--port"}, User: "debian-transmission"},
			Users: []User{{Name: "alice"}, {Name: "wgns", Group: true}},
		},
	}
	got, err := newLoader(fakeFS{}, 0).parse("rt.conf", []byte(format(c)))
	if err != nil {
		t.Fatal(err)
	}
	if d1, d2 := dump(withoutNoise(c)), dump(withoutNoise(got)); d1 != d2 {
		t.Errorf("round trip changed the config:\n--- want\n%s--- got\n%s", d1, d2)
	}
	if got.Interface.PrivateKey.Key() != a || got.Peers[0].PresharedKey.Key() != psk.Key() {
		t.Error("round trip changed a secret")
	}
}

func mustKey(t testing.TB, s string) wgtypes.Key {
	t.Helper()
	k, err := wgtypes.ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
