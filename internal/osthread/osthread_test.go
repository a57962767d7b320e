package osthread

import (
	"os"
	"runtime"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

var mainThreadTID int

// TestMain calls Disposable from the main goroutine, which starts out on the main thread: work
// must still get a thread of its own.
func TestMain(m *testing.M) {
	runtime.LockOSThread()
	Disposable(func() { mainThreadTID = unix.Gettid() })
	runtime.UnlockOSThread()
	os.Exit(m.Run())
}

func TestDisposableAvoidsTheMainThread(t *testing.T) {
	if mainThreadTID == 0 || mainThreadTID == unix.Getpid() {
		t.Errorf("work called from the main thread ran on thread %d, the main thread is %d", mainThreadTID, unix.Getpid())
	}
	var tid int
	Disposable(func() { tid = unix.Gettid() })
	if tid == unix.Getpid() {
		t.Errorf("work ran on the main thread")
	}
}

// A thread left locked ends with work's goroutine: its task directory goes away.
func TestDisposableEndsALockedThread(t *testing.T) {
	var tid int
	Disposable(func() { tid = unix.Gettid() })
	task := "/proc/self/task/" + strconv.Itoa(tid)
	for i := 0; i < 500; i++ {
		if _, err := os.Stat(task); os.IsNotExist(err) {
			return
		}
		runtime.Gosched()
		unix.Nanosleep(&unix.Timespec{Nsec: 10e6}, nil)
	}
	t.Errorf("thread %d still exists 5 s after work returned without unlocking it", tid)
}
