package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/internal/golden"
)

// TestIntegrationMistakes: the mistakes new users make, each run through the command line, and
// the exact words each gets (testdata/mistakes.golden: keys, temporary paths, process IDs and
// times are replaced by placeholders). A mistake is refused with a message that says what, where
// and why, or warned about when wgns can go on; none says a phrase twice.
func TestIntegrationMistakes(t *testing.T) {
	p := newPeer(t, "oops")
	dir := t.TempDir()
	good, err := os.ReadFile(p.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	key := p.ClientKey.String()
	server := p.Key.PublicKey().String()
	wrong, _ := wgtypes.GeneratePrivateKey()
	// conf writes a config that differs from the peer's good one by the replacements given
	// (old, new, old, new, ...) and returns its path.
	conf := func(file string, mode os.FileMode, repl ...string) string {
		text := strings.NewReplacer(repl...).Replace(string(good))
		path := filepath.Join(dir, file)
		if err := os.WriteFile(path, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, mode)
		return path
	}
	alice := addUser(t, "wgnsoops")
	mine := conf("mine.conf", 0o600)
	// The world's resolver: an address no route leads to, the same on every machine.
	keepFile(t, "/etc/resolv.conf")
	replaceFile(t, "/etc/resolv.conf", "nameserver 203.0.113.253\n")

	// Tunnels some mistakes need: one up with a ListenPort, one up with processes inside.
	busyPort := conf("porta.conf", 0o600, "[Interface]\n", "[Interface]\nListenPort = 51977\n")
	mustWgns(t, "up", "--wait", "0", busyPort)
	t.Cleanup(func() { wgnsRun(t, "down", "--force", "porta") })
	mustWgns(t, "up", "--wait", "0", "--name", "busy", conf("busy.conf", 0o600, "[Interface]\n", "[Interface]\nListenPort = 51978\n"))
	t.Cleanup(func() { wgnsRun(t, "down", "--force", "busy") })
	sleeper := exec.Command("ip", "netns", "exec", "busy", "sleep", "600")
	startUntilEnd(t, sleeper)
	t.Cleanup(func() { wgnsRun(t, "down", "--force", "wrongkey") }) // the mistake below brings it up

	type mistake struct {
		what string
		args []string
		user bool // run as a user, without sudo
	}
	mistakes := []mistake{
		{"a typo in the private key", []string{"up", conf("typo.conf", 0o600, key, key[:10]+"!"+key[11:])}, false},
		{"a misspelt key name", []string{"up", conf("spell.conf", 0o600, "AllowedIPs", "AllowedIP")}, false},
		{"the wrong server key", []string{"up", "--wait", "2s", conf("wrongkey.conf", 0o600, server, wrong.PublicKey().String())}, false},
		{"the private key pasted as the server's key", []string{"up", conf("pasted.conf", 0o600, server, key)}, false},
		{"a DNS server that does not answer", []string{"check", "porta"}, false},
		{"a ListenPort in use", []string{"up", "--wait", "0", "--name", "portb", busyPort}, false},
		{"a server's config given by mistake", []string{"up", "--dry-run", conf("server.conf", 0o600,
			"[Interface]\n", "[Interface]\nListenPort = 51820\n", "Endpoint = "+peerUnderlay4+":51820\n", "")}, false},
		{"a directory given as the config", []string{"up", dir + "/"}, false},
		{"a config that does not exist", []string{"up", filepath.Join(dir, "missing.conf")}, false},
		{"a name that is not in /etc/wgns", []string{"up", "nosuchvpn"}, false},
		{"a file name too long for a tunnel name", []string{"up", conf("se-got-wg-001-extra.conf", 0o600)}, false},
		{"a name with a space", []string{"up", "--name", "my vpn", mine}, false},
		{"an Address without its prefix length after /", []string{"up", conf("addr.conf", 0o600, "/24,", "/,")}, false},
		{"an Endpoint without a port", []string{"up", conf("noport.conf", 0o600, ":51820", "")}, false},
		{"an Endpoint whose name does not resolve", []string{"up", conf("nohost.conf", 0o600, peerUnderlay4+":51820", "vpn.example.invalid:51820")}, false},
		{"a second [Interface]", []string{"up", conf("twoif.conf", 0o600, "[Peer]", "[Interface]\nPrivateKey = "+key+"\n\n[Peer]")}, false},
		{"no [Peer]", []string{"up", conf("nopeer.conf", 0o600, "[Peer]", "# [Peer]", "PublicKey", "# PublicKey", "AllowedIPs", "# AllowedIPs",
			"Endpoint", "# Endpoint", "PersistentKeepalive", "# PersistentKeepalive")}, false},
		{"a config others may write", []string{"up", conf("open.conf", 0o666)}, false},
		{"a tunnel that is already up", []string{"up", "--wait", "0", busyPort}, false},
		{"down with programs still inside", []string{"down", "busy"}, false},
		{"down of a tunnel that is not up", []string{"down", "nosuchvpn"}, false},
		{"exec into a tunnel that is not up", []string{"exec", "nosuchvpn", "--", "true"}, false},
		{"exec of a program that does not exist", []string{"exec", "porta", "--", "firefx"}, false},
		{"status of a tunnel that is not up", []string{"status", "nosuchvpn"}, false},
		{"unit install of something that is not a service", []string{"unit", "install", "porta", "transmission.socket"}, false},
		{"up without sudo", []string{"up", mine}, true},
		{"down without sudo", []string{"down", "porta"}, true},
		{"exec without sudo", []string{"exec", "porta", "--", "true"}, true},
		{"status without sudo", []string{"status"}, true},
		{"list without sudo", []string{"list"}, true},
		{"check without sudo", []string{"check", "porta"}, true},
		{"repair without sudo", []string{"repair"}, true},
		{"unit install without sudo", []string{"unit", "install", "porta", "transmission"}, true},
	}
	var out strings.Builder
	norm := normalizer(dir, key, server, wrong.PublicKey().String())
	for _, m := range mistakes {
		var o, e string
		var code int
		if m.user {
			cmd := exec.Command("setpriv", append([]string{"--reuid=" + fmt.Sprint(alice.UID), "--regid=" + fmt.Sprint(alice.GID),
				"--clear-groups", "--", wgnsBin}, m.args...)...)
			b, err := cmd.CombinedOutput()
			o = string(b)
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
		} else {
			o, e, code = wgnsRun(t, m.args...)
		}
		msg := norm(strings.TrimSpace(o + e))
		fmt.Fprintf(&out, "#### %s\n$ wgns %s\n%s\n(exit %d)\n", m.what, norm(strings.Join(m.args, " ")), msg, code)
		if r := repeated(msg); r != "" {
			t.Errorf("%s: the message says %q twice:\n%s", m.what, r, msg)
		}
		if msg == "" {
			t.Errorf("%s: wgns said nothing", m.what)
		}
	}
	if len(mistakes) < 25 {
		t.Errorf("only %d mistakes", len(mistakes))
	}
	golden.Check(t, "mistakes", out.String())
}

// normalizer returns a function that replaces what differs between runs: the test's directory,
// keys, process IDs, times, port numbers chosen by the kernel, and the WireGuard backend (the
// suite runs with the embedded one here and with the kernel's in the guest).
func normalizer(dir, key, server, wrong string) func(string) string {
	r := strings.NewReplacer(dir, "DIR", key, "PRIVATEKEY", server, "SERVERKEY", wrong, "WRONGKEY")
	subs := []struct {
		re   *regexp.Regexp
		with string
	}{
		{regexp.MustCompile(`\b(PID|process|processes) \d+`), "$1 N"},
		{regexp.MustCompile(`\b\d+ \((sleep|wgns)\)`), "N ($1)"},
		{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`), "TIME"},
		{regexp.MustCompile(`in \d+(\.\d+)? ?m?s\b`), "in TIME"},
		{regexp.MustCompile(`\(\d+:\d+\)`), "(NETNS)"},
		{regexp.MustCompile(`:\d{4,5}->`), ":PORT->"},
		{regexp.MustCompile(`\((userspace|kernel) WireGuard\)`), "(BACKEND WireGuard)"},
		{regexp.MustCompile(`the (embedded WireGuard|supervisor) runs as`), "the HOLDER runs as"},
		{regexp.MustCompile(`\((userspace|kernel), MTU (\d+)\) (inside|in the host namespace and move it into) `), "(BACKEND, MTU $2) in "},
		{regexp.MustCompile(`latest handshake \d+s ago`), "latest handshake Ns ago"},
	}
	return func(s string) string {
		s = r.Replace(s)
		for _, sub := range subs {
			s = sub.re.ReplaceAllString(s, sub.with)
		}
		return s
	}
}
