package identity

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testPasswd = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
+nisuser::::::
broken:x:abc:1::/:/bin/sh
short:x:1009
alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash
bob:x:1001:1001::/home/bob:
carol:x:1003:100::/home/carol:/bin/zsh
alice:x:1005:1005:second alice, never found:/home/alice2:/bin/sh
alias:x:1000:0:alice's uid with root's group:/root:/bin/sh
`

const testGroup = `root:x:0:
audio:x:29:alice,carol
video:x:44:alice
alice:x:1000:
bob:x:1001:
users:x:100:
wheel:x:10:bob, alice
broken:x:zz:alice
short:x
`

// testDB returns a userDB reading testPasswd and testGroup.
func testDB(t *testing.T) userDB {
	dir := t.TempDir()
	db := userDB{passwd: filepath.Join(dir, "passwd"), group: filepath.Join(dir, "group")}
	if err := os.WriteFile(db.passwd, []byte(testPasswd), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db.group, []byte(testGroup), 0o644); err != nil {
		t.Fatal(err)
	}
	return db
}

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

var (
	alice = &Target{UID: 1000, GID: 1000, Groups: []uint32{1000, 29, 44, 10}, Name: "alice", Home: "/home/alice", Shell: "/bin/bash"}
	bob   = &Target{UID: 1001, GID: 1001, Groups: []uint32{1001, 10}, Name: "bob", Home: "/home/bob", Shell: "/bin/sh"}
	carol = &Target{UID: 1003, GID: 100, Groups: []uint32{100, 29}, Name: "carol", Home: "/home/carol", Shell: "/bin/zsh"}
	root  = &Target{UID: 0, GID: 0, Name: "root", Home: "/root", Shell: "/bin/bash", Root: true}
)

// forCaller returns a copy of t with Caller set.
func forCaller(t *Target, caller uint32) *Target {
	c := *t
	c.Caller = caller
	return &c
}

func TestResolve(t *testing.T) {
	sudoAlice := env("SUDO_UID", "1000", "SUDO_GID", "1000", "SUDO_USER", "alice")
	const aliceOnly = `"alice", who ran wgns through sudo, may run commands only as "alice" (only root may name another user)`
	cases := []struct {
		name    string
		user    string
		getenv  func(string) string
		realUID int
		want    *Target
		err     string
		is      error
	}{
		{name: "sudo user", getenv: sudoAlice, want: forCaller(alice, 1000)},
		{name: "sudo, SUDO_UID only", getenv: env("SUDO_UID", "1003"), want: forCaller(carol, 1003)},
		{name: "sudo after newgrp", getenv: env("SUDO_UID", "1000", "SUDO_GID", "29"), want: forCaller(alice, 1000)},
		{name: "sudo user names itself", user: "alice", getenv: sudoAlice, want: forCaller(alice, 1000)},
		{name: "sudo user names its uid", user: "1000", getenv: sudoAlice, want: forCaller(alice, 1000)},
		{name: "sudo user names its uid, zero-padded", user: "01000", getenv: sudoAlice, want: forCaller(alice, 1000)},
		{name: "sudo user names another entry of its uid: runs as its own", user: "alias", getenv: sudoAlice, want: forCaller(alice, 1000)},
		{name: "user by name", user: "bob", getenv: env(), want: forCaller(bob, 0)},
		{name: "user by uid", user: "1003", getenv: env(), want: forCaller(carol, 0)},
		{name: "user root by uid", user: "0", getenv: env(), want: forCaller(root, 0)},
		{name: "sudo from root names a user", user: "bob", getenv: env("SUDO_UID", "0", "SUDO_USER", "root"), want: forCaller(bob, 0)},
		{name: "plain root", getenv: env(), want: forCaller(root, 0)},
		{name: "sudo from root", getenv: env("SUDO_UID", "0", "SUDO_GID", "0", "SUDO_USER", "root"), want: forCaller(root, 0)},
		{name: "not root: SUDO_UID ignored", getenv: env("SUDO_UID", "1001"), realUID: 1000, want: forCaller(alice, 1000)},
		{name: "not root names itself", user: "alice", getenv: env(), realUID: 1000, want: forCaller(alice, 1000)},
		{name: "first entry of a name", user: "alice", getenv: env(), want: forCaller(alice, 0)},

		// A user who may run wgns through sudo names someone else: refused, root above all.
		{name: "sudo user names root", user: "root", getenv: sudoAlice, err: `user "root": not permitted: ` + aliceOnly, is: ErrNotPermitted},
		{name: "sudo user names uid 0", user: "0", getenv: sudoAlice, err: `user "0": not permitted: ` + aliceOnly, is: ErrNotPermitted},
		{name: "sudo user names uid 00", user: "00", getenv: sudoAlice, err: `user "00": not permitted: ` + aliceOnly, is: ErrNotPermitted},
		{name: "sudo user names another user", user: "bob", getenv: sudoAlice, err: `user "bob": not permitted: ` + aliceOnly, is: ErrNotPermitted},
		{name: "sudo user names another uid", user: "1001", getenv: sudoAlice, err: `user "1001": not permitted: ` + aliceOnly, is: ErrNotPermitted},
		{name: "sudo user names the second entry of its own name", user: "1005", getenv: sudoAlice, err: `user "1005": not permitted: ` + aliceOnly, is: ErrNotPermitted},
		{name: "sudo with SUDO_UID only names root", user: "root", getenv: env("SUDO_UID", "1003"), is: ErrNotPermitted,
			err: `user "root": not permitted: "carol", who ran wgns through sudo, may run commands only as "carol" (only root may name another user)`},
		{name: "not root names root", user: "root", getenv: env(), realUID: 1000, is: ErrNotPermitted,
			err: `user "root": not permitted: "alice", who ran wgns, may run commands only as "alice" (only root may name another user)`},
		{name: "unknown uid names root", user: "root", getenv: env(), realUID: 4242, is: ErrNotPermitted,
			err: `user "root": not permitted: uid 4242, who ran wgns, may run commands only as uid 4242 (only root may name another user)`},
		{name: "sudo user names an unknown user", user: "nobodyx", getenv: sudoAlice, err: `user "nobodyx": no such user`, is: ErrNoUser},
		{name: "bad sudo environment wins over the flag", user: "root", getenv: env("SUDO_UID", "abc"), err: `SUDO_UID "abc" is not a number`, is: ErrBadSudoEnv},

		{name: "no such user name", user: "nobodyx", getenv: env(), err: `user "nobodyx": no such user`, is: ErrNoUser},
		{name: "no such uid", user: "4242", getenv: env(), err: `user "4242": no such user`, is: ErrNoUser},
		{name: "uid out of range", user: "99999999999", getenv: env(), err: `user "99999999999": no such user`, is: ErrNoUser},
		{name: "unknown real uid", getenv: env(), realUID: 4242, err: `uid 4242: no such user`, is: ErrNoUser},
		{name: "SUDO_UID not a number", getenv: env("SUDO_UID", "abc"), err: `SUDO_UID "abc" is not a number`, is: ErrBadSudoEnv},
		{name: "SUDO_UID negative", getenv: env("SUDO_UID", "-1"), err: `SUDO_UID "-1" is not a number`, is: ErrBadSudoEnv},
		{name: "SUDO_UID signed", getenv: env("SUDO_UID", "+1000"), err: `SUDO_UID "+1000" is not a number`, is: ErrBadSudoEnv},
		{name: "SUDO_UID out of range", getenv: env("SUDO_UID", "4294967296"), err: `SUDO_UID "4294967296" is not a valid uid`, is: ErrBadSudoEnv},
		{name: "SUDO_UID absent from passwd", getenv: env("SUDO_UID", "99999"), err: `SUDO_UID 99999: no such user`, is: ErrNoUser},
		{name: "SUDO_UID of a malformed line", getenv: env("SUDO_UID", "1009"), err: `SUDO_UID 1009: no such user`, is: ErrNoUser},
		{name: "SUDO_GID mismatch", getenv: env("SUDO_UID", "1000", "SUDO_GID", "1001"), err: `SUDO_GID 1001 is not a group of user "alice"`, is: ErrBadSudoEnv},
		{name: "SUDO_GID not a number", getenv: env("SUDO_UID", "1000", "SUDO_GID", "x"), err: `SUDO_GID "x" is not a number`, is: ErrBadSudoEnv},
		{name: "SUDO_USER mismatch", getenv: env("SUDO_UID", "1000", "SUDO_USER", "bob"), err: `SUDO_USER "bob" is not user "alice" of SUDO_UID 1000`, is: ErrBadSudoEnv},
		{name: "SUDO_USER mismatch for root", getenv: env("SUDO_UID", "0", "SUDO_USER", "alice"), err: `SUDO_USER "alice" is not user "root" of SUDO_UID 0`, is: ErrBadSudoEnv},
	}
	db := testDB(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.resolve(tc.user, tc.getenv, tc.realUID)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err || !errors.Is(err, tc.is) {
					t.Fatalf("got %+v, %v; want error %q wrapping %v", got, err, tc.err, tc.is)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// TestResolveLargeDatabase: a passwd and a group file larger than readFile's first buffer are
// read whole (the user is on the last line).
func TestResolveLargeDatabase(t *testing.T) {
	dir := t.TempDir()
	db := userDB{passwd: filepath.Join(dir, "passwd"), group: filepath.Join(dir, "group")}
	var pw, gr strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&pw, "user%d:x:%d:%d::/home/user%d:/bin/sh\n", i, 20000+i, 20000+i, i)
		fmt.Fprintf(&gr, "group%d:x:%d:user%d\n", i, 30000+i, i+1)
	}
	pw.WriteString("last:x:9999:9999::/home/last:/bin/sh\n")
	gr.WriteString("lastg:x:8888:last\n")
	if err := os.WriteFile(db.passwd, []byte(pw.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db.group, []byte(gr.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := db.resolve("last", env(), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := &Target{UID: 9999, GID: 9999, Groups: []uint32{9999, 8888}, Name: "last", Home: "/home/last", Shell: "/bin/sh"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	// A directory where the file should be: an error that names it.
	db.group = dir
	if _, err := db.resolve("last", env(), 0); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("a directory as the group file: %v, want an error naming %s", err, dir)
	}
}

func TestResolveMissingDatabase(t *testing.T) {
	db := userDB{passwd: filepath.Join(t.TempDir(), "none"), group: filepath.Join(t.TempDir(), "none")}
	if _, err := db.resolve("", env(), 0); !errors.Is(err, ErrNoUser) {
		t.Errorf("without a passwd file: %v, want ErrNoUser", err)
	}
}

func TestEnv(t *testing.T) {
	environ := []string{
		"TERM=xterm",
		"HOME=/root",
		"SUDO_USER=alice",
		"SUDO_UID=1000",
		"SUDO_COMMAND=/usr/bin/wgns exec work -- firefox",
		"DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus",
		"LD_PRELOAD=/tmp/x.so",
		"LD_LIBRARY_PATH=/tmp",
		"LANG=C.UTF-8",
		"LC_ALL=C",
		"PATH=/home/alice/bin:/usr/bin",
		"DISPLAY=:0",
		"XDG_RUNTIME_DIR=/run/user/1000",
		"MAIL=/var/mail/root",
		"LOCALDOMAIN=corp.example",
		"RES_OPTIONS=ndots:5",
		"HOSTALIASES=/tmp/aliases",
		"SSH_AUTH_SOCK=/tmp/ssh-x/agent.1",
		"bogus",
		"=x",
		"TERM=screen",
		"SHELL=/bin/zsh",
		"USER=root",
		"LOGNAME=root",
		"WAYLAND_DISPLAY=wayland-0",
		"EMPTY=",
	}
	cases := []struct {
		name string
		t    *Target
		want []string
	}{
		{"user", alice, []string{
			"LANG=C.UTF-8",
			"LC_ALL=C",
			"DISPLAY=:0",
			"XDG_RUNTIME_DIR=/run/user/1000",
			"TERM=screen",
			"WAYLAND_DISPLAY=wayland-0",
			"EMPTY=",
			"HOME=/home/alice",
			"SHELL=/bin/bash",
			"USER=alice",
			"LOGNAME=alice",
			"PATH=/home/alice/.local/bin:/home/alice/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games",
			"DBUS_SESSION_BUS_ADDRESS=disabled:",
		}},
		{"root", root, []string{
			"LANG=C.UTF-8",
			"LC_ALL=C",
			"DISPLAY=:0",
			"TERM=screen",
			"WAYLAND_DISPLAY=wayland-0",
			"EMPTY=",
			"HOME=/root",
			"SHELL=/bin/bash",
			"USER=root",
			"LOGNAME=root",
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"DBUS_SESSION_BUS_ADDRESS=disabled:",
		}},
		{"other user's runtime dir", bob, []string{
			"LANG=C.UTF-8",
			"LC_ALL=C",
			"DISPLAY=:0",
			"TERM=screen",
			"WAYLAND_DISPLAY=wayland-0",
			"EMPTY=",
			"HOME=/home/bob",
			"SHELL=/bin/sh",
			"USER=bob",
			"LOGNAME=bob",
			"PATH=/home/bob/.local/bin:/home/bob/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games",
			"DBUS_SESSION_BUS_ADDRESS=disabled:",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, tc.t.Env(environ)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	if got := alice.Env(nil); len(got) != 6 {
		t.Errorf("Env(nil) = %q, want the 6 variables it sets", got)
	}
}

func TestPath(t *testing.T) {
	cases := []struct {
		home string
		root bool
		want string
	}{
		{"/home/alice", false, "/home/alice/.local/bin:/home/alice/bin:" + UserPath},
		{"/home/alice/", false, "/home/alice/.local/bin:/home/alice/bin:" + UserPath},
		{"/root", true, RootPath},
		{"/", false, UserPath},
		{"", false, UserPath},
		{"relative/home", false, UserPath},
	}
	for _, tc := range cases {
		if got := (&Target{Home: tc.home, Root: tc.root}).Path(); got != tc.want {
			t.Errorf("Path() with HOME %q (root %v) = %q, want %q", tc.home, tc.root, got, tc.want)
		}
	}
}

// TestResolveReadsGroupsOnlyWhenNeeded: root's command keeps wgns's credentials, so resolving
// root does not read the group file (a short exec path); any other user, or a SUDO_GID to check,
// does.
func TestResolveReadsGroupsOnlyWhenNeeded(t *testing.T) {
	db := testDB(t)
	db.group = t.TempDir() // a directory: reading it fails
	if got, err := db.resolve("", env(), 0); err != nil || !got.Root || got.Groups != nil {
		t.Errorf("plain root: %+v, %v; want root without groups, and no read of the group file", got, err)
	}
	if got, err := db.resolve("", env("SUDO_UID", "0"), 0); err != nil || !got.Root {
		t.Errorf("sudo by root: %+v, %v", got, err)
	}
	for _, tc := range []struct {
		user   string
		getenv func(string) string
	}{{"alice", env()}, {"", env("SUDO_UID", "1000")}, {"", env("SUDO_UID", "0", "SUDO_GID", "0")}} {
		if _, err := db.resolve(tc.user, tc.getenv, 0); err == nil || !strings.Contains(err.Error(), db.group) {
			t.Errorf("resolve(%q): %v; want the group file's read error", tc.user, err)
		}
	}
}
