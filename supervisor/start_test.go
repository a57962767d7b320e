package supervisor

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// standInEnv makes this test binary a stand-in for `wgns up --foreground`: it checks the
// arguments Start gives it, then behaves as the variable says.
const standInEnv = "WGNS_SUPERVISOR_STAND_IN"

func TestMain(m *testing.M) {
	if how := os.Getenv(standInEnv); how != "" {
		os.Exit(standIn(how))
	}
	os.Exit(m.Run())
}

// standIn plays a supervisor: "ready", "warn-ready", "fail", "die" (a message on stderr, then
// exit without a word on the pipe), "hang", or "fds" (report its open descriptors as a warning).
func standIn(how string) int {
	args := strings.Join(os.Args[1:], " ")
	if how == "attach" {
		return standInAttach(args)
	}
	if !strings.HasPrefix(args, "up --foreground --ready-fd 3 --name work") || !strings.HasSuffix(args, " /etc/wgns/work.conf") {
		fmt.Fprintln(os.Stderr, "bad arguments:", args)
		return 2
	}
	// What it inherited, before it opens anything itself (the runtime's poller comes later; the
	// directory being read is closed before the next entry is checked).
	var fds []string
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, e := range ents {
			// The Go runtime's own: the cgroup files it reads GOMAXPROCS from.
			if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && !strings.HasPrefix(target, "/sys/fs/cgroup/") {
				fds = append(fds, e.Name())
			}
		}
	}
	r := newReporter(3)
	switch how {
	case "ready":
		r.ready()
	case "warn-ready":
		r.warn("/etc/wgns/work.conf:4: Table means nothing inside a namespace; ignored")
		r.ready()
	case "fail":
		fmt.Fprintln(os.Stderr, "wgns: creating interface \"work\": file exists")
		r.fail(fmt.Errorf("creating interface %q: file exists", "work"))
		return 1
	case "die":
		fmt.Fprintln(os.Stderr, "wgns: the stand-in's last words")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	case "hang":
		select {}
	case "fds":
		r.warn(strings.Join(fds, ","))
		r.ready()
	}
	return 0
}

func startStandIn(t *testing.T, how string, timeout time.Duration) ([]string, error, string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := starter{binary: self, runDir: dir, env: []string{standInEnv + "=" + how}}
	warnings, err := s.start(StartOptions{Name: "work", ConfigPath: "/etc/wgns/work.conf", Timeout: timeout})
	return warnings, err, filepath.Join(dir, "work.log")
}

func TestStartReady(t *testing.T) {
	warnings, err, _ := startStandIn(t, "warn-ready", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/etc/wgns/work.conf:4: Table means nothing inside a namespace; ignored"}; !slices.Equal(warnings, want) {
		t.Errorf("warnings %q, want %q", warnings, want)
	}
}

// The supervisor's own reason is the error, said once (not also read back from its log).
func TestStartFailureIsItsOwnReason(t *testing.T) {
	_, err, log := startStandIn(t, "fail", time.Minute)
	if err == nil || err.Error() != `creating interface "work": file exists` {
		t.Errorf("got %v", err)
	}
	if _, serr := os.Stat(log); serr == nil {
		t.Errorf("the log of a supervisor that undid everything was kept")
	}
}

// A supervisor that dies without a word (killed) is explained by what it wrote to its log.
func TestStartDeathIsExplainedByTheLog(t *testing.T) {
	_, err, _ := startStandIn(t, "die", time.Minute)
	if err == nil || err.Error() != "the stand-in's last words" {
		t.Errorf("got %v", err)
	}
}

func TestStartTimeout(t *testing.T) {
	_, err, _ := startStandIn(t, "hang", 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "the supervisor did not become ready in 200ms") {
		t.Errorf("got %v", err)
	}
}

// The supervisor gets descriptors 0-2 and the readiness pipe, nothing else of its starter: a
// lock or socket the caller of `wgns up` holds is not held for the tunnel's life.
func TestStartPassesOnlyItsOwnDescriptors(t *testing.T) {
	// A descriptor this process inherited without close-on-exec, as a script's `flock 9` is.
	f, err := os.Create(filepath.Join(t.TempDir(), "lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := unix.Dup(int(f.Fd())) // dup(2) clears close-on-exec
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if flags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC != 0 {
		t.Fatal("the test's descriptor is close-on-exec already")
	}
	warnings, err, _ := startStandIn(t, "fds", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || warnings[0] != "0,1,2,3" {
		t.Errorf("the supervisor has descriptors %q, want 0,1,2,3", warnings)
	}
}

// standInAttach plays the holder of a CNI attachment: it reads the attachment's description from
// fd 4 and says it back as a warning, after checking that nothing of it is in its argv or
// environment.
func standInAttach(args string) int {
	if args != "cni-holder --ready-fd 3 --spec-fd 4" {
		fmt.Fprintln(os.Stderr, "bad arguments:", args)
		return 2
	}
	spec, err := io.ReadAll(os.NewFile(4, "spec"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "reading fd 4:", err)
		return 2
	}
	for _, f := range []string{"/proc/self/cmdline", "/proc/self/environ"} {
		if b, _ := os.ReadFile(f); strings.Contains(string(b), "PrivateKey") {
			fmt.Fprintln(os.Stderr, "the description is in", f)
			return 2
		}
	}
	r := newReporter(3)
	r.warn(string(spec))
	r.ready()
	return 0
}

// The holder of an attachment gets its description (an inline config, keys and all) on a pipe of
// its own, not in argv or the environment, and logs where it is told.
func TestStartAttachHandsItsDescriptionOverAPipe(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	spec := `{"config_text": "[Interface]\nPrivateKey = (a key)\n"}`
	logPath := filepath.Join(dir, "cni", "0123.log")
	s := starter{binary: self, runDir: dir, env: []string{standInEnv + "=attach"}}
	warnings, err := s.start(StartOptions{Name: "0123", Attach: []byte(spec), LogPath: logPath, Timeout: 10 * time.Second})
	if err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("%v (log: %s)", err, b)
	}
	if len(warnings) != 1 || warnings[0] != spec {
		t.Errorf("the holder read %q, want %q", warnings, spec)
	}
	if _, err := os.Stat(logPath); err != nil {
		t.Errorf("the holder's log: %v", err)
	}
}
