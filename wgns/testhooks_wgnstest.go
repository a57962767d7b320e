//go:build wgnstest

package wgns

import (
	"os"
	"syscall"
)

// TestHooks reports whether this binary honours the WGNS_TEST_* environment hooks: this one, built
// with the wgnstest tag for the root tests, does.
const TestHooks = true

// crashPoint ends the process with SIGKILL when WGNS_TEST_CRASH_AT names point: the crash tests
// use it to kill up at every step.
func crashPoint(point string) {
	if v := os.Getenv("WGNS_TEST_CRASH_AT"); v != "" && v == point {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
