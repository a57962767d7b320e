package integration

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"github.com/wgns/wgns/nsmgr"
	"golang.org/x/sys/unix"
)

// createNamed creates a namespace with nsmgr.Create and, when the test ends, closes the handle
// (the caller must not) and deletes the namespace with ip, an independent witness.
func createNamed(t *testing.T, name string) netns.NsHandle {
	t.Helper()
	h, err := nsmgr.Create(name)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	t.Cleanup(func() {
		h.Close()
		exec.Command("ip", "netns", "delete", name).Run()
	})
	return h
}

// nsIDOf returns the namespace ID of a namespace file or /proc link.
func nsIDOf(t *testing.T, path string) nsmgr.ID {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return nsmgr.ID{Dev: st.Dev, Ino: st.Ino}
}

// worldNetnsID is the world's own network namespace: that of its PID 1.
func worldNetnsID(t *testing.T) nsmgr.ID {
	return nsIDOf(t, "/proc/1/ns/net")
}

// ipNetnsID asks `ip netns exec` which namespace NAME is: stat's "%d:%i" of the namespace
// a program started there is in.
func ipNetnsID(t *testing.T, name string) string {
	t.Helper()
	return strings.TrimSpace(mustOutput(t, "ip", "netns", "exec", name, "stat", "-L", "-c", "%d:%i", "/proc/self/ns/net"))
}

// nsIDText formats id as stat's "%d:%i".
func nsIDText(id nsmgr.ID) string { return fmt.Sprintf("%d:%d", id.Dev, id.Ino) }

// mountPoints returns the mount points in /proc/self/mountinfo with their optional fields
// (propagation), one entry per mount.
func mountPoints(t *testing.T) [][2]string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ms [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER
		sep := slices.Index(fields, "-")
		ms = append(ms, [2]string{fields[4], strings.Join(fields[6:sep], " ")})
	}
	return ms
}

// mountCount returns how many mounts sit on mountpoint, and their optional fields.
func mountCount(t *testing.T, mountpoint string) (int, []string) {
	n, opt := 0, []string(nil)
	for _, m := range mountPoints(t) {
		if m[0] == mountpoint {
			n++
			opt = append(opt, m[1])
		}
	}
	return n, opt
}

// threadNetnsID returns the network namespace of the calling thread; the caller must have
// locked it.
func threadNetnsID() (nsmgr.ID, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return nsmgr.ID{}, err
	}
	return nsmgr.ID{Dev: st.Dev, Ino: st.Ino}, nil
}

// strayThreads returns the threads of this process that are not in namespace home.
func strayThreads(home nsmgr.ID) []string {
	tids, _ := filepath.Glob("/proc/self/task/*")
	var stray []string
	for _, dir := range tids {
		var st unix.Stat_t
		if unix.Stat(dir+"/ns/net", &st) != nil {
			continue // exiting
		}
		if (nsmgr.ID{Dev: st.Dev, Ino: st.Ino}) != home {
			stray = append(stray, filepath.Base(dir))
		}
	}
	return stray
}

