package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// The user the trust tests play (addFixedUsers adds it) and a group it is in.
const (
	trustUID   = 4711 // wgnsexec
	trustGroup = 4712 // wgnsa, of which wgnsexec is a member
)

// trustDir makes a directory under /tmp that every user may enter (t.TempDir's is root's,
// mode 0700), and removes it when the test ends.
func trustDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "wgns-trust-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// trustMkdir makes dir with mode, owned by uid:gid.
func trustMkdir(t *testing.T, dir string, mode os.FileMode, uid, gid int) string {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// trustWrite writes path with mode, owned by uid:gid.
func trustWrite(t *testing.T, path, data string, mode os.FileMode, uid, gid int) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
	return path
}

// trustLink makes a symbolic link at path to target, owned by uid.
func trustLink(t *testing.T, target, path string, uid int) string {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
	return path
}

// trustConfig returns a valid client config (the peer needs not exist) and its private key.
func trustConfig(t *testing.T) (conf string, key wgtypes.Key) {
	t.Helper()
	key, _ = wgtypes.GeneratePrivateKey()
	peerKey, _ := wgtypes.GeneratePrivateKey()
	return "[Interface]\nPrivateKey = " + key.String() + "\nAddress = 192.0.2.2/32\n\n[Peer]\nPublicKey = " +
		peerKey.PublicKey().String() + "\nEndpoint = 198.51.100.2:51820\nAllowedIPs = 0.0.0.0/0\n", key
}

