//go:build !wgnstest

// Package testhook holds the pause hook of a test build: a test build (tag wgnstest, which
// the root tests run) stops at a named point of its work until the test lets it go on, so that
// a test can make a race happen at the point it names. A production build has none.
package testhook

// Pause does nothing in a production build.
func Pause(string) {}