func TestIntegrationNsmgrCreate(t *testing.T) {
	const name = "nsm-create"
	h := createNamed(t, name)

	if list := mustOutput(t, "ip", "netns", "list"); !slices.ContainsFunc(strings.Split(list, "\n"), func(l string) bool {
		return strings.HasPrefix(l+" ", name+" ")
	}) {
		t.Errorf("ip netns list does not show %q:\n%s", name, list)
	}
	if links := mustOutput(t, "ip", "-n", name, "-o", "link"); len(strings.Split(strings.TrimSpace(links), "\n")) != 1 || !strings.Contains(links, ": lo:") {
		t.Errorf("ip -n %s link = %q, want lo alone", name, links)
	}
	id, err := nsmgr.IDOf(h)
	if err != nil {
		t.Fatal(err)
	}
	if got := ipNetnsID(t, name); got != nsIDText(id) {
		t.Errorf("ip netns exec %s sees namespace %s, the handle from Create is %v", name, got, id)
	}
	if got := strings.TrimSpace(mustOutput(t, "nsenter", "--net="+nsmgr.Path(name), "stat", "-L", "-c", "%d:%i", "/proc/self/ns/net")); got != nsIDText(id) {
		t.Errorf("nsenter --net=%s sees namespace %s, the handle from Create is %v", nsmgr.Path(name), got, id)
	}
	if id == worldNetnsID(t) {
		t.Errorf("Create returned the world's own namespace")
	}
	if byName, err := nsmgr.IDByName(name); err != nil || byName != id {
		t.Errorf("IDByName(%q) = %v, %v; want %v", name, byName, err, id)
	}
	n, opts := mountCount(t, nsmgr.RunDir)
	if n != 1 || !strings.Contains(opts[0], "shared:") {
		t.Errorf("%s is mounted %d times with %q, want once, shared", nsmgr.RunDir, n, opts)
	}

	// Create does not steal or damage an existing name.
	h2, err := nsmgr.Create(name)
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Create(%q) = %v, %v; want an error wrapping fs.ErrExist", name, h2, err)
	}
	if err != nil && !strings.Contains(err.Error(), name) {
		t.Errorf("error %q does not name the namespace", err)
	}
	if got := ipNetnsID(t, name); got != nsIDText(id) {
		t.Errorf("after a failed second Create, %s is namespace %s, want %v", name, got, id)
	}

	// Names that would leave RunDir are refused before anything is made.
	for _, bad := range []string{"../nsm-out", "..", "", "a/b", "sixteen-chars-xx"} {
		if _, err := nsmgr.Create(bad); !errors.Is(err, nsmgr.ErrInvalidName) {
			t.Errorf("Create(%q) = %v, want ErrInvalidName", bad, err)
		}
	}
	if _, err := os.Lstat("/run/nsm-out"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Create(\"../nsm-out\") left /run/nsm-out behind: %v", err)
	}
}

