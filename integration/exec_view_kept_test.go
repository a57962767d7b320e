package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// keptViewDir is where wgns exec keeps the mount namespace of each tunnel's DNS view.
const keptViewDir = "/run/wgns/views"

// keptViews returns the files of keptViewDir kept for the tunnel name, and fails the test on
// a mount of one whose file is gone.
func keptViews(t *testing.T, name string) []string {
	t.Helper()
	files, _ := filepath.Glob(keptViewDir + "/" + name + "@*")
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], keptViewDir+"/"+name+"@") {
			if _, err := os.Lstat(f[4]); err != nil {
				t.Errorf("%s is still mounted, without its file", f[4])
			}
		}
	}
	return files
}

// nsfsFile reports whether path is a namespace file (a bind mount of one).
func nsfsFile(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// mountNS returns the inode of the mount namespace of process pid ("self" too), as
// /proc/PID/ns/mnt names it.
func mountNS(t *testing.T, pid string) string {
	t.Helper()
	l, err := os.Readlink("/proc/" + pid + "/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestIntegrationExecKeepsTheViewAndGivesEachProgramACopy: the first exec makes the tunnel's
// DNS view and keeps its mount namespace (a root-only file under /run/wgns/views, a private
// mount); later execs start from a copy of it, never from it: a program as root that unmounts
// its DNS view and the covers of the host's resolver sockets changes nothing for the next one.
// Entries the host adds to /etc still reach new programs, view files are still checked before
// every program (one made writable is refused), the working directory carries over, the view
// follows a rewritten /etc/netns/NAME, a leftover of a crash at the kept file's place is
// replaced, and down leaves nothing (assertNoTrace checks every test's tunnel for that).
func TestIntegrationExecKeepsTheViewAndGivesEachProgramACopy(t *testing.T) {
	const name = "xkeep"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	wantResolv := readFile(t, "/etc/netns/"+name+"/resolv.conf")

	if got := mustExec(t, name, "cat", "/etc/resolv.conf"); got != wantResolv {
		t.Fatalf("first exec: /etc/resolv.conf is\n%s\nwant the namespace's:\n%s", got, wantResolv)
	}
	kept := keptViews(t, name)
	if len(kept) != 1 || !nsfsFile(kept[0]) {
		t.Fatalf("after the first exec, want one mount namespace kept for %s in %s; have %v", name, keptViewDir, kept)
	}
	var st unix.Stat_t
	if err := unix.Stat(keptViewDir, &st); err != nil || st.Uid != 0 || st.Mode&0o077 != 0 {
		t.Errorf("%s: uid %d mode %o, want root's alone (%v)", keptViewDir, st.Uid, st.Mode&0o777, err)
	}
	if mi := readFile(t, "/proc/self/mountinfo"); !strings.Contains(mi, " "+keptViewDir+" ") {
		t.Errorf("%s is not a mount of its own:\n%s", keptViewDir, mi)
	}
	var keptIno unix.Stat_t
	if err := unix.Stat(kept[0], &keptIno); err != nil {
		t.Fatal(err)
	}

	t.Run("another user can neither reach the kept views nor hold their lock", func(t *testing.T) {
		u := addUser(t, "wgnskeep")
		for _, argv := range [][]string{
			{"ls", keptViewDir},
			{"cat", kept[0]},
			{"flock", "-n", keptViewDir + "/lock", "true"},
			{"nsenter", "--mount=" + kept[0], "true"},
		} {
			if o, e, code := asUser(t, u, argv...); code == 0 || !strings.Contains(e, "Permission denied") {
				t.Errorf("%v as %s: exit %d, want refused for want of permission\n%s%s", argv, u.Name, code, o, e)
			}
		}
	})

	t.Run("each program runs in a copy", func(t *testing.T) {
		got := strings.TrimSpace(mustExec(t, name, "readlink", "/proc/self/ns/mnt"))
		if want := "mnt:[" + itoa(keptIno.Ino) + "]"; got == want {
			t.Fatalf("the program ran in the kept mount namespace itself (%s)", got)
		}
		if got == mountNS(t, "self") {
			t.Fatalf("the program ran in the host's mount namespace (%s)", got)
		}
	})

	t.Run("what a program does to its mounts stays with it", func(t *testing.T) {
		// As root inside: take the DNS view and the cover of the resolver sockets off.
		mustExec(t, name, "sh", "-c", "umount -l /etc/.wgns-view/resolv.conf; umount -l /etc; umount -l /run; ls /etc/resolv.conf >/dev/null")
		if got := mustExec(t, name, "cat", "/etc/resolv.conf"); got != wantResolv {
			t.Fatalf("after a program unmounted its view, the next one reads /etc/resolv.conf:\n%s\nwant:\n%s", got, wantResolv)
		}
		if got := mustExec(t, name, "sh", "-c", "ls -A /run/systemd/resolve /run/nscd 2>&1; echo end"); strings.TrimSpace(got) != "/run/nscd:\n\n/run/systemd/resolve:\nend" {
			t.Errorf("the resolver directories in the next program:\n%s", got)
		}
		if k := keptViews(t, name); len(k) != 1 || k[0] != kept[0] {
			t.Errorf("kept views now %v, want %v", k, kept)
		}
	})

	t.Run("an entry the host adds to /etc reaches the next program", func(t *testing.T) {
		keepFile(t, "/etc/wgns-kept-added")
		replaceFile(t, "/etc/wgns-kept-added", "added\n")
		if got := mustExec(t, name, "cat", "/etc/wgns-kept-added"); got != "added\n" {
			t.Errorf("/etc/wgns-kept-added inside: %q", got)
		}
		if k := keptViews(t, name); len(k) != 1 || k[0] != kept[0] {
			t.Errorf("kept views now %v, want %v (the link farm changes in place)", k, kept)
		}
	})

	t.Run("a view file made unsafe is refused with a view kept", func(t *testing.T) {
		path := "/etc/netns/" + name + "/resolv.conf"
		if err := os.Chmod(path, 0o666); err != nil {
			t.Fatal(err)
		}
		_, e, code := runWith(t, envWithoutSudo(), nil, wgnsBin, "exec", name, "--", "true")
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if code != 125 || !strings.Contains(e, path+" is writable by group or others (mode 0666)") {
			t.Errorf("exec with a group-writable %s: exit %d, %q", path, code, e)
		}
		mustExec(t, name, "true")
	})

	t.Run("the working directory carries over", func(t *testing.T) {
		dir := t.TempDir()
		cmd := execCommand(name, "pwd")
		cmd.Dir = dir
		if o, e, code := runCmd(t, cmd); code != 0 || strings.TrimSpace(o) != dir {
			t.Fatalf("pwd from %s: %q, exit %d, %s", dir, o, code, e)
		}
	})

	t.Run("a rewritten view is followed", func(t *testing.T) {
		// As Write does: a new file renamed into place.
		path := "/etc/netns/" + name + "/resolv.conf"
		newResolv := wantResolv + "# rewritten\n"
		replaceFile(t, path, newResolv)
		if got := mustExec(t, name, "cat", "/etc/resolv.conf"); got != newResolv {
			t.Fatalf("after the view was rewritten: /etc/resolv.conf is\n%s\nwant:\n%s", got, newResolv)
		}
		k := keptViews(t, name)
		if len(k) != 1 || k[0] == kept[0] || !nsfsFile(k[0]) {
			t.Errorf("kept views now %v; want one, not the old %s", k, kept[0])
		}
		kept = k
	})

	t.Run("a leftover at the kept file's place is replaced", func(t *testing.T) {
		if err := unix.Unmount(kept[0], unix.MNT_DETACH); err != nil {
			t.Fatal(err)
		}
		// Root's leftover after a crash between creating the file and binding on it.
		if err := os.WriteFile(kept[0], nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if got := mustExec(t, name, "cat", "/etc/resolv.conf"); !strings.HasPrefix(got, wantResolv) {
			t.Fatalf("with a plain file at the kept view's place: /etc/resolv.conf is\n%s", got)
		}
		if k := keptViews(t, name); len(k) != 1 || k[0] != kept[0] || !nsfsFile(k[0]) {
			t.Errorf("kept views now %v; want %s, a namespace again", k, kept[0])
		}
	})

	mustWgns(t, "down", name)
	assertNoTrace(t, name)
}

// execCommand returns the command `wgns exec NAME -- argv` as plain root.
func execCommand(name string, argv ...string) *exec.Cmd {
	cmd := exec.Command(wgnsBin, append([]string{"exec", name, "--"}, argv...)...)
	cmd.Env = envWithoutSudo()
	return cmd
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// TestIntegrationExecKeepsNoViewOfFilesGoneMeanwhile: an exec that has made the view, and is
// about to keep it when the view is rewritten (repair) or removed (down), does not keep it. Keep
// checks, under the lock that Remove takes after it removes the files, that the files are still
// those the view was made from. The exec pauses at that point (a test build's hook) while the
// test rewrites the view.
func TestIntegrationExecKeepsNoViewOfFilesGoneMeanwhile(t *testing.T) {
	const name = "xgone"
	p := newPeer(t, name)
	tunnelUp(t, p, name)
	clearPause(t)
	path := "/etc/netns/" + name + "/resolv.conf"
	before := readFile(t, path)
	after := before + "# rewritten\n"

	cmd := execCommand(name, "cat", "/etc/resolv.conf")
	cmd.Env = append(cmd.Env, "WGNS_TEST_PAUSE_AT=keep")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, scaled(10*time.Second), "the first exec to pause before keeping its view", func() bool {
		_, err := os.Stat(pauseFile)
		return err == nil
	})
	replaceFile(t, path, after) // as Write does: a new file renamed into place
	if err := os.WriteFile(releaseFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the paused exec: %v\n%s", err, out.String())
	}
	if out.String() != before {
		t.Errorf("the paused exec's program read %q, want the view it was made with, %q", out.String(), before)
	}
	if k := keptViews(t, name); len(k) != 0 {
		t.Errorf("a view of files rewritten before it was kept is kept: %v", k)
	}
	if got := mustExec(t, name, "cat", "/etc/resolv.conf"); got != after {
		t.Errorf("the next exec reads %q, want %q", got, after)
	}
	if k := keptViews(t, name); len(k) != 1 {
		t.Errorf("after the next exec, kept views %v, want one", k)
	}
}
