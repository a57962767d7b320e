//go:build wgnstest

package supervisor

import (
	"os"
	"strings"
	"time"

	"github.com/wgns/wgns/wgns"
)

// testHookEnv is the part of this process's environment that a test build passes on to the
// supervisors it starts: the WGNS_TEST_* hooks.
func testHookEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "WGNS_TEST_") {
			env = append(env, kv)
		}
	}
	return env
}

// WGNS_TEST_RERESOLVE_EVERY=DURATION shortens both the supervisor's endpoint check and the
// handshake age that makes it resolve again (the re-resolve test).
func init() {
	if d, err := time.ParseDuration(os.Getenv("WGNS_TEST_RERESOLVE_EVERY")); err == nil && d > 0 {
		reresolveEvery, wgns.ReresolveAfter = d, d
	}
}

// WGNS_TEST_NATPMP_LIFETIME=DURATION shortens the NAT-PMP lease the supervisor asks for (the
// port forwarding tests: renewals every second instead of every 30).
func init() {
	if d, err := time.ParseDuration(os.Getenv("WGNS_TEST_NATPMP_LIFETIME")); err == nil && d >= time.Second {
		natpmpLifetime = d
	}
}
