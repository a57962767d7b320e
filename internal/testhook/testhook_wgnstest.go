//go:build wgnstest

// Package testhook holds the pause hook of a test build: a test build (tag wgnstest, which
// the root tests run) stops at a named point of its work until the test lets it go on, so that
// a test can make a race happen at the point it names. A production build has none.
package testhook

import (
	"os"
	"time"
)

// Files of the pause hook: the process creates PauseFile when it reaches the point named by
// WGNS_TEST_PAUSE_AT, and goes on once ReleaseFile exists.
const (
	PauseFile   = "/run/wgns-test-paused"
	ReleaseFile = "/run/wgns-test-release"
)

// Pause waits at point, when WGNS_TEST_PAUSE_AT names it, until ReleaseFile exists.
func Pause(point string) {
	if v := os.Getenv("WGNS_TEST_PAUSE_AT"); v == "" || v != point {
		return
	}
	os.WriteFile(PauseFile, []byte(point), 0o644)
	for {
		if _, err := os.Stat(ReleaseFile); err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
