package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/google/go-cmp/cmp"

	"github.com/wgns/wgns/dnsbind"
	"github.com/wgns/wgns/nsmgr"
)

// dnsEtcLinks is the /etc link farm as wgns writes it; dnsbind.LinkDir is its read-only bind.
const dnsEtcLinks = "/run/wgns/links/etc"

// The namespace's DNS view used by these tests.
var dnsTestView = dnsbind.View{
	Servers: []netip.Addr{netip.MustParseAddr("198.51.100.53"), netip.MustParseAddr("fd00:53::1")},
	Search:  []string{"tunnel.example"},
}

// writeView writes the DNS view v of name and removes it when the test ends.
func writeView(t testing.TB, name string, v dnsbind.View) {
	t.Helper()
	if err := dnsbind.Write(name, v); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.RemoveAll(filepath.Join(dnsbind.EtcDir, name))
	})
}

// startDNSView starts dnsview with args and kills it when the test ends (or after a minute).
func startDNSView(t *testing.T, args ...string) *sectionedChild {
	t.Helper()
	return startSectioned(t, nil, append([]string{worldTool(t, "dnsview")}, args...)...)
}

// runDNSView runs dnsview with args to the end and returns its output split at lines "@@".
func runDNSView(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command(worldTool(t, "dnsview"), args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("dnsview %q: %v; stderr: %s", args, err, stderr)
	}
	return strings.Split(string(out), "@@\n")
}

// TestIntegrationDNSWrite checks the files Write makes (owner, modes, content), that a reader
// never sees part of one while Write replaces it, what Check reports after they are altered,
// and Remove.
func TestIntegrationDNSWrite(t *testing.T) {
	const name = "dnswrite"
	keepFile(t, "/etc/nsswitch.conf")
	replaceFile(t, "/etc/nsswitch.conf", "passwd: files systemd\n"+
		"hosts:          files mdns4_minimal [NOTFOUND=return] resolve [!UNAVAIL=return] dns myhostname\n"+
		"networks: files\n")
	writeView(t, name, dnsTestView)
	dir := filepath.Join(dnsbind.EtcDir, name)

	wantResolv := "# DNS of network namespace \"dnswrite\", written by wgns. Do not edit: wgns rewrites it.\n" +
		"nameserver 198.51.100.53\nnameserver fd00:53::1\nsearch tunnel.example\n"
	wantNsswitch := "# Name services of network namespace \"dnswrite\", written by wgns from the host's\n" +
		"# /etc/nsswitch.conf with hosts reduced to \"files dns\". Do not edit: wgns rewrites it.\n\n" +
		"passwd: files systemd\nhosts:          files dns\nnetworks: files\n"
	for _, f := range []struct{ path, want string }{
		{dir + "/resolv.conf", wantResolv},
		{dir + "/nsswitch.conf", wantNsswitch},
	} {
		if got := readFile(t, f.path); got != f.want {
			t.Errorf("%s:\n%s\nwant:\n%s", f.path, got, f.want)
		}
	}
	for _, f := range []struct {
		path string
		mode fs.FileMode
	}{{dir, fs.ModeDir | 0o755}, {dir + "/resolv.conf", 0o644}, {dir + "/nsswitch.conf", 0o644}} {
		fi, err := os.Lstat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != f.mode || st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s: mode %v owner %d:%d, want %v root:root", f.path, fi.Mode(), st.Uid, st.Gid, f.mode)
		}
	}
	if diffs, err := dnsbind.Check(name, dnsTestView); err != nil || len(diffs) != 0 {
		t.Fatalf("Check right after Write: %q, %v", diffs, err)
	}

	t.Run("atomic", func(t *testing.T) {
		other := dnsbind.View{Servers: []netip.Addr{netip.MustParseAddr("203.0.113.53")}}
		if err := dnsbind.Write(name, other); err != nil {
			t.Fatal(err)
		}
		otherResolv := readFile(t, dir+"/resolv.conf")
		done := make(chan struct{})
		var bad []string
		var reads int
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				b, err := os.ReadFile(dir + "/resolv.conf")
				reads++
				if err != nil || (string(b) != wantResolv && string(b) != otherResolv) {
					bad = append(bad, fmt.Sprintf("%q %v", b, err))
				}
			}
		})
		for i := range 300 {
			v := dnsTestView
			if i%2 == 0 {
				v = other
			}
			if err := dnsbind.Write(name, v); err != nil {
				t.Error(err)
				break
			}
		}
		close(done)
		wg.Wait()
		if len(bad) > 0 {
			t.Errorf("%d of %d reads saw neither whole file, e.g. %s", len(bad), reads, bad[0])
		}
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if !slices.Equal(names, []string{"nsswitch.conf", "resolv.conf"}) {
			t.Errorf("%s holds %q, want only nsswitch.conf and resolv.conf", dir, names)
		}
	})

	t.Run("check", func(t *testing.T) {
		f, err := os.OpenFile(dir+"/resolv.conf", os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("nameserver 192.0.2.99\n")
		f.Close()
		if err := os.Chmod(dir+"/nsswitch.conf", 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir+"/.wgns-tmp-resolv.conf-1234", nil, 0o600); err != nil {
			t.Fatal(err)
		}
		diffs, err := dnsbind.Check(name, dnsTestView)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			dir + "/resolv.conf: content differs (- on disk, + wanted):\n\t-nameserver 192.0.2.99",
			dir + "/nsswitch.conf: mode -rw-------, want -rw-r--r--",
			dir + "/.wgns-tmp-resolv.conf-1234: leftover temporary file",
		}
		if !slices.Equal(diffs, want) {
			t.Errorf("Check of an altered view:\n%s\nwant:\n%s", strings.Join(diffs, "\n"), strings.Join(want, "\n"))
		}
		if err := dnsbind.Write(name, dnsTestView); err != nil {
			t.Fatal(err)
		}
		if diffs, err := dnsbind.Check(name, dnsTestView); err != nil || len(diffs) != 0 {
			t.Errorf("Check after a second Write: %q, %v", diffs, err)
		}
	})

	t.Run("remove", func(t *testing.T) {
		if err := dnsbind.Remove(name); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after Remove, %s: %v", dir, err)
		}
		if err := dnsbind.Remove(name); err != nil {
			t.Errorf("second Remove: %v", err)
		}
		diffs, err := dnsbind.Check(name, dnsTestView)
		if err != nil || !slices.Equal(diffs, []string{dir + ": missing"}) {
			t.Errorf("Check after Remove: %q, %v", diffs, err)
		}
	})
}