// TestIntegrationNsmgrCreateConcurrentWithIP creates namespaces with nsmgr and ip at once: the
// flock on RunDir must keep RunDir a single shared mount, and every namespace must be distinct.
func TestIntegrationNsmgrCreateConcurrentWithIP(t *testing.T) {
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	handles := make([]netns.NsHandle, n)
	for i := range n {
		name, ipName := fmt.Sprintf("nsm-cc%d", i), fmt.Sprintf("nsm-ip%d", i)
		t.Cleanup(func() {
			exec.Command("ip", "netns", "delete", name).Run()
			exec.Command("ip", "netns", "delete", ipName).Run()
		})
		wg.Add(2)
		go func() {
			defer wg.Done()
			h, err := nsmgr.Create(name)
			handles[i] = h
			if err != nil {
				errs <- err
			}
		}()
		go func() {
			defer wg.Done()
			if out, err := exec.Command("ip", "netns", "add", ipName).CombinedOutput(); err != nil {
				errs <- fmt.Errorf("ip netns add %s: %v: %s", ipName, err, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	seen := map[nsmgr.ID]string{}
	for i, h := range handles {
		defer h.Close()
		for _, name := range []string{fmt.Sprintf("nsm-cc%d", i), fmt.Sprintf("nsm-ip%d", i)} {
			id, err := nsmgr.IDByName(name)
			if err != nil {
				t.Fatal(err)
			}
			if other, dup := seen[id]; dup {
				t.Errorf("%s and %s are the same namespace", name, other)
			}
			seen[id] = name
		}
	}
	if c, opts := mountCount(t, nsmgr.RunDir); c != 1 || !strings.Contains(opts[0], "shared:") {
		t.Errorf("%s is mounted %d times with %q, want once, shared", nsmgr.RunDir, c, opts)
	}
}

func TestIntegrationNsmgrDelete(t *testing.T) {
	const name = "nsm-delete"
	createNamed(t, name)
	path := nsmgr.Path(name)
	if n, _ := mountCount(t, path); n != 1 {
		t.Fatalf("%s is mounted %d times before Delete, want once", path, n)
	}
	if err := nsmgr.Delete(name); err != nil {
		t.Fatalf("Delete(%q): %v", name, err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Delete, %s: %v, want it gone", path, err)
	}
	if n, _ := mountCount(t, path); n != 0 {
		t.Errorf("after Delete, %s is still mounted %d times", path, n)
	}
	if list := mustOutput(t, "ip", "netns", "list"); strings.Contains(list, name) {
		t.Errorf("after Delete, ip netns list still shows %q:\n%s", name, list)
	}
	if err := nsmgr.Delete(name); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), name) {
		t.Errorf("Delete of an absent namespace = %v, want an error naming it and wrapping fs.ErrNotExist", err)
	}

	// A file with nothing mounted on it (left by a crash) is just removed.
	plain := nsmgr.Path("nsm-plain")
	if err := os.WriteFile(plain, nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := nsmgr.Delete("nsm-plain"); err != nil {
		t.Errorf("Delete of a plain file: %v", err)
	}
	if _, err := os.Lstat(plain); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Delete left the plain file %s: %v", plain, err)
	}

	// One made by ip.
	mustOutput(t, "ip", "netns", "add", "nsm-ipdel")
	if err := nsmgr.Delete("nsm-ipdel"); err != nil {
		t.Errorf("Delete of a namespace made by ip: %v", err)
	}
	if list := mustOutput(t, "ip", "netns", "list"); strings.Contains(list, "nsm-ipdel") {
		t.Errorf("after Delete, ip netns list still shows nsm-ipdel:\n%s", list)
	}

	for _, bad := range []string{"..", "../netns", "", "a b"} {
		if err := nsmgr.Delete(bad); !errors.Is(err, nsmgr.ErrInvalidName) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidName", bad, err)
		}
	}
	if n, _ := mountCount(t, "/run"); n != 1 {
		t.Errorf("/run is mounted %d times, want once (Delete(\"..\") must not touch it)", n)
	}
}

func TestIntegrationNsmgrOpen(t *testing.T) {
	mustOutput(t, "ip", "netns", "add", "nsm-open")
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", "nsm-open").Run() })
	h, err := nsmgr.Open("nsm-open")
	if err != nil {
		t.Fatalf("Open of a namespace made by ip: %v", err)
	}
	defer h.Close()
	id, err := nsmgr.IDOf(h)
	if err != nil {
		t.Fatal(err)
	}
	if got := ipNetnsID(t, "nsm-open"); got != nsIDText(id) {
		t.Errorf("Open(nsm-open) is namespace %v, ip netns exec says %s", id, got)
	}

	if _, err := nsmgr.Open("nsm-absent"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "nsm-absent") {
		t.Errorf("Open of an absent namespace = %v, want an error naming it and wrapping fs.ErrNotExist", err)
	}

	// A plain file, and a namespace of another kind, are not network namespaces.
	plain := nsmgr.Path("nsm-plainf")
	if err := os.WriteFile(plain, nil, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(plain) })
	uts := nsmgr.Path("nsm-uts")
	if err := os.WriteFile(uts, nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("/proc/self/ns/uts", uts, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(uts, unix.MNT_DETACH); os.Remove(uts) })
	for _, name := range []string{"nsm-plainf", "nsm-uts"} {
		h, err := nsmgr.Open(name)
		if err == nil {
			h.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "not a network namespace") || !strings.Contains(err.Error(), name) {
			t.Errorf("Open(%q) = %v, want an error naming it and saying \"not a network namespace\"", name, err)
		}
		if _, err := nsmgr.IDByName(name); err == nil {
			t.Errorf("IDByName(%q) succeeded on something that is not a network namespace", name)
		}
	}
}

func TestIntegrationNsmgrList(t *testing.T) {
	createNamed(t, "nsm-l2")
	mustOutput(t, "ip", "netns", "add", "nsm-l1")
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", "nsm-l1").Run() })
	for _, bad := range []string{"nsm-l3-is-too-long", "nsm l4"} {
		p := filepath.Join(nsmgr.RunDir, bad)
		if err := os.WriteFile(p, nil, 0); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(p) })
	}
	names, err := nsmgr.List()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSorted(names) {
		t.Errorf("List() = %q, not sorted", names)
	}
	var ours []string
	for _, n := range names {
		if err := nsmgr.ValidateName(n); err != nil {
			t.Errorf("List() returned an invalid name: %v", err)
		}
		if strings.HasPrefix(n, "nsm-l") || strings.HasPrefix(n, "nsm l") {
			ours = append(ours, n)
		}
	}
	if want := []string{"nsm-l1", "nsm-l2"}; !slices.Equal(ours, want) {
		t.Errorf("List() has %q of this test's entries, want %q", ours, want)
	}
}

