package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// TestIntegrationAdversarial: hostile names, files, keys and endpoints given to the CLI are
// each refused with a clear error and a non-zero exit, and the world is exactly as before.
// (TestIntegrationInvalidConfigsLeaveNoTrace covers the config contents themselves; the
// identity cases are in TestIntegrationExecIdentity.)
func TestIntegrationAdversarial(t *testing.T) {
	dir := t.TempDir()
	own, _ := wgtypes.GeneratePrivateKey()
	peerKey, _ := wgtypes.GeneratePrivateKey()
	good := "[Interface]\nPrivateKey = " + own.String() + "\nAddress = 192.0.2.2/24\n\n[Peer]\nPublicKey = " +
		peerKey.PublicKey().String() + "\nEndpoint = 198.51.100.2:51820\nAllowedIPs = 0.0.0.0/0\n"
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	fifo := filepath.Join(dir, "fifo.conf")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	confDir := filepath.Join(dir, "dir.conf")
	os.Mkdir(confDir, 0o700)
	secret := write("secret", "root:$y$j9T$notforyoureyes:19000:0:99999:7:::\n", 0o600)
	shadowLink := filepath.Join(dir, "shadow.conf")
	os.Symlink(secret, shadowLink)
	emptyKey := write("empty.key", "", 0o600)
	openKey := write("open.key", own.String()+"\n", 0o644)
	notRootKey := write("user.key", own.String()+"\n", 0o600)
	os.Chown(notRootKey, 65534, 65534)
	withKeyFile := func(name, keyFile string) string {
		return write(name, strings.Replace(good, "PrivateKey = "+own.String(), "PrivateKeyFile = "+keyFile, 1), 0o600)
	}

	cases := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"name ../x", []string{"up", "--name", "../x", write("a.conf", good, 0o600)}, "a name is 1-15 characters"},
		{"name a/b", []string{"down", "a/b"}, "a name is 1-15 characters"},
		{"name .", []string{"exec", ".", "--", "true"}, "a name is 1-15 characters"},
		{"name empty", []string{"down", ""}, "a name is 1-15 characters"},
		{"name 16 characters", []string{"up", "--name", "abcdefghijklmnop", write("b.conf", good, 0o600)}, "a name is 1-15 characters"},
		{"name unicode", []string{"up", "--name", "tünnel", write("c.conf", good, 0o600)}, "a name is 1-15 characters"},
		{"file name makes a bad name", []string{"up", write("much-too-long-name.conf", good, 0o600)}, "choose one with --name"},
		{"config missing", []string{"up", filepath.Join(dir, "missing.conf")}, "no such file or directory"},
		{"config a directory", []string{"up", confDir}, "not a regular file"},
		{"config a FIFO", []string{"up", fifo}, "not a regular file"},
		{"config a symlink to a secret", []string{"up", shadowLink}, "outside any section"},
		{"config empty", []string{"up", write("empty.conf", "", 0o600)}, "[Interface]"},
		{"config binary", []string{"up", write("bin.conf", "\x7fELF\x02\x01\x01\x00\x00\x00", 0o600)}, "bin.conf"},
		{"duplicate sections", []string{"up", write("dup.conf", good+"[Interface]\nAddress = 192.0.2.3/24\n", 0o600)}, "Interface"},
		{"unknown key", []string{"up", write("unk.conf", good+"Colour = blue\n", 0o600)}, "Colour"},
		{"empty key file", []string{"up", withKeyFile("ek.conf", emptyKey)}, "empty"},
		{"key file 0644", []string{"up", withKeyFile("ok.conf", openKey)}, "readable by group or others"},
		{"key file not root's", []string{"up", withKeyFile("uk.conf", notRootKey)}, "owned by"},
		{"unresolvable endpoint", []string{"up", write("nx.conf", strings.Replace(good, "198.51.100.2:51820", "no-such-host.invalid:51820", 1), 0o600)}, "resolving endpoint"},
		{"exec of a NAME not up", []string{"exec", "notup", "--", "true"}, "not up"},
		{"status of a NAME not up", []string{"status", "notup"}, "not up"},
		{"exec with no command", []string{"exec", "notup"}, ""},
		{"unknown command", []string{"frobnicate"}, "unexpected argument"},
	}
	before := snapshot(t, "adv")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			_, e, code := wgnsRun(t, append(c.args, []string{}...)...)
			if code == 0 {
				t.Fatalf("wgns %q succeeded", c.args)
			}
			if !strings.Contains(e, c.want) {
				t.Errorf("wgns %q: stderr %q does not say %q", c.args, e, c.want)
			}
			if strings.Contains(e, "notforyoureyes") || strings.Contains(e, own.String()[:16]) {
				t.Errorf("wgns %q shows secret content: %q", c.args, e)
			}
			if d := time.Since(start); d > scaled(15*time.Second) {
				t.Errorf("wgns %q took %v", c.args, d)
			}
			if after := snapshot(t, "adv"); after != before {
				t.Errorf("wgns %q changed the world:\nbefore:\n%s\nafter:\n%s", c.args, before, after)
			}
		})
	}
	// down of a NAME not up: exit 0, and says so.
	if o, _, code := wgnsRun(t, "down", "notup"); code != 0 || !strings.Contains(o, "not up") {
		t.Errorf("down of a NAME not up: exit %d, %q", code, o)
	}
	// CRLF line ends are a config as good as any: accepted, and the plan is the same.
	crlf := write("crlf.conf", strings.ReplaceAll(good, "\n", "\r\n"), 0o600)
	lf := write("crlf2.conf", good, 0o600)
	a, b := mustWgns(t, "up", "--dry-run", "--name", "x", crlf), mustWgns(t, "up", "--dry-run", "--name", "x", lf)
	if strings.ReplaceAll(a, crlf, "F") != strings.ReplaceAll(b, lf, "F") {
		t.Errorf("a CRLF config plans differently:\n%s\n---\n%s", a, b)
	}
}