// TestIntegrationDNSEnterView checks what a program started by dnsview sees in /etc and /run,
// and that the world is unchanged after it exits.
func TestIntegrationDNSEnterView(t *testing.T) {
	const name = "dnsview"
	keepFile(t, "/etc/resolv.conf")
	replaceFile(t, "/etc/resolv.conf", "nameserver 192.0.2.1 # the host's\n")
	makeDir(t, "/run/nscd")
	writeView(t, name, dnsTestView)
	view := filepath.Join(dnsbind.EtcDir, name)

	mountinfo := readFile(t, "/proc/self/mountinfo")
	hostResolv := readFile(t, "/etc/resolv.conf")
	hostNsswitch := readFile(t, "/etc/nsswitch.conf")
	script := `cat /etc/resolv.conf; echo @@
cat /etc/nsswitch.conf; echo @@
cat /etc/passwd; echo @@
cat /etc/hosts; echo @@
readlink /etc/os-release; head -n1 /etc/os-release; echo @@
test -s /etc/ssl/certs/ca-certificates.crt && echo certs; echo @@
stat -L -c '%F %a %u' /etc/resolv.conf /etc/nsswitch.conf; echo @@
touch /etc/wgns-new 2>/dev/null && echo writable || echo read-only; echo @@
ls -A /run/nscd; echo @@
touch /run/nscd/x 2>/dev/null && echo writable || echo read-only; echo @@
`
	got := runDNSView(t, name, "sh", "-c", script)
	osRelease, err := os.Readlink("/etc/os-release")
	if err != nil {
		t.Fatal(err)
	}
	firstLine, _, _ := strings.Cut(readFile(t, "/etc/os-release"), "\n")
	want := []string{
		readFile(t, view+"/resolv.conf"),
		readFile(t, view+"/nsswitch.conf"),
		readFile(t, "/etc/passwd"),
		readFile(t, "/etc/hosts"),
		osRelease + "\n" + firstLine + "\n",
		"certs\n",
		"regular file 644 0\nregular file 644 0\n",
		"read-only\n",
		"",
		"read-only\n",
		"",
	}
	if !slices.Equal(got, want) {
		for i := range max(len(got), len(want)) {
			var g, w string
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("section %d: got\n%s\nwant\n%s", i, g, w)
			}
		}
	}

	for _, f := range []struct{ path, before string }{
		{"/proc/self/mountinfo", mountinfo},
		{"/etc/resolv.conf", hostResolv},
		{"/etc/nsswitch.conf", hostNsswitch},
	} {
		if after := readFile(t, f.path); after != f.before {
			t.Errorf("%s changed in the world:\nbefore:\n%s\nafter:\n%s", f.path, f.before, after)
		}
	}
	if _, err := os.Lstat("/etc/wgns-new"); err == nil {
		t.Error("the child created /etc/wgns-new in the world")
	}
}

