package server

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/internal/procstat"
)

// proc is a process as /proc/PID/stat shows it.
type proc struct {
	pid, ppid int
	zombie    bool
}

// procs lists every process this process can see.
func procs() []proc {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	var ps []proc
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		f := procstat.Fields(pid) // STATE PPID ...
		if len(f) < 2 {
			continue
		}
		ppid, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		ps = append(ps, proc{pid: pid, ppid: ppid, zombie: f[0] == "Z"})
	}
	return ps
}

// children returns the PIDs of root's children.
func children(root int) []int {
	var c []int
	for _, p := range procs() {
		if p.ppid == root {
			c = append(c, p.pid)
		}
	}
	return c
}

// descendants returns the PIDs of every process below root, zombies only if asked.
func descendants(root int, zombies bool) []int {
	kids := map[int][]proc{}
	for _, p := range procs() {
		kids[p.ppid] = append(kids[p.ppid], p)
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, k := range kids[pid] {
			if zombies || !k.zombie {
				out = append(out, k.pid)
			}
			queue = append(queue, k.pid)
		}
	}
	return out
}

// signalTree sends sig to every live process below root. A process below this session cannot
// leave it: the session is its subreaper, so an orphan comes back to it, and no unprivileged
// process can change its parent otherwise. Each is signalled through a pidfd opened once its
// parent was seen to be in the tree again, so that a PID reused meanwhile by a process elsewhere
// is never signalled.
func signalTree(root int, sig unix.Signal) {
	tree := map[int]bool{root: true}
	for _, pid := range descendants(root, true) {
		tree[pid] = true
	}
	for _, pid := range descendants(root, false) {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone
		}
		if p, ok := parentOf(pid); ok && tree[p] {
			unix.PidfdSendSignal(fd, sig, nil, 0)
		}
		unix.Close(fd)
	}
}

// parentOf returns the parent of pid, now.
func parentOf(pid int) (int, bool) {
	f := procstat.Fields(pid)
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}
