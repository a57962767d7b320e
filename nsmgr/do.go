package nsmgr

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/internal/osthread"
)

// Do runs fn in the network namespace ns and returns fn's error, or the error of switching.
//
// fn runs on a fresh goroutine locked to its OS thread (never the main thread), which Do moves
// into ns after remembering the thread's own namespace (/proc/thread-self/ns/net;
// /proc/self/ns/net would be the main thread's). After fn the thread is moved back and unlocked;
// if moving back fails, the thread is never unlocked and ends with the goroutine, so no other
// goroutine can run in ns by accident. The calling goroutine's thread is never switched.
//
// Only fn's own goroutine is in ns: goroutines that fn starts run on other threads, in whatever
// namespace those are in (the process's own), and fn must not unlock its thread
// (runtime.UnlockOSThread). Prefer handles bound to a namespace (netlink.NewHandleAt,
// nftables.WithNetNSFd) to Do where they exist. A panic in fn is re-raised in the caller, and
// runtime.Goexit in fn ends the caller's goroutine too; in both cases the thread is discarded.
func Do(ns netns.NsHandle, fn func() error) error {
	type outcome struct {
		err      error
		finished bool // doLocked returned (fn did not panic or call Goexit)
		panicVal any
	}
	var o outcome
	osthread.Disposable(func() {
		defer func() {
			if !o.finished {
				o.panicVal = recover()
			}
		}()
		o.err = doLocked(ns, fn)
		o.finished = true
	})
	if !o.finished {
		if o.panicVal != nil {
			panic(o.panicVal)
		}
		runtime.Goexit()
	}
	return o.err
}

// doLocked switches the calling thread, which must be locked, into ns, runs fn, and switches
// back. It unlocks the thread only if the thread is back in its own namespace.
func doLocked(ns netns.NsHandle, fn func() error) error {
	home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		// Still home: the thread may go back to the runtime.
		runtime.UnlockOSThread()
		return fmt.Errorf("remembering the thread's network namespace: %w", err)
	}
	defer unix.Close(home)
	if err := unix.Setns(int(ns), unix.CLONE_NEWNET); err != nil {
		// setns changes nothing when it fails.
		runtime.UnlockOSThread()
		return fmt.Errorf("switching a thread into network namespace %v: %w", ns, err)
	}
	ferr := fn()
	if err := unix.Setns(home, unix.CLONE_NEWNET); err != nil {
		// The thread stays locked and exits with its goroutine.
		return fmt.Errorf("switching a thread back from network namespace %v: %w", ns, err)
	}
	runtime.UnlockOSThread()
	return ferr
}