// TestIntegrationDNSEnterSurvivesRename starts a program with the namespace's view, replaces the
// host's /etc/resolv.conf by rename while it runs (a plain file; a symlink into /run whose
// target is renamed over, then the symlink itself), and checks that the program still reads
// the namespace's file while it sees the host's new /etc/passwd. A control started with
// `ip netns exec`'s single bind mount must see the host's new resolv.conf, or the test proves
// nothing.
func TestIntegrationDNSEnterSurvivesRename(t *testing.T) {
	const name = "dnsrename"
	const userLine = "wgnstest:x:4242:4242::/nonexistent:/usr/sbin/nologin\n"
	// The script prints resolv.conf for each step, then counts wgnstest in /etc/passwd.
	script := func(steps int) string {
		return strings.Repeat("cat /etc/resolv.conf; echo @@; read x; ", steps) +
			"cat /etc/resolv.conf; echo @@; grep -c wgnstest /etc/passwd; echo @@"
	}
	for _, tc := range resolvRenames("/run/hostdns", "192.0.2.1", "192.0.2.2", "192.0.2.3") {
		t.Run(tc.name, func(t *testing.T) {
			keepFile(t, "/etc/resolv.conf")
			keepFile(t, "/etc/passwd")
			tc.setup(t)
			writeView(t, name, dnsTestView)
			ours := readFile(t, filepath.Join(dnsbind.EtcDir, name, "resolv.conf"))
			passwd := readFile(t, "/etc/passwd")

			sc := script(len(tc.steps))
			child := startDNSView(t, name, "sh", "-c", sc)
			control := startDNSView(t, "-plain-bind", name, "sh", "-c", sc)
			for _, c := range []*sectionedChild{child, control} {
				if got := c.section(t); got != ours {
					t.Fatalf("before any rename the program reads\n%s\nwant the namespace's\n%s", got, ours)
				}
			}
			for i, step := range tc.steps {
				hostNew := step(t)
				if i == len(tc.steps)-1 {
					replaceFile(t, "/etc/passwd", passwd+userLine)
				}
				child.next(t)
				control.next(t)
				if got := child.section(t); got != ours {
					t.Errorf("step %d: after the host's rename the program reads\n%s\nwant the namespace's\n%s", i, got, ours)
				}
				if got := control.section(t); got != hostNew {
					t.Errorf("step %d: control (single bind mount) reads\n%s\nwant the host's new file (else this test proves nothing)\n%s", i, got, hostNew)
				}
			}
			if got := child.section(t); got != "1\n" {
				t.Errorf("the program counts %q wgnstest lines in /etc/passwd after the host renamed a new one in, want 1 (live)", got)
			}
			child.wait(t)
			control.wait(t)
		})
	}
}

