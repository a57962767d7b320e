// Package osthread runs work on an OS thread of its own, for work that changes what belongs to
// one thread (its namespaces, its credentials).
package osthread

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// Disposable runs work on a new goroutine locked to an OS thread that is not the process's main
// thread, and waits for it to finish. The thread is locked once when work starts: work calls
// runtime.UnlockOSThread to give back a thread it left as it found it, and otherwise leaves it
// locked so that the runtime ends the thread with work's goroutine.
//
// The main thread is avoided because the runtime can never end it: it would park it forever
// instead, still in whatever namespace work left it, holding that namespace alive and making it
// the one /proc/PID/ns/net shows for the whole process.
func Disposable(work func()) {
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