func TestIntegrationNsmgrProcesses(t *testing.T) {
	const name = "nsm-procs"
	h := createNamed(t, name)
	id, err := nsmgr.IDOf(h)
	if err != nil {
		t.Fatal(err)
	}
	inside := exec.Command("ip", "netns", "exec", name, "sleep", "1000")
	outside := exec.Command("sleep", "1001")
	for _, c := range []*exec.Cmd{inside, outside} {
		startUntilEnd(t, c)
	}
	var procs []nsmgr.Process
	has := func(pid int) bool {
		return slices.ContainsFunc(procs, func(p nsmgr.Process) bool { return p.PID == pid })
	}
	waitFor(t, 10*time.Second, "the sleep inside to be listed", func() bool {
		procs, err = nsmgr.Processes(id)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(procs, func(p nsmgr.Process) bool {
			return p.PID == inside.Process.Pid && p.Comm == "sleep" && p.Cmdline == "sleep 1000"
		})
	})
	if len(procs) != 1 {
		t.Errorf("Processes = %+v, want the one sleep", procs)
	}
	// The outside sleep has surely exec'd by now (its /proc/PID/comm says so) and is not listed.
	waitFor(t, 10*time.Second, "the outside sleep to start", func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", outside.Process.Pid))
		return string(b) == "sleep\n"
	})
	if procs, _ = nsmgr.Processes(id); has(outside.Process.Pid) || has(os.Getpid()) {
		t.Errorf("Processes = %+v, lists the sleep outside or this test", procs)
	}

	// A single thread that switched in puts its process in the namespace.
	err = nsmgr.Do(h, func() error {
		procs, err = nsmgr.Processes(id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !has(os.Getpid()) {
		t.Errorf("Processes from a thread inside = %+v, does not list this process (%d)", procs, os.Getpid())
	}
}

func TestIntegrationNsmgrDo(t *testing.T) {
	const name = "nsm-do"
	h := createNamed(t, name)
	mustOutput(t, "ip", "-n", name, "link", "set", "lo", "up")
	mustOutput(t, "ip", "-n", name, "addr", "add", "192.0.2.55/32", "dev", "lo")
	id, _ := nsmgr.IDOf(h)
	world := worldNetnsID(t)

	var inner nsmgr.ID
	var linkNames, addrs []string
	var spawned nsmgr.ID
	mainThread := false
	err := nsmgr.Do(h, func() error {
		mainThread = unix.Gettid() == os.Getpid()
		var err error
		if inner, err = threadNetnsID(); err != nil {
			return err
		}
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			linkNames = append(linkNames, l.Attrs().Name)
		}
		as, err := netlink.AddrList(links[0], netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, a := range as {
			addrs = append(addrs, a.IPNet.String())
		}
		// A goroutine started here is not in the namespace.
		done := make(chan error)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var err error
			spawned, err = threadNetnsID()
			done <- err
		}()
		return <-done
	})
	if err != nil {
		t.Fatal(err)
	}
	if inner != id {
		t.Errorf("inside Do the thread is in %v, want %v", inner, id)
	}
	if mainThread {
		t.Errorf("Do ran fn on the main thread, which the runtime cannot discard")
	}
	if !slices.Equal(linkNames, []string{"lo"}) || !slices.Contains(addrs, "192.0.2.55/32") {
		t.Errorf("inside Do: links %q, addresses of lo %q; want lo alone, with 192.0.2.55/32", linkNames, addrs)
	}
	if spawned != world {
		t.Errorf("a goroutine started inside Do runs in %v, want the world's %v", spawned, world)
	}

	runtime.LockOSThread()
	here, err := threadNetnsID()
	runtime.UnlockOSThread()
	if err != nil || here != world {
		t.Errorf("after Do the caller's thread is in %v (%v), want the world's %v", here, err, world)
	}

	// fn's error comes back as is.
	errFn := errors.New("fn failed")
	if err := nsmgr.Do(h, func() error { return errFn }); err != errFn {
		t.Errorf("Do returned %v, want fn's error", err)
	}

	// A handle that is not a network namespace: fn does not run.
	devNull, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	for _, bad := range []netns.NsHandle{netns.None(), netns.NsHandle(devNull.Fd())} {
		ran := false
		if err := nsmgr.Do(bad, func() error { ran = true; return nil }); err == nil || ran {
			t.Errorf("Do(%v) = %v, fn ran: %v; want an error and fn not run", bad, err, ran)
		}
	}

	// A panic in fn reaches the caller, and its thread, still inside, is discarded.
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v from Do, want fn's panic", p)
			}
		}()
		nsmgr.Do(h, func() error { panic("boom") })
	}()
	// runtime.Goexit in fn ends the caller's goroutine too.
	goexited := make(chan bool)
	go func() {
		defer func() { goexited <- true }()
		nsmgr.Do(h, func() error { runtime.Goexit(); return nil })
		goexited <- false
	}()
	if !<-goexited {
		t.Errorf("runtime.Goexit in fn did not end the goroutine calling Do")
	}
	var stray []string
	waitFor(t, 10*time.Second, "threads left inside to exit", func() bool {
		stray = strayThreads(world)
		return len(stray) == 0
	})
}