// TestIntegrationOwnership: wgns never enters, repairs or deletes a namespace of its name that it
// did not make, such as one attached under the name after its own was removed.
func TestIntegrationOwnership(t *testing.T) {
	const name = "to"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	// Replace /run/netns/to by the world's own namespace (PID 1's), the iproute2 way.
	mustRun(t, "ip", "netns", "del", name)
	mustRun(t, "ip", "netns", "attach", name, "1")
	t.Cleanup(func() { run("ip", "netns", "del", name) })
	worldLinks := linkNames(mustRun(t, "ip", "-o", "link", "show"))

	if _, e, code := wgnsRun(t, "exec", name, "--", "true"); code != 125 || !strings.Contains(e, "no longer the namespace wgns made") {
		t.Errorf("exec into a foreign namespace: exit %d, %q", code, e)
	}
	if _, e, code := wgnsRun(t, "repair", name); code == 0 || !strings.Contains(e, "not the namespace wgns made") {
		t.Errorf("repair of a foreign namespace: exit %d, %q", code, e)
	}
	if _, e, code := wgnsRun(t, "down", name); code == 0 || !strings.Contains(e, "not the namespace wgns made") {
		t.Errorf("down of a foreign namespace: exit %d, %q", code, e)
	}
	if _, err := os.Stat("/run/netns/" + name); err != nil {
		t.Errorf("the foreign namespace file was removed: %v", err)
	}
	if got := linkNames(mustRun(t, "ip", "-o", "link", "show")); strings.Join(got, ",") != strings.Join(worldLinks, ",") {
		t.Errorf("the world's links changed: %v -> %v", worldLinks, got)
	}
	if out := mustRun(t, "nft", "list", "ruleset"); strings.TrimSpace(out) != "" {
		t.Errorf("a firewall appeared in the world:\n%s", out)
	}
	// A second tunnel does not take over the name either.
	if _, e, code := wgnsRun(t, "up", p.ConfigPath); code == 0 || !strings.Contains(e, "not the namespace wgns made") {
		t.Errorf("up over a foreign namespace: exit %d, %q", code, e)
	}
}

