package nsmgr

import (
	"os"
	"strings"
	"testing"

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
