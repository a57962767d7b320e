//go:build wgnstest

package wgns

import (
	"os"
	"syscall"

	"github.com/wgns/wgns/internal/testhook"
)

// TestHooks reports whether this binary honours the WGNS_TEST_* environment hooks: this one, built
// with the wgnstest tag for the root tests, does.
const TestHooks = true

// crashPoint ends the process with SIGKILL when WGNS_TEST_CRASH_AT names point (the crash tests
// kill up at every step), and pauses it there when WGNS_TEST_PAUSE_AT does (the tests of races).
func crashPoint(point string) {
	if v := os.Getenv("WGNS_TEST_CRASH_AT"); v != "" && v == point {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	testhook.Pause(point)
}
