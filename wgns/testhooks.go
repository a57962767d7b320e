//go:build !wgnstest

package wgns

// TestHooks reports whether this binary honours the WGNS_TEST_* environment hooks. A production
// build does not: they exist only in binaries built with the wgnstest tag, for the root tests.
const TestHooks = false

// crashPoint marks a point of up's work; only a test build can be made to die there.
func crashPoint(string) {}
