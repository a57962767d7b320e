package config

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Test keys, made for these tests with wg genkey. Peers are named by the
// private key their public key comes from.
const (
	keyA   = "ECl9LDPqIYvjjTuQfy39seESiaOJd7XSUPJjiWtqolM=" // our interface
	keyB   = "qGaOS8XhDXw2c3ZtHv+VaQbFx8myYLANMJX7mF0Mi3k=" // peer B
	keyC   = "0MZnIh4iohkSS6byvCkcjsmXQqR11jG/cbYfB3+u2nw=" // peer C
	keyPSK = "qHYgeulmo00dCc3H0jNkZG/KhnsJyIooovV5T8bee1g=" // a preshared key
)

// expand replaces {A}, {PA}, {PB}, {PC} and {PSK} by keys.
func expand(t testing.TB, s string) string {
	t.Helper()
	return strings.NewReplacer(
		"{A}", keyA,
		"{PA}", mustKey(t, keyA).PublicKey().String(),
		"{PB}", mustKey(t, keyB).PublicKey().String(),
		"{PC}", mustKey(t, keyC).PublicKey().String(),
		"{PSK}", keyPSK,
	).Replace(s)
}

// mustPub returns the public key of private key k, in base64.
func mustPub(k string) string {
	key, err := wgtypes.ParseKey(k)
	if err != nil {
		panic(err)
	}
	return key.PublicKey().String()
}

// nonCanonical returns k with unused low bits set in its last character,
// which decodes with lax base64 but is not a key to wg(8).
func nonCanonical(k string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.IndexByte(alphabet, k[42])
	return k[:42] + string(alphabet[i|1]) + "="
}

