package nsmgr

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// onDisposableThread runs work on a new goroutine locked to an OS thread that is not the
// process's main thread, and waits for it to finish. The thread is locked once when work starts:
// work calls runtime.UnlockOSThread to give back a thread it left as it found it, and otherwise
// leaves it locked so that the runtime ends the thread with work's goroutine.
//
// The main thread is avoided because the runtime can never end it: it would park it forever
// instead, still in whatever namespace work left it, holding that namespace alive and making it
// the one /proc/PID/ns/net shows for the whole process.
func onDisposableThread(work func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			work()
			return
		}
		// On the main thread. Keeping it locked to this goroutine means no other goroutine
		// can be scheduled on it, so work's goroutine gets another thread.
		inner := make(chan struct{})
		go func() {
			defer close(inner)
			runtime.LockOSThread()
			work()
		}()
		<-inner
		runtime.UnlockOSThread()
	}()
	<-done
}

// AsUser runs fn on a thread of its own that has the credential c (supplementary groups, group,
// user: real, effective and saved), and waits for it; the thread ends afterwards, and the
// process's other threads keep their credentials. It is for work that must get no more access
// than the user has, such as opening anew a file the user handed over: the kernel checks the
// user's rights, not root's. fn must do its work on the calling goroutine.
func AsUser(c *Credential, fn func() error) error {
	var err error
	onDisposableThread(func() {
		// Never unlocked: the thread ends with this goroutine, with the user's credentials.
		if err = switchThreadCred(c); err != nil {
			err = fmt.Errorf("switching a thread to user %d: %w", c.UID, err)
			return
		}
		err = fn()
	})
	return err
}