// TestIntegrationDNSEnterFollowsHostEtc checks that the namespace's /etc follows the entries the
// host adds to or removes from its /etc: a program started after the change sees it, and so does
// one already running once another program has been started; and that many programs starting at
// once after a change all get their view.
func TestIntegrationDNSEnterFollowsHostEtc(t *testing.T) {
	const name = "dnsfollow"
	writeView(t, name, dnsTestView)
	for _, p := range []string{"/etc/wgns-added", "/etc/wgns-rel", "/etc/wgns-late"} {
		keepFile(t, p)
	}
	replaceFile(t, "/etc/wgns-added", "added\n")
	replaceSymlink(t, "/etc/wgns-rel", "../usr/lib/os-release")
	firstLine, _, _ := strings.Cut(readFile(t, "/usr/lib/os-release"), "\n")
	got := runDNSView(t, name, "sh", "-c", "cat /etc/wgns-added; echo @@; head -n1 /etc/wgns-rel; readlink /etc/wgns-rel; echo @@")
	want := []string{"added\n", firstLine + "\n../usr/lib/os-release\n", ""}
	if !slices.Equal(got, want) {
		t.Errorf("after the host added entries to /etc, a new program reads %q, want %q", got, want)
	}

	if err := os.Remove("/etc/wgns-added"); err != nil {
		t.Fatal(err)
	}
	got = runDNSView(t, name, "sh", "-c", "test -e /etc/wgns-added && echo present || echo absent; echo @@")
	if want := []string{"absent\n", ""}; !slices.Equal(got, want) {
		t.Errorf("after the host removed an entry of /etc, a new program finds it %q, want %q", got, want)
	}

	child := startDNSView(t, name, "sh", "-c", "echo @@; read x; cat /etc/wgns-late; echo @@")
	child.section(t)
	replaceFile(t, "/etc/wgns-late", "late\n")
	runDNSView(t, name, "true") // another program brings the shared links up to date
	child.next(t)
	if got := child.section(t); got != "late\n" {
		t.Errorf("a running program reads %q from an entry the host added to /etc, want %q", got, "late\n")
	}
	child.wait(t)

	replaceFile(t, "/etc/wgns-late", "later\n")
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() { _, errs[i] = enterInThread(name) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Errorf("Enters at once after a change of /etc: %v", err)
	}

	// A damaged link farm is rebuilt after the next Write. (LinkDir is its read-only bind.)
	if err := os.Remove(dnsEtcLinks + "/.wgns-view/resolv.conf"); err != nil {
		t.Fatal(err)
	}
	if _, err := enterInThread(name); err == nil {
		t.Error("Enter with a damaged link directory succeeded")
	}
	if err := dnsbind.Write(name, dnsTestView); err != nil {
		t.Fatal(err)
	}
	if _, err := enterInThread(name); err != nil {
		t.Errorf("Enter after Write repaired the link directory: %v", err)
	}
}

// TestIntegrationDNSExecAsUser runs a program the way wgns exec does (identity, then nsmgr.Exec
// with dnsbind.Enter as its mounts) as an unprivileged user, and checks that it is in the
// namespace and can read the namespace's DNS view and the host's files through it.
func TestIntegrationDNSExecAsUser(t *testing.T) {
	const name = "dnsexec"
	h, err := nsmgr.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	t.Cleanup(func() { nsmgr.Delete(name) })
	writeView(t, name, dnsTestView)
	var st unix.Stat_t
	if err := unix.Stat(nsmgr.Path(name), &st); err != nil {
		t.Fatal(err)
	}

	script := `id -u; echo @@
stat -L -c %i /proc/self/ns/net; echo @@
cat /etc/resolv.conf; echo @@
cat /etc/nsswitch.conf; echo @@
grep -c '^root:' /etc/passwd; echo @@
echo "$HOME $USER $DBUS_SESSION_BUS_ADDRESS"; echo @@
`
	got := runDNSView(t, "-exec", name, "nobody", "sh", "-c", script)
	view := filepath.Join(dnsbind.EtcDir, name)
	want := []string{
		"65534\n",
		fmt.Sprintf("%d\n", st.Ino),
		readFile(t, view+"/resolv.conf"),
		readFile(t, view+"/nsswitch.conf"),
		"1\n",
		"/nonexistent nobody disabled:\n",
		"",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("the program run as nobody in the namespace (-want +got):\n%s", d)
	}
}

