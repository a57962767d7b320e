package wgns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/nsmgr"
)

// ErrBusy is returned by Down when processes still run inside the namespace.
var ErrBusy = errors.New("processes still run inside")

// DownOptions says how to tear a tunnel down.
type DownOptions struct {
	// Force ends the processes inside (SIGTERM, then SIGKILL after Grace) instead of refusing.
	Force bool
	Grace time.Duration
}

// Down tears down everything Up made for name. It reports wasUp=false, and no error, when name
// is not up. With processes still inside, it refuses (ErrBusy, naming them) unless opts.Force.
func Down(name string, opts DownOptions) (wasUp bool, err error) {
	if err := nsmgr.ValidateName(name); err != nil {
		return false, err
	}
	if opts.Grace == 0 {
		opts.Grace = 5 * time.Second
	}
	unlock, err := lock(name)
	if err != nil {
		return false, err
	}
	defer func() { unlock() }()
	st, err := ReadState(name)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Lstat(nsmgr.Path(name)); serr == nil {
			return false, fmt.Errorf("%q is not a wgns tunnel (%s was not made by wgns); leaving it alone", name, nsmgr.Path(name))
		}
		return false, removeStaleUAPI(name)
	}
	if err != nil {
		return false, err
	}
	if procs := processesInside(st); len(procs) > 0 {
		if !opts.Force {
			return true, fmt.Errorf("taking %q down: %w: %s (stop them, or use --force)", name, ErrBusy, describe(procs))
		}
		if err := endProcesses(st, procs, opts.Grace); err != nil {
			return true, fmt.Errorf("taking %q down: %w", name, err)
		}
	}
	if st.holderAlive() && st.PID != os.Getpid() {
		// The holder tears down itself on SIGTERM, under this same lock.
		if err := syscall.Kill(st.PID, syscall.SIGTERM); err != nil && err != syscall.ESRCH {
			return true, fmt.Errorf("stopping the process %d holding %q: %w", st.PID, name, err)
		}
		unlock()
		waitGone(st.PID, st.Start, 10*time.Second)
		if unlock, err = lock(name); err != nil {
			unlock = func() {}
			return true, err
		}
		if st, err = ReadState(name); errors.Is(err, fs.ErrNotExist) {
			os.Remove(LogPath(name))
			return true, nil
		} else if err != nil {
			return true, err
		}
		if st.holderAlive() {
			return true, fmt.Errorf("taking %q down: the process %d holding it did not stop", name, st.PID)
		}
	}
	if err := teardown(hostSystem{}, name, st, nil); err != nil {
		return true, err
	}
	os.Remove(LogPath(name))
	return true, nil
}

// processesInside lists the processes in the tunnel's namespace, if it is still the one wgns made.
func processesInside(st *State) []nsmgr.Process {
	id, err := nsmgr.IDByName(st.Name)
	if err != nil || id != st.Netns {
		return nil
	}
	procs, _ := nsmgr.ProcessLeaders(id)
	return procs
}

func describe(procs []nsmgr.Process) string {
	var b strings.Builder
	for i, p := range procs {
		if i > 0 {
			b.WriteString(", ")
		}
		if i == 8 {
			fmt.Fprintf(&b, "and %d more", len(procs)-i)
			break
		}
		fmt.Fprintf(&b, "%d (%s)", p.PID, p.Comm)
	}
	return b.String()
}

// endProcesses sends SIGTERM to every process inside, waits up to grace, then SIGKILLs the rest.
func endProcesses(st *State, procs []nsmgr.Process, grace time.Duration) error {
	for _, p := range procs {
		syscall.Kill(p.PID, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if len(processesInside(st)) == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range processesInside(st) {
		syscall.Kill(p.PID, syscall.SIGKILL)
	}
	deadline = time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if left := processesInside(st); len(left) == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("processes did not end: %s", describe(processesInside(st)))
}

// waitGone waits until pid (with the given start time) has exited, using a pidfd when it can.
func waitGone(pid int, start uint64, limit time.Duration) {
	if fd, err := unix.PidfdOpen(pid, 0); err == nil {
		defer unix.Close(fd)
		if procStart(pid) != start {
			return
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, int(limit/time.Millisecond))
			if err != unix.EINTR {
				return
			}
		}
	}
	deadline := time.Now().Add(limit)
	for procStart(pid) == start && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}
