package config

import (
	"io/fs"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// fuzzFS serves keyC from any path whose name starts with "good", a
// group-readable keyB from names starting with "open", and nothing else as a
// regular file. Names starting with "link" are root's links to "good.key",
// "loop" a link to itself, "user" a directory of uid 1000, "tmp" a sticky
// world-writable directory; every other name is a root directory. Neither
// private key is in the seeds, so any sign of them in a message came from a
// file.
type fuzzFS struct{}

func (fuzzFS) Lstat(path string) (fileInfo, error) {
	base := path[strings.LastIndexByte(path, '/')+1:]
	switch {
	case strings.HasPrefix(base, "good"):
		return fileInfo{Mode: 0o600}, nil
	case strings.HasPrefix(base, "open"):
		return fileInfo{Mode: 0o644}, nil
	case strings.HasPrefix(base, "link"), strings.HasPrefix(base, "loop"):
		return fileInfo{Mode: fs.ModeSymlink | 0o777}, nil
	case strings.HasPrefix(base, "user"):
		return fileInfo{Mode: fs.ModeDir | 0o755, UID: 1000}, nil
	case strings.HasPrefix(base, "tmp"):
		return fileInfo{Mode: fs.ModeDir | fs.ModeSticky | 0o777}, nil
	}
	return fileInfo{Mode: fs.ModeDir | 0o755}, nil
}

func (f fuzzFS) Readlink(path string) (string, error) {
	base := path[strings.LastIndexByte(path, '/')+1:]
	if strings.HasPrefix(base, "loop") {
		return base, nil
	}
	return "good.key", nil
}

func (f fuzzFS) ReadFile(path string, _ int64) (fileInfo, []byte, error) {
	fi, _ := f.Lstat(path)
	switch base := path[strings.LastIndexByte(path, '/')+1:]; {
	case strings.HasPrefix(base, "good"):
		return fi, []byte(keyC + "\n"), nil
	case strings.HasPrefix(base, "open"):
		return fi, []byte(keyB), nil
	}
	return fi, nil, nil
}

// keyPattern is a key as written: 43 base64 characters and a "=".
var keyPattern = regexp.MustCompile(`[A-Za-z0-9+/]{43}=`)

// writtenKeys returns the body (without "=") of every key written in s.
func writtenKeys(s string) []string {
	var keys []string
	for _, k := range keyPattern.FindAllString(s, -1) {
		keys = append(keys, k[:43])
	}
	return keys
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		ifc + peerB,
		"[Interface]\nPrivateKeyFile = good.key\nAddress = fd00::2\nDNS = fd00::53, example.com\n[Peer]\nPublicKey = {PB}\nPresharedKeyFile = /open.psk\nEndpoint = [fd00::1]:51820\nAllowedIPs = ::/0\n",
		ifc + "PostUp = echo {A}\n" + peerB,
		ifc + peerB + "Endpoint = {PSK}:1\n[Namespace]\nAllowInbound = 1/tcp\nFirewall = off\n",
		ifc + peerB + "[Namespace]\nUsers = alice, @wgns\nUsers = bob.x-y_z$ @{PB}\n",
		// wgnord's template: DNS and Address separated by spaces.
		"[Interface]\nPrivateKey = {A}\nAddress = 192.0.2.2/32 fd00::2/128\nMTU = 1350\nDNS = 192.0.2.53 198.51.100.53\n\n[Peer]\nPublicKey = {PB}\nAllowedIPs = 0.0.0.0/0, ::/0\tfd00::/8\nEndpoint = 203.0.113.1:51820\nPersistentKeepalive = 25\n",
		// Hooks (repeated) and keys that mean nothing in a namespace.
		ifc + "PostUp = iptables -I OUTPUT ! -o %i -j REJECT\nPostUp = resolvectl dns %i 192.0.2.1\nPreDown = true\nTable = off\nTable = 51820\nFwMark = 0x1\nSaveConfig = true\n" + peerB,
		// Secrets where a public key belongs.
		ifc + "[Peer]\nPublicKey = {A}\n",
		ifc + "[Peer]\nPublicKey = {PSK}\nPresharedKey = {PSK}\n",
		ifc + peerB + "PresharedKey = {A}\n",
		"[Interface]\nPrivateKeyFile = good.key\nAddress = 192.0.2.2\n[Peer]\nPublicKey = " + keyC + "\n",
		// Key files through links, loops, a user's and a sticky directory.
		"[Interface]\nPrivateKeyFile = /etc/link.key\nAddress = 192.0.2.2\n[Peer]\nPublicKey = {PB}\nPresharedKeyFile = /tmp/x/good.psk\n",
		"[Interface]\nPrivateKeyFile = /loop/good.key\nAddress = 192.0.2.2\n" + peerB,
		"[Interface]\nPrivateKeyFile = ../user/../good.key\nAddress = 192.0.2.2\n" + peerB,
		"[Interface]\nPrivateKeyFile = /tmp/link/good.key\nAddress = 192.0.2.2\n" + peerB,
		// Failover groups: two servers of one provider, a peer of its own, checks and timeouts.
		ifc + "DNS = 192.0.2.53\n" + peerB + "Endpoint = 203.0.113.1:51820\n[Peer]\nPublicKey = {PC}\nAllowedIPs = 0.0.0.0/0\nEndpoint = 203.0.113.2:51820\n" +
			"[Peer]\nPublicKey = " + mustPub(keyD) + "\nAllowedIPs = 10.0.0.0/8\n[Namespace]\nFailover = on\nFailoverTimeout = 1500ms\nFailoverCheck = 192.0.2.53\n",
		ifc + peerB + "[Peer]\nPublicKey = {PC}\nAllowedIPs = 0.0.0.0/0, ::/0\n[Namespace]\nFailover = off\nFailoverCheck = none\nFailoverTimeout = 3\n",
		// Ports: Publish in every shape, provider port forwarding with its command.
		ifc + "DNS = 192.0.2.1\n" + peerB + "[Namespace]\nPublish = 8080:80, 0.0.0.0:5353:53/udp [::1]:8443:443/TCP\nPortForward = natpmp\nPortForwardCommand = /usr/local/bin/tell --port\nPortForwardUser = debian-transmission\n",
		ifc + peerB + "[Namespace]\nPublish = [fe80::1%lo]:1:1, {PSK}:1:1\nPortForward = natpmp:{PSK}\n",
	} {
		f.Add([]byte(expand(f, s)))
	}
	l := newLoader(fuzzFS{}, 0)
	strict := newLoader(fuzzFS{}, 0, Strict())
	asUser := newLoader(fuzzFS{}, 1000)
	const name = "fuzz.conf"
	f.Fuzz(func(t *testing.T, data []byte) {
		input := string(data)
		keys := append(writtenKeys(input), keyB[:43], keyC[:43])
		noKeys := func(what, msg string) {
			t.Helper()
			if !strings.HasPrefix(msg, name+":") {
				t.Fatalf("%s does not start with %q: %s", what, name+":", msg)
			}
			for _, k := range keys {
				if strings.Contains(msg, k) {
					t.Fatalf("%s shows key %q: %s", what, k, msg)
				}
			}
		}
		for _, other := range []*loader{strict, asUser} {
			cfg, err := other.parse(name, data)
			if err != nil {
				noKeys("error", err.Error())
				continue
			}
			for _, w := range cfg.Warnings {
				noKeys("warning", w)
			}
		}
		cfg, err := l.parse(name, data)
		if err != nil {
			noKeys("error", err.Error())
			return
		}
		for _, w := range cfg.Warnings {
			noKeys("warning", w)
		}
		text := format(cfg)
		again, err := l.parse(name, []byte(text))
		if err != nil {
			t.Fatalf("parsing the formatted config: %v\n%s", err, text)
		}
		if !reflect.DeepEqual(withoutNoise(cfg), withoutNoise(again)) {
			t.Fatalf("round trip changed the config:\n%s\nbecame\n%s", dump(cfg), dump(again))
		}
	})
}
