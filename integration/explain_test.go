package integration

import (
	"os"
	"strings"
	"testing"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// up waits a moment for the first handshake and says when a peer does not answer, with the
// likely causes: a wrong server key used to give "is up" and nothing else.
func TestIntegrationUpSaysWhenThePeerDoesNotAnswer(t *testing.T) {
	p := newPeer(t, "hush")
	_, e, code := wgnsRun(t, "up", "--wait", "10s", p.ConfigPath)
	if code != 0 || strings.Contains(e, "no handshake") {
		t.Fatalf("up against a peer that answers: exit %d, %s", code, e)
	}
	mustWgns(t, "down", "hush")

	wrong, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(b), p.Key.PublicKey().String(), wrong.PublicKey().String(), 1)
	if err := os.WriteFile(p.ConfigPath, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	o, e, code := wgnsRun(t, "up", "--wait", "2s", p.ConfigPath)
	t.Cleanup(func() { wgnsRun(t, "down", "hush") })
	want := "wgns: warning: no handshake with peer " + wrong.PublicKey().String() + " at " + peerUnderlay4 + ":51820 in 2s: nothing gets through until it answers"
	if code != 0 || !strings.Contains(e, want) {
		t.Errorf("up with a wrong server key: exit %d\nstdout: %s\nstderr: %s\nwant the warning %q", code, o, e, want)
	}
}

// wgns explains itself: bare wgns and `wgns help` print help and exit 0, `wgns help CMD` the
// command's, and --version what `wgns version` prints; lists that are empty say so.
func TestIntegrationDiscoverable(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "Usage: wgns <command> [flags]"},
		{[]string{"help"}, "Usage: wgns <command> [flags]"},
		{[]string{"help", "up"}, "Usage: wgns up <CONFIG|NAME> [flags]"},
		{[]string{"help", "unit", "install"}, "Usage: wgns unit install <name> <unit> [flags]"},
		{[]string{"--version"}, "WireGuard: "},
		{[]string{"version"}, "WireGuard: "},
		{[]string{"list"}, "no tunnels"},
		{[]string{"status"}, "no tunnels"},
		{[]string{"repair", "--dry-run"}, "no tunnels"},
	} {
		o, e, code := wgnsRun(t, tt.args...)
		if code != 0 || !strings.Contains(o, tt.want) {
			t.Errorf("wgns %s: exit %d, want %q in its output\nstdout: %s\nstderr: %s", strings.Join(tt.args, " "), code, tt.want, o, e)
		}
	}
}