// TestIntegrationDNSHiddenSockets listens on the host's resolver sockets and checks that a
// program with the namespace's view cannot connect to them (and none of them accepts a
// connection), while one without the view can.
func TestIntegrationDNSHiddenSockets(t *testing.T) {
	const name = "dnshide"
	socks := []string{"/run/nscd/socket", "/run/systemd/resolve/io.systemd.Resolve", "/run/avahi-daemon/socket"}
	silent := listenSilent(t, socks...)
	writeView(t, name, dnsTestView)
	bin := worldTool(t, "dnsview")

	got := runDNSView(t, append([]string{name, bin, "connect"}, socks...)...)[0]
	for _, s := range socks {
		if !strings.Contains(got, s+": failed: ") || strings.Contains(got, s+": connected") {
			t.Errorf("with the namespace's view, connecting to %s: %s", s, got)
		}
	}
	for s, n := range silent.accepted() {
		t.Errorf("%s accepted %d connections from the namespace", s, n)
	}

	// Each directory is an empty, read-only directory of the /run link farm, also when reached
	// as /var/run/nscd; the host's directories are where the farm's links lead.
	var script strings.Builder
	for _, s := range socks {
		for _, d := range []string{filepath.Dir(s), "/var" + filepath.Dir(s)} {
			fmt.Fprintf(&script, "echo %s: $(ls -A %s | wc -l) entries, $(touch %s/x 2>/dev/null && echo writable || echo read-only); ", d, d, d)
		}
	}
	script.WriteString("ls /run/.wgns-host/nscd")
	var want strings.Builder
	for _, s := range socks {
		for _, d := range []string{filepath.Dir(s), "/var" + filepath.Dir(s)} {
			fmt.Fprintf(&want, "%s: 0 entries, read-only\n", d)
		}
	}
	want.WriteString("socket\n")
	if got := runDNSView(t, name, "sh", "-c", script.String())[0]; got != want.String() {
		t.Errorf("the hidden directories in the namespace:\n%s\nwant:\n%s", got, want.String())
	}

	control := runDNSView(t, append([]string{"connect"}, socks...)...)[0]
	counts := silent.accepted()
	for _, s := range socks {
		if !strings.Contains(control, s+": connected") {
			t.Errorf("without the view, connecting to %s: %s (else this test proves nothing)", s, control)
		}
		if n := counts[s]; n != 1 {
			t.Errorf("%s accepted %d connections from the control, want 1", s, n)
		}
	}
}

// enterInThread runs dnsbind.Enter(name) on a thread of its own, in a private mount namespace
// made a recursive slave, as nsmgr's Exec does. The thread is never returned to the Go runtime:
// it exits with its goroutine, and its mount namespace with it.
func enterInThread(name string) (time.Duration, error) {
	type result struct {
		d   time.Duration
		err error
	}
	ch := make(chan result, 1)
	work := func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			ch <- result{err: err}
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
			ch <- result{err: err}
			return
		}
		start := time.Now()
		err := dnsbind.Enter(name)
		ch <- result{time.Since(start), err}
	}
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			work()
			return
		}
		// Never on the main thread: the runtime parks it instead of ending it, and it would stay
		// in this mount namespace, which /proc/self then shows for the whole test process.
		go work()
		<-make(chan struct{}) // keep the main thread locked here until the process ends
	}()
	r := <-ch
	return r.d, r.err
}