// TestIntegrationAdversarialExecIdentity: a user allowed to run `wgns exec` through sudo tries
// to run a command as someone else: every spelling of --user that names root or another user,
// an alias that shares the user's uid with root's group, odd values, and a tampered sudo
// environment. Each is refused before the command runs (exit 125, nothing run, the world as
// before), or runs as the user itself with its own groups. (Real sudo is in
// TestIntegrationExecUnderSudoRunsOnlyAsCaller; here wgns gets the variables sudo sets.)
func TestIntegrationAdversarialExecIdentity(t *testing.T) {
	const name = "advid"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	alice := addUser(t, "wgnsalice")
	bob := addUser(t, "wgnsbob")
	// Another passwd entry with alice's uid and root's group.
	mustRun(t, "useradd", "--no-log-init", "--non-unique", "--uid", strconv.Itoa(alice.UID), "--gid", "0", "--no-create-home", "--no-user-group", "wgnsalias")
	t.Cleanup(func() { run("userdel", "wgnsalias") })
	sudo := []string{"SUDO_UID=" + strconv.Itoa(alice.UID), "SUDO_GID=" + strconv.Itoa(alice.GID), "SUDO_USER=wgnsalice",
		"SUDO_COMMAND=" + wgnsBin + " exec"}
	out := filepath.Join(worldDir(t), "ran")
	record := []string{"sh", "-c", `echo "$(id -u) $(id -G)" > "$0"`, out}
	ranAs := func() string {
		b, err := os.ReadFile(out)
		if err != nil {
			return "(did not run)"
		}
		return strings.TrimSpace(string(b))
	}

	refused := []struct {
		name  string
		env   []string
		flags []string
		want  string // in stderr
	}{
		{"--user root", sudo, []string{"--user", "root"}, "not permitted"},
		{"--user 0", sudo, []string{"--user", "0"}, "not permitted"},
		{"--user 00", sudo, []string{"--user", "00"}, "not permitted"},
		{"--user 000000000000000000000", sudo, []string{"--user", "000000000000000000000"}, "not permitted"},
		{"--user=0", sudo, []string{"--user=0"}, "not permitted"},
		{"-u root", sudo, []string{"-u", "root"}, "not permitted"},
		{"-uroot", sudo, []string{"-uroot"}, "not permitted"},
		{"--user another user", sudo, []string{"--user", "wgnsbob"}, "not permitted"},
		{"--user another uid", sudo, []string{"--user", strconv.Itoa(bob.UID)}, "not permitted"},
		{"--user twice, root last", sudo, []string{"--user", "wgnsalice", "--user", "root"}, "not permitted"},
		{"--user 2^32 (wraps to root)", sudo, []string{"--user", "4294967296"}, "no such user"},
		{"--user +0", sudo, []string{"--user", "+0"}, "no such user"},
		{"--user ' root'", sudo, []string{"--user", " root"}, "no such user"},
		{"--user root with a newline", sudo, []string{"--user", "root\n"}, "no such user"},
		{"SUDO_UID 0 with the user's name", []string{"SUDO_UID=0", "SUDO_USER=wgnsalice"}, []string{"--user", "root"}, `SUDO_USER "wgnsalice" is not user "root"`},
		{"SUDO_UID of another user", []string{"SUDO_UID=" + strconv.Itoa(alice.UID), "SUDO_USER=wgnsbob"}, nil, `SUDO_USER "wgnsbob" is not user "wgnsalice"`},
		{"SUDO_GID of root's group", []string{"SUDO_UID=" + strconv.Itoa(alice.UID), "SUDO_GID=0"}, nil, `SUDO_GID 0 is not a group of user "wgnsalice"`},
	}
	before := snapshot(t, name)
	for _, c := range refused {
		t.Run("refused/"+c.name, func(t *testing.T) {
			os.Remove(out)
			args := append(append(append([]string{"exec"}, c.flags...), name, "--"), record...)
			o, e, code := wgnsRunEnv(t, envWithoutSudo(c.env...), args...)
			if code != 125 || !strings.Contains(e, c.want) {
				t.Errorf("wgns %q with %q: exit %d, stderr %q; want 125 and %q\n%s", args, c.env, code, e, c.want, o)
			}
			if got := ranAs(); got != "(did not run)" {
				t.Errorf("the command ran, as %s", got)
			}
			if after := snapshot(t, name); after != before {
				t.Errorf("the world changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
	aliceIDs := fmt.Sprintf("%d %d", alice.UID, alice.GID)
	for _, flags := range [][]string{nil, {"--user", "wgnsalias"}, {"--user", strconv.Itoa(alice.UID)}, {"--user="}} {
		t.Run(fmt.Sprintf("as the user itself/%q", flags), func(t *testing.T) {
			os.Remove(out)
			args := append(append(append([]string{"exec"}, flags...), name, "--"), record...)
			if _, e, code := wgnsRunEnv(t, envWithoutSudo(sudo...), args...); code != 0 || ranAs() != aliceIDs {
				t.Errorf("wgns %q: exit %d, ran as %q, want %q (the user's own groups)\n%s", args, code, ranAs(), aliceIDs, e)
			}
		})
	}
}
