package nsmgr

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/internal/procstat"
)

// Process is a process inside a namespace.
type Process struct {
	PID     int
	Comm    string // /proc/PID/comm
	Cmdline string // /proc/PID/cmdline, arguments joined by spaces
}

// Processes returns the processes in the namespace id, sorted by PID: those whose
// /proc/PID/ns/net is that namespace, and those with a thread (/proc/PID/task/TID/ns/net) in it,
// since a thread may have switched on its own. Processes that vanish while being looked at, or
// that the caller may not inspect, are left out.
func Processes(id ID) ([]Process, error) { return processes(id, true) }

// ProcessLeaders is Processes without the look at every thread: only processes whose
// /proc/PID/ns/net (their main thread's) is the namespace. It costs one stat per process instead
// of one per thread, which is what matters with many tunnels up (each embedded WireGuard holder
// has about ten threads). It misses only a thread that switched alone while its process stays
// outside, as tools that configure namespaces do for a moment.
func ProcessLeaders(id ID) ([]Process, error) { return processes(id, false) }

func processes(id ID, threads bool) ([]Process, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var pids []int
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil || pid <= 0 {
			continue
		}
		dir := "/proc/" + n
		if inNS(dir, id) || (threads && anyTaskInNS(dir, n, id)) {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	procs := make([]Process, 0, len(pids))
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid)
		comm, err := os.ReadFile(dir + "/comm")
		if err != nil {
			continue // gone
		}
		cmdline, err := os.ReadFile(dir + "/cmdline")
		if err != nil {
			continue
		}
		procs = append(procs, Process{
			PID:     pid,
			Comm:    strings.TrimSuffix(string(comm), "\n"),
			Cmdline: strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " "),
		})
	}
	return procs, nil
}

// inNS reports whether dir/ns/net (dir being /proc/PID or /proc/PID/task/TID) is namespace id.
// Errors (the process or thread is gone, or may not be inspected) count as no.
func inNS(dir string, id ID) bool {
	var st unix.Stat_t
	if err := unix.Stat(dir+"/ns/net", &st); err != nil {
		return false
	}
	return st.Dev == id.Dev && st.Ino == id.Ino
}

// anyTaskInNS reports whether a thread of the process with directory dir, other than its leader
// (whose thread ID is pid), is in namespace id.
func anyTaskInNS(dir, pid string, id ID) bool {
	d, err := os.Open(dir + "/task")
	if err != nil {
		return false
	}
	tids, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return false
	}
	for _, t := range tids {
		if t != pid && inNS(dir+"/task/"+t, id) {
			return true
		}
	}
	return false
}

// Handle is a process held by a pidfd: a signal sent through it reaches that process and never
// another one that got its PID after it exited.
type Handle struct {
	Process
	fd int
}

// OpenProcessLeaders is ProcessLeaders with every process held by a pidfd. Each pidfd is opened
// after the scan and the process is checked again to be in namespace id afterwards: a PID that
// was reused between the scan and the open is left out (the new process is not the one found).
// The caller must Close every handle.
func OpenProcessLeaders(id ID) ([]*Handle, error) {
	procs, err := ProcessLeaders(id)
	if err != nil {
		return nil, err
	}
	hs := make([]*Handle, 0, len(procs))
	for _, p := range procs {
		fd, err := unix.PidfdOpen(p.PID, 0)
		if err != nil {
			continue // gone already
		}
		if !inNS("/proc/"+strconv.Itoa(p.PID), id) {
			unix.Close(fd) // the PID now belongs to a process elsewhere
			continue
		}
		hs = append(hs, &Handle{Process: p, fd: fd})
	}
	return hs, nil
}

// OpenProcess holds the process pid if its start time (field 22 of /proc/PID/stat, in clock
// ticks) is start; it returns an error wrapping unix.ESRCH when that process is gone. The caller
// must Close the handle.
func OpenProcess(pid int, start uint64) (*Handle, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("holding process %d: %w", pid, err)
	}
	if StartTime(pid) != start {
		unix.Close(fd)
		return nil, fmt.Errorf("holding process %d: %w", pid, unix.ESRCH)
	}
	return &Handle{Process: Process{PID: pid}, fd: fd}, nil
}

// Signal sends sig to the process; a process that has exited gets nothing and is no error.
func (h *Handle) Signal(sig unix.Signal) error {
	err := unix.PidfdSendSignal(h.fd, sig, nil, 0)
	if err == unix.ESRCH {
		return nil
	}
	if err != nil {
		return fmt.Errorf("signalling process %d (%s): %w", h.PID, h.Comm, err)
	}
	return nil
}

// Close releases the pidfd.
func (h *Handle) Close() { unix.Close(h.fd) }

// WaitExit waits until every process of hs has exited, or limit has passed, and returns those
// still running.
func WaitExit(hs []*Handle, limit time.Duration) []*Handle {
	deadline := time.Now().Add(limit)
	left := hs
	for len(left) > 0 {
		fds := make([]unix.PollFd, len(left))
		for i, h := range left {
			fds[i] = unix.PollFd{Fd: int32(h.fd), Events: unix.POLLIN}
		}
		wait := time.Until(deadline)
		if wait < 0 {
			wait = 0
		}
		n, err := unix.Poll(fds, int(wait/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return left
		}
		var still []*Handle
		for i, h := range left {
			if fds[i].Revents == 0 {
				still = append(still, h)
			}
		}
		left = still
	}
	return nil
}

// StartTime returns a process's start time (field 22 of /proc/PID/stat, in clock ticks since
// boot), which tells it from a later process with the same PID; 0 if it is gone or a zombie.
func StartTime(pid int) uint64 {
	f := procstat.Fields(pid)
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}