// trustRefused runs `wgns up` (userspace) and `wgns up --dry-run` as root on path and wants both
// refused with exactly "wgns: " + want, and the world unchanged.
func trustRefused(t *testing.T, path, want string) {
	t.Helper()
	const name = "trust"
	before := snapshot(t, name)
	for _, args := range [][]string{{"up", "--userspace", "--name", name, path}, {"up", "--dry-run", "--name", name, path}} {
		o, e, code := wgnsRun(t, args...)
		if code == 0 {
			wgnsRun(t, "down", "--force", name)
			t.Errorf("wgns %s: accepted\nstdout: %s\nstderr: %s", strings.Join(args, " "), o, e)
			continue
		}
		if e != "wgns: "+want+"\n" {
			t.Errorf("wgns %s:\n got %s\nwant wgns: %s", strings.Join(args, " "), e, want)
		}
	}
	if after := snapshot(t, name); after != before {
		t.Errorf("a refused config changed the world:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestIntegrationUpRefusesConfigOthersCanChange: root loads only a config no one else can change.
// A config a user owns (the audit's alice, who appended "Firewall = off" to hers), one writable by
// its group or others, one in a directory a user owns or a group may write, or reached through a
// user's symbolic link, is refused by `up` and `up --dry-run` alike, with what is wrong, and
// nothing is made. The same config owned by root under the sticky /tmp is taken.
func TestIntegrationUpRefusesConfigOthersCanChange(t *testing.T) {
	addFixedUsers(t)
	base := trustDir(t)
	conf, _ := trustConfig(t)
	good := trustWrite(t, filepath.Join(base, "tr-good.conf"), conf, 0o600, 0, 0)
	userDir := trustMkdir(t, filepath.Join(base, "alice"), 0o755, trustUID, trustUID)
	groupDir := trustMkdir(t, filepath.Join(base, "shared"), 0o775, 0, trustGroup)
	cases := []struct {
		name, path, want string
	}{
		{"a user's, with Firewall = off appended",
			trustWrite(t, filepath.Join(base, "tr-user.conf"), conf+"[Namespace]\nFirewall = off\n", 0o600, trustUID, trustUID),
			"%s: owned by uid 4711, not root; chown root it"},
		{"writable by its group",
			trustWrite(t, filepath.Join(base, "tr-group.conf"), conf, 0o620, 0, trustGroup),
			"%s: writable by group or others (mode 0620); chmod 600 it"},
		{"writable by others",
			trustWrite(t, filepath.Join(base, "tr-other.conf"), conf, 0o602, 0, 0),
			"%s: writable by group or others (mode 0602); chmod 600 it"},
		{"root's, in a user's directory",
			trustWrite(t, filepath.Join(userDir, "tr-home.conf"), conf, 0o600, 0, 0),
			"%s: in directory " + userDir + ", owned by uid 4711, not root: that user could replace the file; move it to a directory only root can change, such as /etc/wgns"},
		{"root's, in a directory its group may write",
			trustWrite(t, filepath.Join(groupDir, "tr-shared.conf"), conf, 0o600, 0, 0),
			"%s: in directory " + groupDir + ", writable by group or others (mode 0775): they could replace the file; chmod go-w " + groupDir + ", or move the file to a directory only root can change"},
		{"through a user's symbolic link in /tmp",
			trustLink(t, good, filepath.Join("/tmp", filepath.Base(base)+"-tr-link.conf"), trustUID),
			"%s: through symbolic link %[1]s, owned by uid 4711, not root: that user could point it elsewhere"},
		{"through root's link into a user's directory",
			trustLink(t, filepath.Join(userDir, "tr-home.conf"), filepath.Join(base, "tr-rlink.conf"), 0),
			"%s: in directory " + userDir + ", owned by uid 4711, not root: that user could replace the file; move it to a directory only root can change, such as /etc/wgns"},
	}
	t.Cleanup(func() { os.Remove(cases[5].path) })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { trustRefused(t, c.path, fmt.Sprintf(c.want, c.path)) })
	}
	if o, e, code := wgnsRun(t, "up", "--dry-run", good); code != 0 || e != "" {
		t.Errorf("a root config under /tmp: exit %d\nstdout: %s\nstderr: %s", code, o, e)
	}
}

// TestIntegrationUpRefusesKeyFileInDirectoryOthersControl: a PrivateKeyFile or PresharedKeyFile
// is checked all the way down, as ssh does: root's key in a user's directory, in a directory its
// group may write, or reached through a user's link, is refused with FILE:LINE and what is wrong;
// root's key in a root directory under the sticky /tmp is taken.
func TestIntegrationUpRefusesKeyFileInDirectoryOthersControl(t *testing.T) {
	addFixedUsers(t)
	base := trustDir(t)
	conf, key := trustConfig(t)
	psk, _ := wgtypes.GenerateKey()
	rootDir := trustMkdir(t, filepath.Join(base, "keys"), 0o700, 0, 0)
	userDir := trustMkdir(t, filepath.Join(base, "alice"), 0o755, trustUID, trustUID)
	groupDir := trustMkdir(t, filepath.Join(base, "shared"), 0o775, 0, trustGroup)
	for _, d := range []string{rootDir, userDir, groupDir} {
		trustWrite(t, filepath.Join(d, "wg.key"), key.String()+"\n", 0o600, 0, 0)
		trustWrite(t, filepath.Join(d, "wg.psk"), psk.String()+"\n", 0o600, 0, 0)
	}
	userLink := trustLink(t, rootDir, filepath.Join(userDir, "keys"), trustUID)
	withKeys := func(name, keyFile, pskFile string) string {
		c := strings.Replace(conf, "PrivateKey = "+key.String(), "PrivateKeyFile = "+keyFile, 1) + "PresharedKeyFile = " + pskFile + "\n"
		return trustWrite(t, filepath.Join(base, name), c, 0o600, 0, 0)
	}
	inUserDir := "in directory " + userDir + ", owned by uid 4711, not root: that user could replace the file; move it to a directory only root can change, such as /etc/wgns"
	cases := []struct {
		name, path, want string
	}{
		{"PrivateKeyFile in a user's directory",
			withKeys("tk-home.conf", filepath.Join(userDir, "wg.key"), filepath.Join(rootDir, "wg.psk")),
			`%s:2: PrivateKeyFile "` + filepath.Join(userDir, "wg.key") + `": ` + inUserDir},
		{"PrivateKeyFile in a directory its group may write",
			withKeys("tk-shared.conf", filepath.Join(groupDir, "wg.key"), filepath.Join(rootDir, "wg.psk")),
			`%s:2: PrivateKeyFile "` + filepath.Join(groupDir, "wg.key") + `": in directory ` + groupDir +
				", writable by group or others (mode 0775): they could replace the file; chmod go-w " + groupDir + ", or move the file to a directory only root can change"},
		{"PrivateKeyFile through a user's link",
			withKeys("tk-link.conf", filepath.Join(userLink, "wg.key"), filepath.Join(rootDir, "wg.psk")),
			`%s:2: PrivateKeyFile "` + filepath.Join(userLink, "wg.key") + `": ` + inUserDir},
		{"PresharedKeyFile in a user's directory",
			withKeys("tk-psk.conf", filepath.Join(rootDir, "wg.key"), filepath.Join(userDir, "wg.psk")),
			`%s:9: PresharedKeyFile "` + filepath.Join(userDir, "wg.psk") + `": ` + inUserDir},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { trustRefused(t, c.path, fmt.Sprintf(c.want, c.path)) })
	}
	good := withKeys("tk-good.conf", filepath.Join(rootDir, "wg.key"), filepath.Join(rootDir, "wg.psk"))
	if o, e, code := wgnsRun(t, "up", "--dry-run", good); code != 0 || e != "" {
		t.Errorf("root's keys in a root directory under /tmp: exit %d\nstdout: %s\nstderr: %s", code, o, e)
	}
}

