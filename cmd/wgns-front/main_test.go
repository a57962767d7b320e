package main

import "testing"

func TestCore(t *testing.T) {
	for _, tc := range []struct{ self, want string }{
		{"/usr/local/bin/wgns", "/usr/local/libexec/wgns/wgns"},
		{"/usr/bin/wgns", "/usr/libexec/wgns/wgns"},
		{"/work/wgns/bin/wgns", "/work/wgns/libexec/wgns/wgns"},
		{"/work/wgns/bin/wgns-test", "/work/wgns/libexec/wgns/wgns-test"},
	} {
		if got := core(tc.self); got != tc.want {
			t.Errorf("core(%q) = %q, want %q", tc.self, got, tc.want)
		}
	}
}