// TestIntegrationNsmgrDoConcurrent runs many Do calls at once while other goroutines keep
// checking, on whatever thread the scheduler gives them, that they are in the world's namespace.
func TestIntegrationNsmgrDoConcurrent(t *testing.T) {
	h := createNamed(t, "nsm-doconc")
	id, _ := nsmgr.IDOf(h)
	world := worldNetnsID(t)

	stop := make(chan struct{})
	var checks, wrong atomic.Int64
	var checkers sync.WaitGroup
	for range 4 {
		checkers.Add(1)
		go func() {
			defer checkers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				runtime.LockOSThread()
				got, err := threadNetnsID()
				runtime.UnlockOSThread()
				checks.Add(1)
				if err != nil || got != world {
					wrong.Add(1)
				}
				runtime.Gosched()
			}
		}()
	}

	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- nsmgr.Do(h, func() error {
				for range 3 {
					got, err := threadNetnsID()
					if err != nil {
						return err
					}
					if got != id {
						return fmt.Errorf("Do #%d runs in %v, want %v", i, got, id)
					}
					runtime.Gosched()
				}
				return nil
			})
		}()
	}
	wg.Wait()
	close(stop)
	checkers.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if wrong.Load() != 0 || checks.Load() == 0 {
		t.Errorf("%d of %d checks outside Do found a thread in the wrong namespace", wrong.Load(), checks.Load())
	}
	if stray := strayThreads(world); len(stray) != 0 {
		t.Errorf("after every Do returned, threads %v are outside the world's namespace", stray)
	}
}

// nsexecResult is how a run of the helper ended.
type nsexecResult struct {
	pid            int
	stdout, stderr string
	status         syscall.WaitStatus
}