const (
	ifc   = "[Interface]\nPrivateKey = {A}\nAddress = 192.0.2.2/32\n" // lines 1-3
	peerB = "[Peer]\nPublicKey = {PB}\nAllowedIPs = 0.0.0.0/0\n"      // 3 lines
	keyAt = "[Interface]\nPrivateKeyFile = /etc/wgns/wg0.key\nAddress = 192.0.2.2/32\n" + peerB
)

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name   string
		file   string // config name; default wg0.conf
		conf   string
		fs     fakeFS
		strict bool
		uid    uint32 // the user wgns runs as; root by default
		want   string
	}{
		// Structure.
		{name: "empty file", conf: "", want: "wg0.conf: no [Interface] section"},
		{name: "only comments", conf: "# nothing here\n\n  \t\n", want: "wg0.conf: no [Interface] section"},
		{name: "only a peer", conf: peerB, want: "wg0.conf: no [Interface] section"},
		{name: "no peer", conf: ifc, want: "wg0.conf: no [Peer] section; at least one is required"},
		{name: "line outside a section", conf: "PrivateKey = {A}\n" + ifc + peerB,
			want: "wg0.conf:1: outside any section; expected [Interface], [Peer] or [Namespace] first"},
		{name: "unknown section", conf: ifc + "[Peers]\n",
			want: `wg0.conf:4: unknown section "Peers"; expected [Interface], [Peer] or [Namespace]`},
		{name: "unclosed section header", conf: "[Interface\n",
			want: "wg0.conf:1: malformed section header; expected [Interface], [Peer] or [Namespace]"},
		{name: "text after section header", conf: "[Interface] x\n",
			want: "wg0.conf:1: malformed section header; expected [Interface], [Peer] or [Namespace]"},
		{name: "second Interface", conf: ifc + peerB + "[interface]\n",
			want: "wg0.conf:7: second [Interface] section (first on line 1); only one is allowed"},
		{name: "second Namespace", conf: ifc + peerB + "[Namespace]\n[NAMESPACE]\n",
			want: "wg0.conf:8: second [Namespace] section (first on line 7); only one is allowed"},
		{name: "NUL byte", conf: "[Interface]\nPrivateKey = {A}\nAddress = 192.0.2.2/32\x00\n",
			want: "wg0.conf:3: NUL byte; this is not a text file"},
		{name: "control character", conf: ifc + "\x1b[31m\n", want: "wg0.conf:4: control character 0x1b; this is not a text file"},
		{name: "invalid UTF-8", conf: ifc + "# caf\xe9\n", want: "wg0.conf:4: not valid UTF-8; this is not a text file"},

		// Lines and keys.
		{name: "missing equals sign", conf: "[Interface]\nPrivateKey {A}\n", want: "wg0.conf:2: malformed line; expected Key = value"},
		{name: "space in key name", conf: "[Interface]\nPrivate Key = {A}\n", want: "wg0.conf:2: malformed line; expected Key = value"},
		{name: "empty key name", conf: "[Interface]\n= {A}\n", want: "wg0.conf:2: malformed line; expected Key = value"},
		{name: "a key alone on a line", conf: "[Interface]\n{A}\n",
			want: "wg0.conf:2: unknown key (value not shown: it looks like a key) in [Interface]"},
		{name: "unknown key", conf: ifc + "Foo = bar\n" + peerB, want: `wg0.conf:4: unknown key "Foo" in [Interface]`},
		{name: "misspelt key", conf: ifc + "Adress = 10.0.0.3/32\n" + peerB, want: `wg0.conf:4: unknown key "Adress" in [Interface]; did you mean Address?`},
		{name: "misspelt key, letters swapped", conf: ifc + peerB + "Endpiont = 198.51.100.9:51820\n", want: `wg0.conf:7: unknown key "Endpiont" in [Peer]; did you mean Endpoint?`},
		{name: "peer key in Interface", conf: ifc + "PublicKey = {PB}\n" + peerB,
			want: "wg0.conf:4: PublicKey belongs in [Peer], not in [Interface]"},
		{name: "namespace key in Peer", conf: ifc + peerB + "Firewall = off\n",
			want: "wg0.conf:7: Firewall belongs in [Namespace], not in [Peer]"},
		{name: "duplicate PrivateKey", conf: ifc + "privatekey = {A}\n" + peerB,
			want: "wg0.conf:4: duplicate PrivateKey (first on line 2)"},
		{name: "duplicate MTU", conf: ifc + "MTU = 1420\nMTU = 1400\n" + peerB,
			want: "wg0.conf:5: duplicate MTU (first on line 4)"},
		{name: "duplicate ListenPort", conf: ifc + "ListenPort = 1\nListenPort = 2\n" + peerB,
			want: "wg0.conf:5: duplicate ListenPort (first on line 4)"},
		{name: "duplicate PublicKey in a peer", conf: ifc + peerB + "PublicKey = {PB}\n",
			want: "wg0.conf:7: duplicate PublicKey (first on line 5)"},
		{name: "duplicate Endpoint", conf: ifc + peerB + "Endpoint = 192.0.2.1:1\nEndpoint = 192.0.2.1:2\n",
			want: "wg0.conf:8: duplicate Endpoint (first on line 7)"},
		{name: "duplicate PersistentKeepalive", conf: ifc + peerB + "PersistentKeepalive = 25\nPersistentKeepalive = off\n",
			want: "wg0.conf:8: duplicate PersistentKeepalive (first on line 7)"},
		{name: "duplicate PresharedKey", conf: ifc + peerB + "PresharedKey = {PSK}\nPresharedKey = {PSK}\n",
			want: "wg0.conf:8: duplicate PresharedKey (first on line 7)"},
		{name: "duplicate Firewall", conf: ifc + peerB + "[Namespace]\nFirewall = on\nFirewall = off\n",
			want: "wg0.conf:9: duplicate Firewall (first on line 8)"},
		{name: "strict: hook PostUp", conf: ifc + "PostUp = iptables -A FORWARD -i %i -j ACCEPT\n" + peerB, strict: true,
			want: "wg0.conf:4: PostUp is not run: hooks would run as root on the host, and the namespace already fails closed; refused (--strict)"},
		{name: "strict: hook predown in any case", conf: ifc + "predown = true\n" + peerB, strict: true,
			want: "wg0.conf:4: PreDown is not run: hooks would run as root on the host, and the namespace already fails closed; refused (--strict)"},
		{name: "strict: first ignored line", conf: ifc + "Table = off\nPostUp = true\n" + peerB, strict: true,
			want: "wg0.conf:4: Table means nothing inside a namespace; refused (--strict)"},
		{name: "hook in a Peer", conf: ifc + peerB + "PostUp = true\n", want: "wg0.conf:7: PostUp belongs in [Interface], not in [Peer]"},
		{name: "empty single value", conf: ifc + "MTU =\n" + peerB, want: "wg0.conf:4: MTU has no value"},

		// Keys.
		{name: "PrivateKey too short", conf: "[Interface]\nPrivateKey = abc\n",
			want: "wg0.conf:2: invalid PrivateKey: must be 44 characters of base64 encoding 32 bytes"},
		{name: "PrivateKey too long", conf: "[Interface]\nPrivateKey = {A}{A}\n",
			want: "wg0.conf:2: invalid PrivateKey: must be 44 characters of base64 encoding 32 bytes"},
		{name: "PrivateKey not base64", conf: "[Interface]\nPrivateKey = " + strings.Repeat("!", 43) + "=\n",
			want: "wg0.conf:2: invalid PrivateKey: must be 44 characters of base64 encoding 32 bytes"},
		{name: "PrivateKey non-canonical base64", conf: "[Interface]\nPrivateKey = " + nonCanonical(keyA) + "\n",
			want: "wg0.conf:2: invalid PrivateKey: must be 44 characters of base64 encoding 32 bytes"},
		{name: "PrivateKey all zeros", conf: "[Interface]\nPrivateKey = " + strings.Repeat("A", 43) + "=\n",
			want: "wg0.conf:2: invalid PrivateKey: all zeros, which is not a usable key"},
		{name: "PrivateKey empty", conf: "[Interface]\nPrivateKey =\n", want: "wg0.conf:2: PrivateKey has no value"},
		{name: "no PrivateKey", conf: "[Interface]\nAddress = 192.0.2.2/32\n" + peerB,
			want: "wg0.conf:1: [Interface] has neither PrivateKey nor PrivateKeyFile"},
		{name: "PrivateKey and PrivateKeyFile", conf: ifc + "PrivateKeyFile = /etc/wgns/wg0.key\n" + peerB,
			want: "wg0.conf:4: PrivateKeyFile conflicts with PrivateKey on line 2; use one of them"},
		{name: "PrivateKeyFile and PrivateKey", conf: "[Interface]\nPrivateKeyFile = /k\nPrivateKey = {A}\n",
			want: "wg0.conf:3: PrivateKey conflicts with PrivateKeyFile on line 2; use one of them"},
		{name: "PublicKey invalid", conf: ifc + "[Peer]\nPublicKey = {PB}x\n",
			want: "wg0.conf:5: invalid PublicKey: must be 44 characters of base64 encoding 32 bytes"},
		{name: "PublicKey all zeros", conf: ifc + "[Peer]\nPublicKey = " + strings.Repeat("A", 43) + "=\n",
			want: "wg0.conf:5: invalid PublicKey: all zeros, which is not a usable key"},
		{name: "peer without PublicKey", conf: ifc + "[Peer]\nAllowedIPs = 0.0.0.0/0\n",
			want: "wg0.conf:4: [Peer] has no PublicKey"},
		{name: "peer is ourselves", conf: ifc + peerB + "[Peer]\nPublicKey = {PA}\n",
			want: "wg0.conf:8: PublicKey is this interface's own public key (from PrivateKey on line 2); a peer is the other end of the tunnel"},
		{name: "peer is ourselves, key from file", conf: "[Interface]\nPrivateKeyFile = /etc/wgns/wg0.key\nAddress = 192.0.2.2/32\n[Peer]\nPublicKey = {PA}\n",
			fs:   fakeFS{"/etc/wgns/wg0.key": rootFile(keyA + "\n")},
			want: "wg0.conf:5: PublicKey is this interface's own public key (from PrivateKeyFile on line 2); a peer is the other end of the tunnel"},
		{name: "PublicKey is the PrivateKey", conf: ifc + peerB + "[Peer]\nPublicKey = {A}\nAllowedIPs = 198.51.100.0/24\n",
			want: "wg0.conf:8: PublicKey is this interface's private key (from PrivateKey on line 2): a peer's PublicKey is the other end's public key; replace a private key that anyone else has seen"},
		{name: "PublicKey is the key in PrivateKeyFile", conf: "[Interface]\nPrivateKeyFile = /etc/wgns/wg0.key\nAddress = 192.0.2.2/32\n[Peer]\nPublicKey = {A}\n",
			fs:   fakeFS{"/etc/wgns/wg0.key": rootFile(keyA + "\n")},
			want: "wg0.conf:5: PublicKey is this interface's private key (from PrivateKeyFile on line 2): a peer's PublicKey is the other end's public key; replace a private key that anyone else has seen"},
		{name: "PublicKey is its own PresharedKey", conf: ifc + "[Peer]\nPublicKey = {PSK}\nPresharedKey = {PSK}\n",
			want: "wg0.conf:5: PublicKey is a preshared key (from PresharedKey on line 6): a peer's PublicKey is the other end's public key; replace a preshared key that anyone else has seen"},
		{name: "PublicKey is another peer's PresharedKeyFile", conf: ifc + peerB + "PresharedKeyFile = /etc/wgns/psk\n[Peer]\nPublicKey = {PSK}\nAllowedIPs = 198.51.100.0/24\n",
			fs:   fakeFS{"/etc/wgns/psk": rootFile(keyPSK)},
			want: "wg0.conf:9: PublicKey is a preshared key (from PresharedKeyFile on line 7): a peer's PublicKey is the other end's public key; replace a preshared key that anyone else has seen"},
		{name: "PresharedKey is the PrivateKey", conf: ifc + peerB + "PresharedKey = {A}\n",
			want: "wg0.conf:7: PresharedKey holds this interface's private key (from PrivateKey on line 2); a preshared key is a secret of its own, shared with the peer (wg genpsk makes one)"},
		{name: "same peer twice", conf: ifc + peerB + "[Peer]\nPublicKey = {PB}\n",
			want: "wg0.conf:8: same PublicKey as the [Peer] on line 4; list each peer once"},
		{name: "PresharedKey invalid", conf: ifc + peerB + "PresharedKey = {PSK}{PSK}\n",
			want: "wg0.conf:7: invalid PresharedKey: must be 44 characters of base64 encoding 32 bytes"},
		{name: "PresharedKey and PresharedKeyFile", conf: ifc + peerB + "PresharedKey = {PSK}\nPresharedKeyFile = /etc/wgns/psk\n",
			want: "wg0.conf:8: PresharedKeyFile conflicts with PresharedKey on line 7; use one of them"},

		// Key files.
		{name: "PrivateKeyFile missing", conf: keyAt,
			want: `wg0.conf:2: PrivateKeyFile "/etc/wgns/wg0.key": no such file or directory`},
		{name: "PrivateKeyFile readable by group", conf: keyAt,
			fs:   fakeFS{"/etc/wgns/wg0.key": {Mode: 0o640, Data: []byte(keyA)}},
			want: `wg0.conf:2: PrivateKeyFile "/etc/wgns/wg0.key": readable by group or others (mode 0640); chmod 600 it`},
		{name: "PrivateKeyFile readable by others", conf: keyAt,
			fs:   fakeFS{"/etc/wgns/wg0.key": {Mode: 0o604, Data: []byte(keyA)}},
			want: `wg0.conf:2: PrivateKeyFile "/etc/wgns/wg0.key": readable by group or others (mode 0604); chmod 600 it`},
		{name: "PrivateKeyFile writable by others", conf: keyAt,
			fs:   fakeFS{"/etc/wgns/wg0.key": {Mode: 0o602, Data: []byte(keyA)}},
			want: `wg0.conf:2: PrivateKeyFile "/etc/wgns/wg0.key": writable by group or others (mode 0602); chmod 600 it`},
		{name: "PrivateKeyFile executable by group", conf: keyAt,
			fs:   fakeFS{"/etc/wgns/wg0.key": {Mode: 0o610, Data: []byte(keyA)}},
			want: `wg0.conf:2: PrivateKeyFile "/etc/wgns/wg0.key": accessible by group or others (mode 0610); chmod 600 it`},
		{name: "PrivateKeyFile not root's", conf: keyAt,
			fs:   fakeFS{"/etc/wgns/wg0.key": {Mode: 0o600, UID: 1000, Data: []byte(keyA)}},
			want: `wg0.conf:2: PrivateKeyFile "/etc/wgns/wg0.key": owned by uid 1000, not root; chown root it`},
		{name: "PrivateKeyFile symlink", conf: keyAt,
			fs:   fakeFS{"/etc/wgns/wg0.key": {Mode: fs.ModeSymlink | 0o777}},
			want: `wg0.conf:2: PrivateKeyFile "/etc/wgns/wg0.key": not a regular file (symbolic link)`},
		{name: "PrivateKeyFile directory", conf: keyAt,
			fs:   fakeFS{"/etc/wgns/wg0.key": {Mode: fs.ModeDir | 0o700}},
			want: `wg0.conf:2: PrivateKeyFile "/etc/wgns/wg0.key": not a regular file (directory)`},
		{name: "PrivateKeyFile empty", conf: keyAt, fs: fakeFS{"/etc/wgns/wg0.key": rootFile(" \n")},
			want: `wg0.conf:2: PrivateKeyFile "/etc/wgns/wg0.key": empty; it must hold a key`},
		{name: "PrivateKeyFile not a key", conf: keyAt, fs: fakeFS{"/etc/wgns/wg0.key": rootFile("[Interface]\nPrivateKey = " + keyA + "\n")},
			want: `wg0.conf:2: PrivateKeyFile "/etc/wgns/wg0.key": does not hold a key: must be 44 characters of base64 encoding 32 bytes`},
		{name: "PrivateKeyFile too large", conf: keyAt, fs: fakeFS{"/etc/wgns/wg0.key": rootFile(keyA + strings.Repeat(" ", maxKeyFile))},
			want: `wg0.conf:2: PrivateKeyFile "/etc/wgns/wg0.key": too large to hold a key`},
		{name: "PrivateKeyFile relative to the config", file: "/etc/wgns/work.conf",
			conf: "[Interface]\nPrivateKeyFile = keys/work.key\nAddress = 192.0.2.2/32\n" + peerB,
			fs:   fakeFS{"/etc/wgns/keys/work.key": {Mode: 0o644, Data: []byte(keyA)}},
			want: `/etc/wgns/work.conf:2: PrivateKeyFile "/etc/wgns/keys/work.key": readable by group or others (mode 0644); chmod 600 it`},
		{name: "PrivateKeyFile in a user's directory", conf: strings.Replace(keyAt, "/etc/wgns/wg0.key", "/home/alice/wg0.key", 1),
			fs:   fakeFS{"/home/alice": {Mode: fs.ModeDir | 0o755, UID: 1000}, "/home/alice/wg0.key": rootFile(keyA)},
			want: `wg0.conf:2: PrivateKeyFile "/home/alice/wg0.key": in directory /home/alice, owned by uid 1000, not root: that user could replace the file; move it to a directory only root can change, such as /etc/wgns`},
		{name: "PrivateKeyFile below a user's directory", conf: strings.Replace(keyAt, "/etc/wgns/wg0.key", "/home/alice/vpn/wg0.key", 1),
			fs:   fakeFS{"/home/alice": {Mode: fs.ModeDir | 0o700, UID: 1000}, "/home/alice/vpn/wg0.key": rootFile(keyA)},
			want: `wg0.conf:2: PrivateKeyFile "/home/alice/vpn/wg0.key": in directory /home/alice, owned by uid 1000, not root: that user could replace the file; move it to a directory only root can change, such as /etc/wgns`},
		{name: "PrivateKeyFile in a group-writable directory", conf: strings.Replace(keyAt, "/etc/wgns/wg0.key", "/srv/vpn/wg0.key", 1),
			fs:   fakeFS{"/srv/vpn": {Mode: fs.ModeDir | fs.ModeSetgid | 0o775}, "/srv/vpn/wg0.key": rootFile(keyA)},
			want: `wg0.conf:2: PrivateKeyFile "/srv/vpn/wg0.key": in directory /srv/vpn, writable by group or others (mode 2775): they could replace the file; chmod go-w /srv/vpn, or move the file to a directory only root can change`},
		{name: "PrivateKeyFile in a user's directory under /tmp", conf: strings.Replace(keyAt, "/etc/wgns/wg0.key", "/tmp/alice/wg0.key", 1),
			fs: fakeFS{"/tmp": {Mode: fs.ModeDir | fs.ModeSticky | 0o777}, "/tmp/alice": {Mode: fs.ModeDir | 0o700, UID: 1000},
				"/tmp/alice/wg0.key": rootFile(keyA)},
			want: `wg0.conf:2: PrivateKeyFile "/tmp/alice/wg0.key": in directory /tmp/alice, owned by uid 1000, not root: that user could replace the file; move it to a directory only root can change, such as /etc/wgns`},
		{name: "PrivateKeyFile in a world-writable directory that is not sticky", conf: strings.Replace(keyAt, "/etc/wgns/wg0.key", "/tmp/wg0.key", 1),
			fs:   fakeFS{"/tmp": {Mode: fs.ModeDir | 0o777}, "/tmp/wg0.key": rootFile(keyA)},
			want: `wg0.conf:2: PrivateKeyFile "/tmp/wg0.key": in directory /tmp, writable by group or others (mode 0777): they could replace the file; chmod go-w /tmp, or move the file to a directory only root can change`},
		{name: "PrivateKeyFile through a user's symbolic link", conf: strings.Replace(keyAt, "/etc/wgns/wg0.key", "/tmp/keys/wg0.key", 1),
			fs: fakeFS{"/tmp": {Mode: fs.ModeDir | fs.ModeSticky | 0o777}, "/tmp/keys": {Mode: fs.ModeSymlink | 0o777, UID: 1000, Data: []byte("/etc/wgns")},
				"/etc/wgns/wg0.key": rootFile(keyA)},
			want: `wg0.conf:2: PrivateKeyFile "/tmp/keys/wg0.key": through symbolic link /tmp/keys, owned by uid 1000, not root: that user could point it elsewhere`},
		{name: "PrivateKeyFile through root's link into a user's directory", conf: keyAt,
			fs: fakeFS{"/etc/wgns": {Mode: fs.ModeSymlink | 0o777, Data: []byte("../home/alice/wgns")}, "/home/alice": {Mode: fs.ModeDir | 0o755, UID: 1000},
				"/home/alice/wgns/wg0.key": rootFile(keyA)},
			want: `wg0.conf:2: PrivateKeyFile "/etc/wgns/wg0.key": in directory /home/alice, owned by uid 1000, not root: that user could replace the file; move it to a directory only root can change, such as /etc/wgns`},
		{name: "PrivateKeyFile under a writable root directory", conf: keyAt,
			fs:   fakeFS{"/": {Mode: fs.ModeDir | 0o757}, "/etc/wgns/wg0.key": rootFile(keyA)},
			want: `wg0.conf:2: PrivateKeyFile "/etc/wgns/wg0.key": in directory /, writable by group or others (mode 0757): they could replace the file; chmod go-w /, or move the file to a directory only root can change`},
		{name: "PrivateKeyFile under a file", conf: keyAt,
			fs:   fakeFS{"/etc/wgns": rootFile("not a directory")},
			want: `wg0.conf:2: PrivateKeyFile "/etc/wgns/wg0.key": not a directory`},
		{name: "PrivateKeyFile through a loop", conf: keyAt,
			fs:   fakeFS{"/etc/wgns": {Mode: fs.ModeSymlink | 0o777, Data: []byte("wgns")}},
			want: `wg0.conf:2: PrivateKeyFile "/etc/wgns/wg0.key": too many levels of symbolic links`},
		{name: "PrivateKeyFile of another user, run as a user", conf: keyAt, uid: 1000,
			fs:   fakeFS{"/etc/wgns/wg0.key": {Mode: 0o600, UID: 1002, Data: []byte(keyA)}},
			want: `wg0.conf:2: PrivateKeyFile "/etc/wgns/wg0.key": owned by uid 1002, neither root nor you (uid 1000); chown root it`},
		{name: "PresharedKeyFile readable", conf: ifc + peerB + "PresharedKeyFile = /etc/wgns/psk\n",
			fs:   fakeFS{"/etc/wgns/psk": {Mode: 0o640, Data: []byte(keyPSK)}},
			want: `wg0.conf:7: PresharedKeyFile "/etc/wgns/psk": readable by group or others (mode 0640); chmod 600 it`},

		// Interface values.
		{name: "no Address", conf: "[Interface]\nPrivateKey = {A}\n" + peerB, want: "wg0.conf:1: [Interface] has no Address"},
		{name: "Address not an IP", conf: ifc + "Address = 192.0.2.300\n" + peerB,
			want: `wg0.conf:4: invalid Address "192.0.2.300": not an IP address or prefix`},
		{name: "Address prefix too long", conf: ifc + "Address = 192.0.2.3/33\n" + peerB,
			want: `wg0.conf:4: invalid Address "192.0.2.3/33": prefix length must be 0-32 for IPv4`},
		{name: "Address IPv6 prefix too long", conf: ifc + "Address = fd00::3/129\n" + peerB,
			want: `wg0.conf:4: invalid Address "fd00::3/129": prefix length must be 0-128 for IPv6`},
		{name: "Address unspecified", conf: ifc + "Address = 0.0.0.0/0\n" + peerB,
			want: `wg0.conf:4: invalid Address "0.0.0.0/0": unspecified address`},
		{name: "Address multicast", conf: ifc + "Address = fd00::3, ff02::1\n" + peerB,
			want: `wg0.conf:4: invalid Address "ff02::1": multicast address`},
		{name: "Address with zone", conf: ifc + "Address = fe80::1%eth0/64\n" + peerB,
			want: `wg0.conf:4: invalid Address "fe80::1%eth0/64": IPv6 zones are not allowed`},
		{name: "Address IPv4-mapped", conf: ifc + "Address = ::ffff:192.0.2.9\n" + peerB,
			want: `wg0.conf:4: invalid Address "::ffff:192.0.2.9": IPv4-mapped IPv6 address; write it as IPv4`},
		{name: "Address separated by semicolons", conf: ifc + "Address = 192.0.2.3;fd00::3\n" + peerB,
			want: `wg0.conf:4: invalid Address "192.0.2.3;fd00::3": not an IP address or prefix (separate entries with commas or spaces)`},
		{name: "Address space-separated, second bad", conf: ifc + "Address = 192.0.2.3/32 fd00::3/129\n" + peerB,
			want: `wg0.conf:4: invalid Address "fd00::3/129": prefix length must be 0-128 for IPv6`},
		{name: "Address twice", conf: ifc + "Address = fd00::2, 192.0.2.2/24\n" + peerB,
			want: "wg0.conf:4: Address 192.0.2.2 is listed twice (first on line 3)"},
		{name: "DNS neither IP nor domain", conf: ifc + "DNS = 192.0.2.1, bad_domain\n" + peerB,
			want: `wg0.conf:4: invalid DNS "bad_domain": neither an IP address nor a valid search domain`},
		{name: "DNS mistyped IPv4", conf: ifc + "DNS = 192.0.2.256\n" + peerB,
			want: `wg0.conf:4: invalid DNS "192.0.2.256": neither an IP address nor a valid search domain`},
		{name: "DNS unspecified", conf: ifc + "DNS = ::\n" + peerB,
			want: `wg0.conf:4: invalid DNS "::": unspecified address`},
		{name: "DNS domain too long", conf: ifc + "DNS = " + strings.Repeat("abcdefg.", 32) + "com\n" + peerB,
			want: `wg0.conf:4: invalid DNS "abcdefg.abcdefg.abcdefg.abcdefg.abcdefg.abcdefg.abcdefg.abcdefg."...: neither an IP address nor a valid search domain`},
		{name: "MTU not a number", conf: ifc + "MTU = abc\n" + peerB, want: `wg0.conf:4: invalid MTU "abc": not a whole number`},
		{name: "MTU negative", conf: ifc + "MTU = -1\n" + peerB, want: `wg0.conf:4: invalid MTU "-1": not a whole number`},
		{name: "MTU 0", conf: ifc + "MTU = 0\n" + peerB, want: "wg0.conf:4: MTU 0 is too small (minimum 576)"},
		{name: "MTU 575", conf: ifc + "MTU = 575\n" + peerB, want: "wg0.conf:4: MTU 575 is too small (minimum 576)"},
		{name: "MTU 65536", conf: ifc + "MTU = 65536\n" + peerB, want: "wg0.conf:4: MTU 65536 is too large (maximum 65535)"},
		{name: "MTU huge", conf: ifc + "MTU = 99999999999999999999999\n" + peerB, want: "wg0.conf:4: MTU 2147483648 is too large (maximum 65535)"},
		{name: "MTU 1279 with an IPv6 Address", conf: ifc + "Address = fd00::2\nMTU = 1279\n" + peerB,
			want: "wg0.conf:5: MTU 1279 is too small: IPv6 needs at least 1280"},
		{name: "MTU 1279 with IPv6 AllowedIPs", conf: ifc + "MTU = 1279\n" + peerB + "AllowedIPs = ::/0\n",
			want: "wg0.conf:4: MTU 1279 is too small: IPv6 needs at least 1280"},
		{name: "ListenPort too large", conf: ifc + "ListenPort = 65536\n" + peerB,
			want: `wg0.conf:4: invalid ListenPort "65536": must be a port number 0-65535`},
		{name: "ListenPort not a number", conf: ifc + "ListenPort = random\n" + peerB,
			want: `wg0.conf:4: invalid ListenPort "random": must be a port number 0-65535`},

		// Peer values.
		{name: "AllowedIPs not a prefix", conf: ifc + peerB + "AllowedIPs = 198.51.100.0/24, example.com\n",
			want: `wg0.conf:7: invalid AllowedIPs "example.com": not an IP address or prefix`},
		{name: "AllowedIPs prefix too long", conf: ifc + peerB + "AllowedIPs = 198.51.100.0/33\n",
			want: `wg0.conf:7: invalid AllowedIPs "198.51.100.0/33": prefix length must be 0-32 for IPv4`},
		{name: "AllowedIPs prefix not a number", conf: ifc + peerB + "AllowedIPs = 198.51.100.0/2x\n",
			want: `wg0.conf:7: invalid AllowedIPs "198.51.100.0/2x": the prefix length after "/" is not a number`},
		{name: "AllowedIPs no prefix length", conf: ifc + peerB + "AllowedIPs = fd00::/\n",
			want: `wg0.conf:7: invalid AllowedIPs "fd00::/": no prefix length after "/"`},
		{name: "AllowedIPs separated by semicolons", conf: ifc + peerB + "AllowedIPs = 198.51.100.0/24;fd00::/64\n",
			want: `wg0.conf:7: invalid AllowedIPs "198.51.100.0/24;fd00::/64": the prefix length after "/" is not a number (separate entries with commas or spaces)`},
		{name: "AllowedIPs in two peers", conf: ifc + peerB + "[Peer]\nPublicKey = {PC}\nAllowedIPs = 198.51.100.0/24, 0.0.0.7/0\n",
			want: "wg0.conf:9: AllowedIPs 0.0.0.0/0 is already allowed for the [Peer] on line 4 (AllowedIPs on line 6); a prefix can belong to one peer only, unless [Namespace] Failover = on makes peers with identical AllowedIPs a failover group"},
		{name: "AllowedIPs twice in a peer", conf: ifc + peerB + "AllowedIPs = 0.0.0.0/0\n",
			want: "wg0.conf:7: AllowedIPs 0.0.0.0/0 is listed twice (first on line 6)"},
		{name: "Endpoint unclosed bracket", conf: ifc + peerB + "Endpoint = [::1\n",
			want: `wg0.conf:7: invalid Endpoint "[::1": missing "]" after the IPv6 address`},
		{name: "Endpoint without port", conf: ifc + peerB + "Endpoint = vpn.example.com\n",
			want: `wg0.conf:7: invalid Endpoint "vpn.example.com": missing port; expected host:port or [IPv6]:port`},
		{name: "Endpoint IPv6 without port", conf: ifc + peerB + "Endpoint = [fd00::1]\n",
			want: `wg0.conf:7: invalid Endpoint "[fd00::1]": missing port; expected host:port or [IPv6]:port`},
		{name: "Endpoint empty port", conf: ifc + peerB + "Endpoint = 192.0.2.1:\n",
			want: `wg0.conf:7: invalid Endpoint "192.0.2.1:": port must be 1-65535`},
		{name: "Endpoint port 0", conf: ifc + peerB + "Endpoint = 192.0.2.1:0\n",
			want: `wg0.conf:7: invalid Endpoint "192.0.2.1:0": port must be 1-65535`},
		{name: "Endpoint port 70000", conf: ifc + peerB + "Endpoint = [fd00::1]:70000\n",
			want: `wg0.conf:7: invalid Endpoint "[fd00::1]:70000": port must be 1-65535`},
		{name: "Endpoint IPv6 without brackets", conf: ifc + peerB + "Endpoint = fd00::1:51820\n",
			want: `wg0.conf:7: invalid Endpoint "fd00::1:51820": an IPv6 address must be in brackets, like [fd00::1]:51820`},
		{name: "Endpoint IPv4 in brackets", conf: ifc + peerB + "Endpoint = [192.0.2.1]:51820\n",
			want: `wg0.conf:7: invalid Endpoint "[192.0.2.1]:51820": brackets are only for IPv6 addresses`},
		{name: "Endpoint name in brackets", conf: ifc + peerB + "Endpoint = [vpn.example.com]:51820\n",
			want: `wg0.conf:7: invalid Endpoint "[vpn.example.com]:51820": not an IPv6 address inside the brackets`},
		{name: "Endpoint bad host name", conf: ifc + peerB + "Endpoint = bad_host.example.com:51820\n",
			want: `wg0.conf:7: invalid Endpoint "bad_host.example.com:51820": host is neither an IP address nor a valid host name`},
		{name: "Endpoint no host", conf: ifc + peerB + "Endpoint = :51820\n",
			want: `wg0.conf:7: invalid Endpoint ":51820": missing host`},
		{name: "Endpoint unspecified", conf: ifc + peerB + "Endpoint = 0.0.0.0:51820\n",
			want: `wg0.conf:7: invalid Endpoint "0.0.0.0:51820": unspecified address`},
		{name: "Endpoint holding a key", conf: ifc + peerB + "Endpoint = {PC}\n",
			want: `wg0.conf:7: invalid Endpoint (value not shown: it looks like a key): missing port; expected host:port or [IPv6]:port`},
		{name: "Endpoint holding a key without its =", conf: ifc + "# old: {PC}\n" + peerB + "Endpoint = " + mustPub(keyC)[:43] + "\n",
			want: `wg0.conf:8: invalid Endpoint (value not shown: it looks like a key): missing port; expected host:port or [IPv6]:port`},
		{name: "PersistentKeepalive word", conf: ifc + peerB + "PersistentKeepalive = sometimes\n",
			want: `wg0.conf:7: invalid PersistentKeepalive "sometimes": must be off or 0-65535 seconds`},
		{name: "PersistentKeepalive too large", conf: ifc + peerB + "PersistentKeepalive = 65536\n",
			want: `wg0.conf:7: invalid PersistentKeepalive "65536": must be off or 0-65535 seconds`},

		// Namespace values.
		{name: "AllowInbound without protocol", conf: ifc + peerB + "[Namespace]\nAllowInbound = 51413/tcp, 8080\n",
			want: `wg0.conf:8: invalid AllowInbound "8080": needs a protocol, like 8080/tcp or 8080/udp`},
		{name: "AllowInbound port 0", conf: ifc + peerB + "[Namespace]\nAllowInbound = 0/tcp\n",
			want: `wg0.conf:8: invalid AllowInbound "0/tcp": port must be 1-65535`},
		{name: "AllowInbound port too large", conf: ifc + peerB + "[Namespace]\nAllowInbound = 65536/udp\n",
			want: `wg0.conf:8: invalid AllowInbound "65536/udp": port must be 1-65535`},
		{name: "AllowInbound sctp", conf: ifc + peerB + "[Namespace]\nAllowInbound = 80/sctp\n",
			want: `wg0.conf:8: invalid AllowInbound "80/sctp": protocol must be tcp or udp`},
		{name: "AllowInbound twice", conf: ifc + peerB + "[Namespace]\nAllowInbound = 80/tcp\nAllowInbound = 80/TCP\n",
			want: "wg0.conf:9: AllowInbound 80/tcp is listed twice (first on line 8)"},
		{name: "Firewall maybe", conf: ifc + peerB + "[Namespace]\nFirewall = maybe\n",
			want: `wg0.conf:8: invalid Firewall "maybe": must be on or off`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := tt.file
			if name == "" {
				name = "wg0.conf"
			}
			input := expand(t, tt.conf)
			var opts []Option
			if tt.strict {
				opts = append(opts, Strict())
			}
			cfg, err := newLoader(tt.fs, tt.uid, opts...).parse(name, []byte(input))
			if err == nil {
				t.Fatalf("parse succeeded, want error %q; got\n%s", tt.want, dump(cfg))
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got %s\nwant %s", got, tt.want)
			}
			var files []string
			for _, f := range tt.fs {
				files = append(files, string(f.Data))
			}
			assertNoKeys(t, err.Error(), input, files...)
		})
	}
}

func TestParseKeyFileErrorIsNotExist(t *testing.T) {
	_, err := newLoader(fakeFS{}, 0).parse("wg0.conf", []byte(expand(t, keyAt)))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v: want errors.Is(err, fs.ErrNotExist)", err)
	}
}

func TestParseTooLarge(t *testing.T) {
	data := []byte(expand(t, ifc+peerB) + strings.Repeat("#", MaxSize))
	_, err := newLoader(fakeFS{}, 0).parse("wg0.conf", data)
	want := fmt.Sprintf("wg0.conf: too large (%d bytes; the limit is 1048576)", len(data))
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}