// trustRunAs runs the wgns binary as uid (its own group, no others) with args, from a copy any
// user may run, and returns stdout, stderr and the exit code.
func trustRunAs(t *testing.T, uid int, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	bin := copyWgns(t)
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}}
	return runCmd(t, cmd)
}

// TestIntegrationDryRunByUserSaysWhatRootWouldRefuse: `up --dry-run` needs no root, and a user
// may check a config of her own: it is validated and planned, and a warning says, in the words
// root's `up` then uses to refuse it, why a real `up` would.
func TestIntegrationDryRunByUserSaysWhatRootWouldRefuse(t *testing.T) {
	addFixedUsers(t)
	base := trustDir(t)
	conf, key := trustConfig(t)
	userDir := trustMkdir(t, filepath.Join(base, "alice"), 0o700, trustUID, trustUID)
	path := trustWrite(t, filepath.Join(userDir, "tu-mine.conf"), conf, 0o600, trustUID, trustUID)
	why := "in directory " + userDir + ", owned by uid 4711, not root: that user could replace the file; move it to a directory only root can change, such as /etc/wgns"

	o, e, code := trustRunAs(t, trustUID, "up", "--dry-run", path)
	if code != 0 || !strings.HasPrefix(o, "config "+path+" is valid; ") || !strings.Contains(o, "up would:\n") {
		t.Fatalf("dry run by its owner: exit %d\nstdout: %s\nstderr: %s", code, o, e)
	}
	if want := "wgns: warning: " + path + ": as root, wgns would refuse it: " + why + "\n"; e != want {
		t.Errorf("dry run by its owner warns:\n got %s\nwant %s", e, want)
	}
	if strings.Contains(o+e, key.String()) {
		t.Errorf("the dry run shows the private key")
	}
	trustRefused(t, path, path+": "+why)
}

// TestIntegrationUpRefusesSecretAsPublicKey: a private key pasted as a peer's PublicKey (from
// PrivateKey or PrivateKeyFile), or a preshared key, is refused by `up` and `up --dry-run` with
// FILE:LINE, and neither shows the key (the dry run's plan and `status` print public keys).
func TestIntegrationUpRefusesSecretAsPublicKey(t *testing.T) {
	dir := t.TempDir()
	conf, key := trustConfig(t)
	psk, _ := wgtypes.GenerateKey()
	peer := firstPublicKey(conf)
	keyFile := trustWrite(t, filepath.Join(dir, "wg.key"), key.String()+"\n", 0o600, 0, 0)
	cases := []struct {
		name, conf, want string
	}{
		{"the PrivateKey",
			strings.Replace(conf, peer, key.String(), 1),
			"%s:6: PublicKey is this interface's private key (from PrivateKey on line 2): a peer's PublicKey is the other end's public key; replace a private key that anyone else has seen"},
		{"the key in PrivateKeyFile",
			strings.Replace(strings.Replace(conf, peer, key.String(), 1), "PrivateKey = "+key.String(), "PrivateKeyFile = "+keyFile, 1),
			"%s:6: PublicKey is this interface's private key (from PrivateKeyFile on line 2): a peer's PublicKey is the other end's public key; replace a private key that anyone else has seen"},
		{"a PresharedKey",
			strings.Replace(conf, peer, psk.String(), 1) + "PresharedKey = " + psk.String() + "\n",
			"%s:6: PublicKey is a preshared key (from PresharedKey on line 9): a peer's PublicKey is the other end's public key; replace a preshared key that anyone else has seen"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := trustWrite(t, filepath.Join(dir, fmt.Sprintf("ts%d.conf", i)), c.conf, 0o600, 0, 0)
			trustRefused(t, path, fmt.Sprintf(c.want, path))
			for _, args := range [][]string{{"up", "--dry-run", "--name", "trust", path}, {"up", "--userspace", "--name", "trust", path}} {
				o, e, code := wgnsRun(t, args...)
				if code == 0 {
					wgnsRun(t, "down", "--force", "trust")
				}
				for _, secret := range []string{key.String(), psk.String()} {
					if strings.Contains(o+e, secret) || strings.Contains(o+e, secret[:20]) {
						t.Errorf("wgns %s shows a secret key:\n%s%s", strings.Join(args, " "), o, e)
					}
				}
			}
		})
	}
}

// firstPublicKey returns the value of the first PublicKey line of conf.
func firstPublicKey(conf string) string {
	_, rest, _ := strings.Cut(conf, "PublicKey = ")
	v, _, _ := strings.Cut(rest, "\n")
	return v
}