// runNsexec runs the helper with args and returns its outcome; cmd may be prepared further by
// prep.
func runNsexec(t *testing.T, bin string, prep func(*exec.Cmd), args ...string) nsexecResult {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if prep != nil {
		prep(cmd)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return nsexecResult{
		pid:    cmd.Process.Pid,
		stdout: stdout.String(),
		stderr: stderr.String(),
		status: cmd.ProcessState.Sys().(syscall.WaitStatus),
	}
}

func TestIntegrationNsmgrExec(t *testing.T) {
	const name = "nsm-exec"
	bin := worldTool(t, "nsexec")
	h := createNamed(t, name)
	id, _ := nsmgr.IDOf(h)
	mustOutput(t, "ip", "-n", name, "link", "set", "lo", "up")
	mustOutput(t, "ip", "-n", name, "addr", "add", "203.0.113.77/32", "dev", "lo")
	mustOutput(t, "ip", "-n", name, "link", "add", "nsmva", "type", "veth", "peer", "name", "nsmvb")
	ownMnt, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	ok := func(t *testing.T, r nsexecResult) {
		t.Helper()
		if !r.status.Exited() || r.status.ExitStatus() != 0 {
			t.Fatalf("nsexec ended with %v, stderr:\n%s", r.status, r.stderr)
		}
	}

	t.Run("namespaces", func(t *testing.T) {
		// The mark directory is a shared mount here: had the child's mounts not been made a
		// slave, Mounts' tmpfs would propagate back to it.
		mark := t.TempDir()
		if err := unix.Mount(mark, mark, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Unmount(mark, unix.MNT_DETACH) })
		if err := unix.Mount("", mark, "", unix.MS_SHARED, ""); err != nil {
			t.Fatal(err)
		}
		script := `echo net=$(stat -L -c %d:%i /proc/self/ns/net)
echo mnt=$(readlink /proc/self/ns/mnt)
echo pid=$$
echo links=$(ls /sys/class/net)
echo addr=$(ip -o -4 addr show dev lo | awk '{print $4}')
cat "$1/mark"`
		r := runNsexec(t, bin, nil, "-ns", name, "-threads", "4", "-mark", mark, "--", "sh", "-c", script, "sh", mark)
		ok(t, r)
		got := keyValues(r.stdout)
		want := nsIDText(id)
		if got["net"] != want {
			t.Errorf("the program runs in namespace %s, want %s (%s)", got["net"], want, nsmgr.Path(name))
		}
		if got["mnt"] == "" || got["mnt"] == ownMnt {
			t.Errorf("the program's mount namespace is %q, want one of its own (not %q)", got["mnt"], ownMnt)
		}
		if got["pid"] != strconv.Itoa(r.pid) {
			t.Errorf("the program has PID %s, want nsexec's own %d (exec, not fork)", got["pid"], r.pid)
		}
		if got["links"] != "lo nsmva nsmvb" {
			t.Errorf("/sys/class/net in the program lists %q, want the namespace's lo nsmva nsmvb", got["links"])
		}
		if want := "127.0.0.1/8 203.0.113.77/32"; got["addr"] != want {
			t.Errorf("lo in the program has %q, want %q", got["addr"], want)
		}
		// The mark, written by Mounts on Exec's thread: after the switch, in the same
		// process, on a thread other than the main one (the helper keeps its main goroutine
		// there), so execve came from a secondary thread of a multi-threaded process.
		if got["marknet"] != want {
			t.Errorf("Mounts ran in namespace %q, want %s", got["marknet"], want)
		}
		if got["markpid"] != got["pid"] || got["marktid"] == "" || got["marktid"] == got["pid"] {
			t.Errorf("Mounts ran in process %q thread %q; want process %s, not its main thread", got["markpid"], got["marktid"], got["pid"])
		}
		if entries, _ := os.ReadDir(mark); len(entries) != 0 {
			t.Errorf("the program's mounts reached the caller: %s has %v", mark, entries)
		}
		if entries, _ := os.ReadDir("/sys/class/net"); len(entries) != 1 || entries[0].Name() != "lo" {
			t.Errorf("the world's /sys/class/net changed: %v", entries)
		}
	})

	t.Run("argv", func(t *testing.T) {
		r := runNsexec(t, bin, nil, "-ns", name, "--", "sh", "-c", `printf "%s|" "$@"`, "x", "a b", "--flag", "", "ü", "-ns")
		ok(t, r)
		if want := "a b|--flag||ü|-ns|"; r.stdout != want {
			t.Errorf("arguments arrived as %q, want %q", r.stdout, want)
		}
	})

	t.Run("environment", func(t *testing.T) {
		r := runNsexec(t, bin, func(c *exec.Cmd) { c.Env = append(os.Environ(), "NSM_PROBE=x y") },
			"-ns", name, "--", "sh", "-c", `printf %s "$NSM_PROBE"`)
		ok(t, r)
		if r.stdout != "x y" {
			t.Errorf("NSM_PROBE arrived as %q, want %q", r.stdout, "x y")
		}
	})

	t.Run("status", func(t *testing.T) {
		r := runNsexec(t, bin, nil, "-ns", name, "--", "sh", "-c", "exit 3")
		if !r.status.Exited() || r.status.ExitStatus() != 3 {
			t.Errorf("sh -c 'exit 3' ended with %v, want exit status 3", r.status)
		}
		r = runNsexec(t, bin, nil, "-ns", name, "--", "sh", "-c", `kill -TERM $$`)
		if !r.status.Signaled() || r.status.Signal() != syscall.SIGTERM {
			t.Errorf("a program that killed itself ended with %v, want SIGTERM", r.status)
		}
	})

	dir := t.TempDir()
	noExec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badInterp := filepath.Join(dir, "badinterp")
	if err := os.WriteFile(badInterp, []byte("#!/nonexistent/interp\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(dir, "locked")
	if err := os.Mkdir(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"not found", []string{"-ns", name, "--", "nsm-no-such-command"}, 127, `"nsm-no-such-command"`},
		{"not found raw", []string{"-ns", name, "-raw", "--", "/nonexistent/cmd"}, 127, "/nonexistent/cmd"},
		{"missing interpreter", []string{"-ns", name, "-raw", "--", badInterp}, 127, badInterp},
		{"not executable", []string{"-ns", name, "--", noExec}, 126, noExec},
		{"not executable raw", []string{"-ns", name, "-raw", "--", noExec}, 126, "permission denied"},
		{"directory raw", []string{"-ns", name, "-raw", "--", dir}, 126, dir},
		{"no namespace", []string{"-ns", "nsm-none", "--", "true"}, 125, `network namespace "nsm-none"`},
		{"invalid namespace", []string{"-ns", "../x", "--", "true"}, 125, "invalid name"},
		{"mounts fail", []string{"-ns", name, "-mountsfail", "--", "true"}, 125, "mounts refused"},
		{"bad dir", []string{"-ns", name, "-dir", "/nonexistent", "--", "true"}, 125, "/nonexistent"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runNsexec(t, bin, nil, tt.args...)
			if !r.status.Exited() || r.status.ExitStatus() != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("nsexec %q ended with %v, stderr %q; want exit status %d and stderr mentioning %q",
					tt.args, r.status, r.stderr, tt.code, tt.stderr)
			}
		})
	}

	t.Run("file descriptors", func(t *testing.T) {
		// fds 3 and 4 are inherited without close-on-exec, and -leakfd opens another.
		extra := func(c *exec.Cmd) {
			for range 2 {
				f, err := os.Open("/dev/null")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { f.Close() })
				c.ExtraFiles = append(c.ExtraFiles, f)
			}
		}
		// The shell lists its own descriptors from a child ls (the trailing command keeps the
		// shell from exec'ing ls in its place).
		script := `ls /proc/$$/fd; true`
		control := runNsexec(t, "/bin/sh", extra, "-c", script)
		if !strings.Contains(control.stdout, "3\n4\n") {
			t.Fatalf("the control run (no nsmgr) does not see the extra descriptors: %q", control.stdout)
		}
		r := runNsexec(t, bin, extra, "-ns", name, "-leakfd", "--", "sh", "-c", script)
		ok(t, r)
		if r.stdout != "0\n1\n2\n" {
			t.Errorf("the program has descriptors\n%s\nwant only 0, 1 and 2", r.stdout)
		}
	})

	t.Run("process state", func(t *testing.T) {
		script := `grep -E '^(NoNewPrivs|Sig(Blk|Ign)):' /proc/self/status`
		control := runNsexec(t, "/bin/sh", nil, "-c", script)
		plain := runNsexec(t, bin, nil, "-ns", name, "--", "sh", "-c", script)
		nnp := runNsexec(t, bin, nil, "-ns", name, "-nnp", "--", "sh", "-c", script)
		ok(t, plain)
		ok(t, nnp)
		// Signal mask and ignored signals as a plain fork+exec leaves them.
		if plain.stdout != control.stdout {
			t.Errorf("without -nnp the program has\n%s\nwant as a plain child:\n%s", plain.stdout, control.stdout)
		}
		if want := strings.Replace(control.stdout, "NoNewPrivs:\t0", "NoNewPrivs:\t1", 1); nnp.stdout != want || want == control.stdout {
			t.Errorf("with -nnp the program has\n%s\nwant\n%s", nnp.stdout, want)
		}
	})

	t.Run("credentials", func(t *testing.T) {
		for _, c := range [][]string{
			{"groupadd", "nsmgrp1"},
			{"groupadd", "nsmgrp2"},
			{"useradd", "-M", "-l", "-N", "-g", "nsmgrp1", "-G", "nsmgrp2", "-s", "/bin/sh", "nsmuser"},
		} {
			mustOutput(t, c[0], c[1:]...)
		}
		t.Cleanup(func() {
			exec.Command("userdel", "nsmuser").Run()
			exec.Command("groupdel", "nsmgrp2").Run()
			exec.Command("groupdel", "nsmgrp1").Run()
		})
		u, err := user.Lookup("nsmuser")
		if err != nil {
			t.Fatal(err)
		}
		gids, err := u.GroupIds()
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(gids, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
		if len(gids) != 2 {
			t.Fatalf("nsmuser has groups %v, want two", gids)
		}
		script := `pwd; grep -E '^(Uid|Gid|Groups|CapEff):' /proc/self/status`
		r := runNsexec(t, bin, nil, "-ns", name, "-uid", u.Uid, "-gid", u.Gid, "-groups", strings.Join(gids, ","),
			"-dir", "/usr", "--", "sh", "-c", script)
		ok(t, r)
		want := fmt.Sprintf("/usr\nUid:\t%[1]s\t%[1]s\t%[1]s\t%[1]s\nGid:\t%[2]s\t%[2]s\t%[2]s\t%[2]s\nGroups:\t%[3]s \nCapEff:\t0000000000000000\n",
			u.Uid, u.Gid, strings.Join(gids, " "))
		if r.stdout != want {
			t.Errorf("as nsmuser the program has\n%s\nwant\n%s", r.stdout, want)
		}
		// The directory is entered as the new user.
		r = runNsexec(t, bin, nil, "-ns", name, "-uid", u.Uid, "-gid", u.Gid, "-dir", locked, "--", "true")
		if !r.status.Exited() || r.status.ExitStatus() != 125 || !strings.Contains(r.stderr, "permission denied") {
			t.Errorf("entering root's 0700 %s as nsmuser ended with %v, stderr %q; want 125, permission denied", locked, r.status, r.stderr)
		}
	})
}

