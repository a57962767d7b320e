package wgns

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
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

// holderStopWait bounds how long Down waits for a tunnel's holder to tear down after SIGTERM.
const holderStopWait = 10 * time.Second

// Down tears down everything Up made for name. It reports wasUp=false, and no error, when name
// is not up. With processes still inside, it refuses (ErrBusy, naming them) unless opts.Force.
// Processes are signalled through pidfds held from the moment they were found inside, so a
// process that exits meanwhile and whose PID is reused is never hit.
func Down(name string, opts DownOptions) (wasUp bool, err error) {
	return down(hostSystem{}, name, opts)
}

func down(sys system, name string, opts DownOptions) (wasUp bool, err error) {
	if err := nsmgr.ValidateName(name); err != nil {
		return false, err
	}
	if opts.Grace == 0 {
		opts.Grace = 5 * time.Second
	}
	unlock, err := sys.lock(name)
	if err != nil {
		return false, err
	}
	defer func() { unlock() }()
	st, err := sys.readState(name)
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := sys.nsID(name); !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("%s was not made by wgns; leaving it alone", nsmgr.Path(name))
		}
		return false, sys.removeStaleUAPI(name)
	}
	if err != nil {
		return false, err
	}
	if id, err := sys.nsID(name); err == nil && id == st.Netns {
		procs, err := sys.inside(id)
		if err != nil {
			return true, err
		}
		err = endInside(sys, id, procs, opts)
		closeAll(procs)
		if err != nil {
			return true, err
		}
	}
	pid, _ := sys.self()
	if st.PID != pid && sys.holderAlive(st) {
		// The holder tears down itself on SIGTERM, under this same lock.
		h, err := sys.holder(st)
		if err != nil {
			return true, err
		}
		if h != nil {
			err := h.signal(unix.SIGTERM)
			unlock()
			unlock = func() {}
			if err == nil {
				sys.waitExit([]proc{h}, holderStopWait)
			}
			h.close()
			if err != nil {
				return true, fmt.Errorf("stopping the holder of tunnel %q: %w", name, err)
			}
			if unlock, err = sys.lock(name); err != nil {
				unlock = func() {}
				return true, err
			}
			if st, err = sys.readState(name); errors.Is(err, fs.ErrNotExist) {
				sys.removeLog(name)
				return true, nil
			} else if err != nil {
				return true, err
			}
			if sys.holderAlive(st) {
				return true, fmt.Errorf("its holder, process %d, did not stop in %s", st.PID, holderStopWait)
			}
		}
	}
	if err := teardown(sys, name, st, nil); err != nil {
		return true, err
	}
	sys.removeLog(name)
	return true, nil
}

// endInside deals with the processes found inside: refused (ErrBusy, naming them) unless
// opts.Force, which sends them SIGTERM, waits up to opts.Grace, then SIGKILL to the rest.
func endInside(sys system, id nsmgr.ID, procs []proc, opts DownOptions) error {
	if len(procs) == 0 {
		return nil
	}
	if !opts.Force {
		return fmt.Errorf("%w: %s (stop them, or use --force)", ErrBusy, describe(procs))
	}
	sys.checkpoint("down-signal")
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGKILL} {
		for _, p := range procs {
			if err := p.signal(sig); err != nil {
				return err
			}
		}
		if procs = sys.waitExit(procs, opts.Grace); len(procs) == 0 {
			return nil
		}
	}
	return fmt.Errorf("processes did not end: %s", describe(procs))
}

func closeAll(procs []proc) {
	for _, p := range procs {
		p.close()
	}
}

func describe(procs []proc) string {
	var b strings.Builder
	for i, p := range procs {
		if i > 0 {
			b.WriteString(", ")
		}
		if i == 8 {
			fmt.Fprintf(&b, "and %d more", len(procs)-i)
			break
		}
		info := p.info()
		fmt.Fprintf(&b, "%d (%s)", info.PID, info.Comm)
	}
	return b.String()
}