// TestIntegrationDNSEnterRefusesUnsafe checks that Enter refuses a view whose files someone
// other than root could have put or changed, and says why.
func TestIntegrationDNSEnterRefusesUnsafe(t *testing.T) {
	const name = "dnsunsafe"
	dir := filepath.Join(dnsbind.EtcDir, name)
	cases := []struct {
		name    string
		spoil   func(t *testing.T)
		unsafe  bool   // errors.Is(err, dnsbind.ErrUnsafe)
		message string // in the error
	}{
		{"valid", func(t *testing.T) {}, false, ""},
		{"symlinked resolv.conf", func(t *testing.T) {
			os.Remove(dir + "/resolv.conf")
			if err := os.Symlink("/etc/resolv.conf", dir+"/resolv.conf"); err != nil {
				t.Fatal(err)
			}
		}, true, dir + "/resolv.conf is a symlink"},
		{"group-writable resolv.conf", func(t *testing.T) {
			if err := os.Chmod(dir+"/resolv.conf", 0o664); err != nil {
				t.Fatal(err)
			}
		}, true, dir + "/resolv.conf is writable by group or others (mode 0664)"},
		{"others-writable nsswitch.conf", func(t *testing.T) {
			if err := os.Chmod(dir+"/nsswitch.conf", 0o646); err != nil {
				t.Fatal(err)
			}
		}, true, dir + "/nsswitch.conf is writable by group or others (mode 0646)"},
		{"resolv.conf owned by a user", func(t *testing.T) {
			if err := os.Chown(dir+"/resolv.conf", 1000, 1000); err != nil {
				t.Fatal(err)
			}
		}, true, dir + "/resolv.conf is owned by uid 1000, not root"},
		{"resolv.conf a FIFO", func(t *testing.T) {
			os.Remove(dir + "/resolv.conf")
			if err := unix.Mkfifo(dir+"/resolv.conf", 0o644); err != nil {
				t.Fatal(err)
			}
		}, true, dir + "/resolv.conf is not a regular file"},
		{"group-writable directory", func(t *testing.T) {
			if err := os.Chmod(dir, 0o775); err != nil {
				t.Fatal(err)
			}
		}, true, dir + " is writable by group or others (mode 0775)"},
		{"symlinked directory", func(t *testing.T) {
			if err := os.Rename(dir, dir+".real"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir + ".real") })
			if err := os.Symlink(name+".real", dir); err != nil {
				t.Fatal(err)
			}
		}, true, dir + " is a symlink"},
		{"missing nsswitch.conf", func(t *testing.T) {
			os.Remove(dir + "/nsswitch.conf")
		}, false, "open " + dir + "/nsswitch.conf: no such file or directory"},
		{"group-writable link farm", func(t *testing.T) {
			if err := os.Chmod(dnsEtcLinks, 0o775); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dnsEtcLinks, 0o755) })
		}, true, dnsEtcLinks + " is writable by group or others (mode 0775)"},
	}
	// A first Enter makes LinkDir.
	writeView(t, name, dnsTestView)
	if _, err := enterInThread(name); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			writeView(t, name, dnsTestView)
			tc.spoil(t)
			_, err := enterInThread(name)
			if tc.message == "" {
				if err != nil {
					t.Fatalf("Enter of a valid view: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.message) || errors.Is(err, dnsbind.ErrUnsafe) != tc.unsafe {
				t.Errorf("Enter: %v\nwant an error with %q, ErrUnsafe %v", err, tc.message, tc.unsafe)
			}
		})
	}

	t.Run("message reaches the user", func(t *testing.T) {
		writeView(t, name, dnsTestView)
		if err := os.Chmod(dir+"/resolv.conf", 0o666); err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd := exec.Command(worldTool(t, "dnsview"), name, "cat", "/etc/resolv.conf")
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		want := `dnsview: entering the DNS view of "dnsunsafe": /etc/netns/dnsunsafe/resolv.conf is writable by group or others (mode 0666): refused: not safe to use` + "\n"
		if err == nil || len(out) != 0 || stderr.String() != want {
			t.Errorf("dnsview: %v, stdout %q, stderr %q; want it to fail with %q", err, out, stderr.String(), want)
		}
	})
}

// TestIntegrationDNSEnterCost times 1000 Enters, each on a fresh thread in a fresh mount
// namespace, and reports the distribution; it fails only if the median is far beyond the
// expected few hundred microseconds.
func TestIntegrationDNSEnterCost(t *testing.T) {
	const name = "dnscost"
	writeView(t, name, dnsTestView)
	var ds []time.Duration
	for range 1000 {
		d, err := enterInThread(name)
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	slices.Sort(ds)
	entries, _ := os.ReadDir("/etc")
	t.Logf("Enter over %d runs, /etc of %d entries: min %v, median %v, p90 %v, p99 %v, max %v",
		len(ds), len(entries), ds[0], ds[len(ds)/2], ds[len(ds)*9/10], ds[len(ds)*99/100], ds[len(ds)-1])
	if ds[len(ds)/2] > 2*time.Millisecond {
		t.Errorf("Enter's median cost is %v, want well under 2ms", ds[len(ds)/2])
	}
}

// BenchmarkIntegrationDNSEnter reports the cost of Enter alone (not of the thread and mount
// namespace it runs in) as enter-ns/op.
func BenchmarkIntegrationDNSEnter(b *testing.B) {
	const name = "dnsbench"
	writeView(b, name, dnsTestView)
	var total time.Duration
	for b.Loop() {
		d, err := enterInThread(name)
		if err != nil {
			b.Fatal(err)
		}
		total += d
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "enter-ns/op")
}
