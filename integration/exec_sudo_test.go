package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The tests of `wgns exec` under real sudo: real users made with useradd in the world's /etc,
// a sudoers rule that delegates exec as the README says, and Debian's sudo run as those users.

// allowExec writes a sudoers rule that lets u run `wgns exec` with any arguments as root, the
// delegation the README describes, and removes it when the test ends.
func allowExec(t *testing.T, u worldUser) {
	t.Helper()
	path := "/etc/sudoers.d/wgns-test-" + u.Name
	rule := fmt.Sprintf("%s ALL=(root) NOPASSWD: %s exec *\n", u.Name, wgnsBin)
	if err := os.WriteFile(path, []byte(rule), 0o440); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	if out, err := exec.Command("visudo", "-c", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("visudo -c %s: %v\n%s", path, err, out)
	}
}

// TestIntegrationExecUnderSudoRunsOnlyAsCaller: a user who may run `wgns exec *` through sudo
// runs commands as itself, and only as itself: every spelling of --user that names root or
// another user (before or after NAME, by name or uid, zero-padded) is refused before the command
// runs, and naming itself works. Root itself may still name anyone (the control).
func TestIntegrationExecUnderSudoRunsOnlyAsCaller(t *testing.T) {
	const name = "xsudo"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	alice := addUser(t, "wgnsalice")
	bob := addUser(t, "wgnsbob")
	allowExec(t, alice)
	out := filepath.Join(worldDir(t), "ran")
	// The command records who ran it, in a file anyone may create.
	record := []string{"sh", "-c", `id -u > "$0"`, out}
	sudo := func(args ...string) (string, int) {
		os.Remove(out)
		argv := append(append([]string{"sudo", "-n", wgnsBin, "exec"}, args...), record...)
		_, e, code := asUser(t, alice, argv...)
		return e, code
	}
	ranAs := func() string {
		b, err := os.ReadFile(out)
		if err != nil {
			return "(did not run)"
		}
		return strings.TrimSpace(string(b))
	}

	refused := [][]string{
		{"--user", "root", name, "--"},
		{"--user", "0", name, "--"},
		{"--user=0", name, "--"},
		{"--user", "00", name, "--"},
		{"-u", "root", name, "--"},
		{"-uroot", name, "--"},
		{"-u0", name, "--"},
		{"--user=root", name, "--"},
		{name, "--user", "root", "--"},
		{name, "-u", "0", "--"},
		{"--user", "wgnsbob", name, "--"},
		{"--user", strconv.Itoa(bob.UID), name, "--"},
		{"--no-new-privs", "--user", "root", "--", name, "--"},
	}
	for _, args := range refused {
		t.Run("refused "+strings.Join(args, " "), func(t *testing.T) {
			e, code := sudo(args...)
			if code != 125 || !strings.Contains(e, `not permitted: "wgnsalice", who ran wgns through sudo, may run commands only as "wgnsalice"`) {
				t.Errorf("sudo wgns exec %q: exit %d, stderr %q; want 125 and a refusal", args, code, e)
			}
			if got := ranAs(); got != "(did not run)" {
				t.Errorf("sudo wgns exec %q ran the command as uid %s", args, got)
			}
		})
	}
	for _, args := range [][]string{
		{name, "--"},
		{"--user", "wgnsalice", name, "--"},
		{"-u", strconv.Itoa(alice.UID), name, "--"},
		{name, "--user=wgnsalice", "--"},
	} {
		t.Run("allowed "+strings.Join(args, " "), func(t *testing.T) {
			e, code := sudo(args...)
			if code != 0 || ranAs() != strconv.Itoa(alice.UID) {
				t.Errorf("sudo wgns exec %q: exit %d, ran as %s, stderr %q; want 0 and uid %d", args, code, ranAs(), e, alice.UID)
			}
		})
	}
	// sudo itself refuses to let the user set SUDO_UID (the rule has no SETENV).
	t.Run("SUDO_UID set on sudo's command line", func(t *testing.T) {
		os.Remove(out)
		_, e, code := asUser(t, alice, append([]string{"sudo", "-n", "SUDO_UID=0", wgnsBin, "exec", "--user", "root", name, "--"}, record...)...)
		if code == 0 || ranAs() != "(did not run)" {
			t.Errorf("sudo SUDO_UID=0 wgns exec --user root: exit %d, ran as %s, stderr %q", code, ranAs(), e)
		}
	})
	// Root may name anyone.
	t.Run("root names another user", func(t *testing.T) {
		os.Remove(out)
		o, e, code := wgnsRunEnv(t, envWithoutSudo(), append([]string{"exec", "--user", "wgnsbob", name, "--"}, record...)...)
		if code != 0 || ranAs() != strconv.Itoa(bob.UID) {
			t.Errorf("wgns exec --user wgnsbob as root: exit %d, ran as %s\n%s%s", code, ranAs(), o, e)
		}
	})
}

