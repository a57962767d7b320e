//go:build !wgnstest

package supervisor

// testHookEnv is the part of this process's environment that a test build passes on to the
// supervisors it starts: nothing, in a production build.
func testHookEnv() []string { return nil }
