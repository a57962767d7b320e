package nsmgr

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
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