// TestIntegrationExecLooksUpCommandAsTheUser: the command is looked up as the user it runs as,
// so wgns exec does not tell a sudo user what a directory it cannot read holds: a file that
// exists there and one that does not give the same status and the same message.
func TestIntegrationExecLooksUpCommandAsTheUser(t *testing.T) {
	const name = "xlook"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	alice := addUser(t, "wgnsalice")
	allowExec(t, alice)
	secret, err := os.MkdirTemp("/run", "wgns-secret-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(secret)
	os.Chmod(secret, 0o700)
	if err := os.WriteFile(filepath.Join(secret, "tool"), []byte("#!/bin/sh\necho tool\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	try := func(file string) (string, int) {
		_, e, code := asUser(t, alice, "sudo", "-n", wgnsBin, "exec", name, "--", filepath.Join(secret, file))
		return strings.ReplaceAll(e, file, "FILE"), code
	}
	eExists, cExists := try("tool")
	eMissing, cMissing := try("nosuch")
	if cExists != cMissing || eExists != eMissing {
		t.Errorf("a file that exists in a directory the user cannot read: exit %d, %q\none that does not: exit %d, %q\nwant the same answer", cExists, eExists, cMissing, eMissing)
	}
	if cExists != 126 || !strings.Contains(eExists, "permission denied") {
		t.Errorf("exit %d, %q; want 126, permission denied", cExists, eExists)
	}
}

// TestIntegrationExecUnderSudoFindsUserPath: under sudo (whose secure_path replaces the user's
// PATH) a command in the user's ~/.local/bin or ~/bin is found and runs, as the user; a command
// that is nowhere is refused with the PATH that was searched.
func TestIntegrationExecUnderSudoFindsUserPath(t *testing.T) {
	const name = "xpath"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	alice := addUser(t, "wgnsalice")
	allowExec(t, alice)
	for _, d := range []string{".local/bin", "bin"} {
		if err := os.MkdirAll(filepath.Join(alice.Home, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel, content string) {
		path := filepath.Join(alice.Home, rel)
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(".local/bin/wgns-local-tool", "#!/bin/sh\necho local-tool ran as $(id -un)\n")
	write("bin/wgns-bin-tool", "#!/bin/sh\necho bin-tool ran as $(id -un)\n")
	mustRun(t, "chown", "-R", fmt.Sprintf("%d:%d", alice.UID, alice.GID), alice.Home)

	for _, tool := range []string{"wgns-local-tool", "wgns-bin-tool"} {
		o, e, code := asUser(t, alice, "sudo", "-n", wgnsBin, "exec", name, "--", tool)
		want := strings.TrimPrefix(strings.TrimSuffix(tool, "-tool"), "wgns-") + "-tool ran as wgnsalice\n"
		if code != 0 || o != want {
			t.Errorf("sudo wgns exec %s -- %s: exit %d, %q, want %q\n%s", name, tool, code, o, want, e)
		}
	}
	_, e, code := asUser(t, alice, "sudo", "-n", wgnsBin, "exec", name, "--", "wgns-no-such-tool")
	path := alice.Home + "/.local/bin:" + alice.Home + "/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"
	if want := `wgns exec: finding command "wgns-no-such-tool" in PATH ` + path + ": no such file or directory\n"; code != 127 || e != want {
		t.Errorf("a command that is nowhere: exit %d, %q\nwant 127, %q", code, e, want)
	}
}
