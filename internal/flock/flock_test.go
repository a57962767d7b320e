package flock

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseHolders(t *testing.T) {
	const locks = `1: FLOCK  ADVISORY  WRITE 4711 00:1a:12345 0 EOF
1: -> FLOCK  ADVISORY  WRITE 4712 00:1a:12345 0 EOF
2: POSIX  ADVISORY  READ 4713 fd:01:12345 0 EOF
3: FLOCK  ADVISORY  READ 4714 00:1a:12345 0 EOF
4: OFDLCK ADVISORY  WRITE -1 00:1a:12345 0 EOF
5: FLOCK  ADVISORY  WRITE 4715 00:1a:123456 0 EOF
garbage
`
	cases := []struct {
		name     string
		dev, ino uint64
		want     []int
	}{
		{"holders, not the waiter", unix.Mkdev(0, 0x1a), 12345, []int{4711, 4714}},
		{"another device", unix.Mkdev(0xfd, 1), 12345, []int{4713}},
		{"no lock", unix.Mkdev(0, 0x1a), 1, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseHolders(strings.NewReader(locks), tc.dev, tc.ino); !slices.Equal(got, tc.want) {
				t.Errorf("parseHolders = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOpenPrivate(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name    string
		prepare func(path string)
		err     string // "" for success
	}{
		{"new file", func(string) {}, ""},
		{"existing private file", func(p string) { os.WriteFile(p, nil, 0o600) }, ""},
		{"readable by others", func(p string) { os.WriteFile(p, nil, 0o600); os.Chmod(p, 0o604) },
			"is accessible to group or others (mode 0604)"},
		{"a symlink", func(p string) { os.Symlink(filepath.Join(dir, "elsewhere"), p) }, "too many levels of symbolic links"},
		{"a FIFO", func(p string) { unix.Mkfifo(p, 0o600) }, "is not a regular file"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "lock"+strconv.Itoa(i))
			tc.prepare(path)
			fd, err := OpenPrivate(path)
			if err == nil {
				unix.Close(fd)
			}
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("OpenPrivate: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("OpenPrivate: %v, want an error with %q", err, tc.err)
			}
			if tc.err == "" {
				if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: %v %v, want mode 0600", path, fi.Mode(), err)
				}
			}
		})
	}
}

// TestLockBounded: a lock held by another process (flock(1)) is waited for no longer than the
// bound, and the error names that process; once it lets go, Lock gets the lock.
func TestLockBounded(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock(1) is missing")
	}
	path := filepath.Join(t.TempDir(), "lock")
	// Made private before flock(1) opens it: flock(1) would make it with mode 0644, which
	// OpenPrivate rightly refuses (whichever came first decided, and the test flaked).
	fd, err := OpenPrivate(path)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	// Its own process group, so that killing it ends the sleep too, which inherits the lock.
	holder := exec.Command("flock", "-s", path, "sleep", "60")
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() {
		syscall.Kill(-holder.Process.Pid, syscall.SIGKILL)
		holder.Wait()
	}
	defer stop()
	// Wait until flock(1) holds it.
	for i := 0; ; i++ {
		if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err == unix.EWOULDBLOCK {
			break
		} else if err == nil {
			unix.Flock(fd, unix.LOCK_UN)
		}
		if i > 1000 {
			t.Fatal("flock(1) did not take the lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	err = Lock(fd, path, unix.LOCK_EX, 200*time.Millisecond)
	took := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Lock of a held lock: %v, want ErrTimeout", err)
	}
	if took < 200*time.Millisecond || took > 5*time.Second {
		t.Errorf("Lock gave up after %v, want about 200ms", took)
	}
	// flock(1) takes the lock itself, then runs sleep with the descriptor: /proc/locks names
	// flock's PID.
	want := "held by PID " + strconv.Itoa(holder.Process.Pid) + " (flock, uid " + strconv.Itoa(os.Getuid()) + ") for more than 200ms"
	if !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "locking "+path+": ") {
		t.Errorf("Lock: %v\nwant it to say %q", err, want)
	}

	stop()
	if err := Lock(fd, path, unix.LOCK_EX, 5*time.Second); err != nil {
		t.Errorf("Lock after the holder exited: %v", err)
	}
}
