package main

import (
	"fmt"
	"runtime"

	"github.com/wgns/wgns/wgns"
)

// VersionCmd is `wgns version`.
type VersionCmd struct{}

// Run prints the version and the WireGuard implementation available.
func (VersionCmd) Run() error {
	mode := "embedded userspace WireGuard (the kernel has no WireGuard)"
	if wgns.KernelWireGuard() {
		mode = "kernel WireGuard (--userspace selects the embedded one)"
	}
	fmt.Printf("wgns %s (%s, %s/%s)\nWireGuard: %s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH, mode)
	return nil
}
