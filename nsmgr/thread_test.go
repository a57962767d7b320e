package nsmgr

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// AsUser gives fn the user's rights on a thread of its own, and the caller keeps its own.
func TestAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching to another user needs root")
	}
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var uid, gid int
	var groups []int
	var openErr error
	err := AsUser(&Credential{UID: 65534, GID: 65534, Groups: []uint32{65534, 100}}, func() error {
		uid, gid = unix.Getuid(), unix.Getgid()
		groups, _ = unix.Getgroups()
		_, openErr = os.Open(secret)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if uid != 65534 || gid != 65534 || len(groups) != 2 {
		t.Errorf("fn ran as uid %d gid %d groups %v; want 65534, 65534, [65534 100]", uid, gid, groups)
	}
	if openErr == nil {
		t.Error("fn opened root's file")
	}
	if unix.Getuid() != 0 || unix.Geteuid() != 0 {
		t.Error("the caller's thread lost root")
	}
	if _, err := os.Open(secret); err != nil {
		t.Errorf("root can no longer open its file: %v", err)
	}
}
