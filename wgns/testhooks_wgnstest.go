//go:build wgnstest

package wgns

import (
	"os"
	"syscall"
	"time"
)

// TestHooks reports whether this binary honours the WGNS_TEST_* environment hooks: this one, built
// with the wgnstest tag for the root tests, does.
const TestHooks = true

// Files of the pause hook: the process creates PauseFile when it reaches the point named by
// WGNS_TEST_PAUSE_AT, and goes on once ReleaseFile exists.
const (
	PauseFile   = "/run/wgns-test-paused"
	ReleaseFile = "/run/wgns-test-release"
)

// crashPoint ends the process with SIGKILL when WGNS_TEST_CRASH_AT names point (the crash tests
// kill up at every step), and pauses it there when WGNS_TEST_PAUSE_AT does (the tests of races).
func crashPoint(point string) {
	if v := os.Getenv("WGNS_TEST_CRASH_AT"); v != "" && v == point {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	if v := os.Getenv("WGNS_TEST_PAUSE_AT"); v != "" && v == point {
		os.WriteFile(PauseFile, []byte(point), 0o644)
		for {
			if _, err := os.Stat(ReleaseFile); err == nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
