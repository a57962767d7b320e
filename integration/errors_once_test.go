package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repeated returns the first phrase that msg says twice: three or more words in a row that
// appear again later, or two words repeated back to back ("not up: not up"). Quoted names count
// as words, so `repairing "vpn": repairing "vpn"` is caught, and two different objects with the
// same name ("vpn" the tunnel, "vpn" the interface) are not.
func repeated(msg string) string {
	words := regexp.MustCompile(`"[^"]*"|[A-Za-z0-9_./@=+-]+`).FindAllString(strings.ToLower(msg), -1)
	seen := map[string]int{}
	for i := 0; i+3 <= len(words); i++ {
		g := strings.Join(words[i:i+3], " ")
		if j, ok := seen[g]; ok && j+3 <= i {
			return g
		}
		if _, ok := seen[g]; !ok {
			seen[g] = i
		}
	}
	for i := 0; i+4 <= len(words); i++ {
		if words[i] == words[i+2] && words[i+1] == words[i+3] {
			return words[i] + " " + words[i+1]
		}
	}
	return ""
}

func TestRepeated(t *testing.T) {
	for msg, want := range map[string]string{
		`repairing "vpn2": repairing "vpn2": reading config`:                                `repairing "vpn2"`,
		`tunnel "x" is not up: not up`:                                                      "not up",
		`creating interface "vpn": moving it into namespace "vpn": operation not permitted`: "",
		`writing the DNS view of "vpn": writing the DNS view of "vpn": permission denied`:   "writing the dns",
	} {
		if got := repeated(msg); got != want {
			t.Errorf("repeated(%q) = %q, want %q", msg, got, want)
		}
	}
}

// Every command's common failures say what, where and why once: no phrase twice (callers used
// to wrap what their callee had already said: `repairing "vpn2": repairing "vpn2": ...`).
func TestIntegrationErrorsSayItOnce(t *testing.T) {
	p := newPeer(t, "once")
	dir := t.TempDir()
	conf := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// A second tunnel on the same ListenPort, a config that breaks after up, a bad one.
	port := conf("port1.conf", "")
	p.writeConfig(t, port, "")
	b, _ := os.ReadFile(port)
	withPort := strings.Replace(string(b), "[Interface]\n", "[Interface]\nListenPort = 51999\n", 1)
	conf("port1.conf", withPort)
	port2 := conf("port2.conf", withPort)
	broken := conf("broken.conf", "")
	p.writeConfig(t, broken, "")
	bad := conf("bad.conf", "[Interface]\nPrivateKey = nope\n")

	mustWgns(t, "up", p.ConfigPath)
	mustWgns(t, "up", port)
	mustWgns(t, "up", broken)
	t.Cleanup(func() {
		for _, n := range []string{"once", "port1", "port2", "broken"} {
			wgnsRun(t, "down", "--force", n)
		}
	})
	conf("broken.conf", "[Interface]\n")
	busy := exec.Command("ip", "netns", "exec", "once", "sleep", "600")
	startUntilEnd(t, busy)
	mustRun(t, "ip", "link", "add", "hostclash", "type", "veth", "peer", "name", "hostclash-p")
	t.Cleanup(func() { run("ip", "link", "del", "hostclash") })
	clash := conf("hostclash.conf", "")
	p.writeConfig(t, clash, "")

	cases := [][]string{
		{"up", "/nonexistent/x.conf"},
		{"up", "nosuchtunnel"},
		{"up", bad},
		{"up", p.ConfigPath},
		{"up", port2},
		{"up", clash},
		{"up", "--name", "this-name-is-far-too-long", p.ConfigPath},
		{"down", "nosuchtunnel"},
		{"down", "once"},
		{"down", "bad/name"},
		{"exec", "nosuchtunnel", "--", "true"},
		{"exec", "once", "--", "/nonexistent/program"},
		{"exec", "once", "--", "no-such-program-anywhere"},
		{"status", "nosuchtunnel"},
		{"check", "nosuchtunnel"},
		{"repair", "broken"},
		{"unit", "install", "once", "not a unit"},
	}
	for _, args := range cases {
		o, e, code := wgnsRun(t, args...)
		msg := strings.TrimSpace(o + e)
		if code == 0 && !strings.HasPrefix(args[0], "down") {
			t.Errorf("wgns %s succeeded: %s", strings.Join(args, " "), msg)
		}
		if r := repeated(msg); r != "" {
			t.Errorf("wgns %s says %q twice:\n%s", strings.Join(args, " "), r, msg)
		} else {
			t.Logf("wgns %s: %s", strings.Join(args, " "), msg)
		}
	}
	// Without root.
	for _, args := range [][]string{{"up", p.ConfigPath}, {"down", "once"}, {"status"}, {"list"}, {"repair"}, {"exec", "once", "--", "true"}} {
		o, err := asNobody(wgnsBin, args...).CombinedOutput()
		msg := strings.TrimSpace(string(o))
		if r := repeated(msg); r != "" {
			t.Errorf("wgns %s as nobody says %q twice:\n%s", strings.Join(args, " "), r, msg)
		} else {
			t.Logf("wgns %s as nobody (%v): %s", strings.Join(args, " "), err, msg)
		}
	}
	_ = fmt.Sprint
}