// TestIntegrationNsmgrExecFailureLeavesNoThread calls Exec in this process with Mounts failing,
// after the switch: Exec must return a 125 ExecError and leave no thread of this process in the
// namespace or in another mount namespace.
func TestIntegrationNsmgrExecFailureLeavesNoThread(t *testing.T) {
	const name = "nsm-execfail"
	h := createNamed(t, name)
	id, _ := nsmgr.IDOf(h)
	world := worldNetnsID(t)
	ownMnt, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	var inside nsmgr.ID
	var insideMnt string
	err = nsmgr.Exec(name, h, nsmgr.ExecOptions{
		Path: "/bin/true",
		Mounts: func() error {
			inside, _ = threadNetnsID()
			insideMnt, _ = os.Readlink("/proc/thread-self/ns/mnt")
			return errors.New("refused")
		},
	})
	var ee *nsmgr.ExecError
	if !errors.As(err, &ee) || ee.Code != 125 || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), name) {
		t.Fatalf("Exec with failing Mounts = %v, want a 125 ExecError naming %q and the cause", err, name)
	}
	if inside != id || insideMnt == ownMnt || insideMnt == "" {
		t.Errorf("Mounts ran in namespace %v, mount namespace %s; want %v and not %s", inside, insideMnt, id, ownMnt)
	}
	waitFor(t, 10*time.Second, "Exec's thread to exit", func() bool { return len(strayThreads(world)) == 0 })
	mnts, _ := filepath.Glob("/proc/self/task/*/ns/mnt")
	for _, m := range mnts {
		if l, err := os.Readlink(m); err == nil && l != ownMnt {
			t.Errorf("%s is %s after Exec failed, want %s", m, l, ownMnt)
		}
	}
}
