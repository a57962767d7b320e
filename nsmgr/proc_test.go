package nsmgr

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TestProcessesFindsSelf needs no privileges: the test's own network namespace holds this
// process, whatever else it holds.
func TestProcessesFindsSelf(t *testing.T) {
	fd, err := unix.Open("/proc/self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := netns.NsHandle(fd)
	defer h.Close()
	id, err := IDOf(h)
	if err != nil {
		t.Fatal(err)
	}
	procs, err := Processes(id)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range procs {
		if i > 0 && procs[i-1].PID >= p.PID {
			t.Errorf("Processes not sorted by PID: %v", procs)
		}
		if p.PID == os.Getpid() {
			if !strings.HasPrefix(p.Cmdline, os.Args[0]) || p.Comm == "" || strings.HasSuffix(p.Comm, "\n") {
				t.Errorf("own entry = %+v, want Cmdline starting %q and a trimmed Comm", p, os.Args[0])
			}
			return
		}
	}
	t.Errorf("Processes(%v) = %v, does not include this process %d", id, procs, os.Getpid())
}

func TestProcessesOfUnknownNamespace(t *testing.T) {
	procs, err := Processes(ID{Dev: 1, Ino: 1})
	if err != nil || len(procs) != 0 {
		t.Errorf("Processes of no namespace = %v, %v; want none", procs, err)
	}
}

// A handle signals the process it was opened on, waits for its exit, and refuses a process whose
// start time says it is not the one expected (a reused PID).
func TestHandleSignalsAndWaits(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	start := StartTime(cmd.Process.Pid)
	if start == 0 {
		t.Fatal("no start time for a running process")
	}
	if _, err := OpenProcess(cmd.Process.Pid, start+1); !errors.Is(err, unix.ESRCH) {
		t.Errorf("opening with another start time: %v, want ESRCH", err)
	}
	h, err := OpenProcess(cmd.Process.Pid, start)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if left := WaitExit([]*Handle{h}, 10*time.Millisecond); len(left) != 1 {
		t.Fatalf("a sleeping process counts as exited")
	}
	if err := h.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if left := WaitExit([]*Handle{h}, 10*time.Second); len(left) != 0 {
		t.Fatalf("the process did not exit after SIGTERM")
	}
	<-done
	if err := h.Signal(unix.SIGTERM); err != nil {
		t.Errorf("signalling an exited process: %v, want nothing", err)
	}
	if StartTime(cmd.Process.Pid) != 0 {
		t.Errorf("a reaped process has a start time")
	}
}
