package main

import "testing"

func TestCore(t *testing.T) {
	for _, tc := range []struct{ self, want string }{
		{"/usr/local/bin/wgns", "/usr/local/lib/wgns/wgns"},
		{"/usr/bin/wgns", "/usr/lib/wgns/wgns"},
		{"/work/wgns/bin/wgns", "/work/wgns/lib/wgns/wgns"},
		{"/work/wgns/bin/wgns-test", "/work/wgns/lib/wgns/wgns-test"},
	} {
		if got := core(tc.self); got != tc.want {
			t.Errorf("core(%q) = %q, want %q", tc.self, got, tc.want)
		}
	}
}
