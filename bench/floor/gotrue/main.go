// Command gotrue is the floor of any Go program on the exec path: it starts the Go runtime and
// replaces itself with the program its arguments name (gotrue /bin/true). The bench measures it
// next to `wgns exec` to show what the Go runtime's start-up alone costs.
package main

import (
	"os"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		os.Exit(125)
	}
	err := syscall.Exec(os.Args[1], os.Args[1:], os.Environ())
	os.Stderr.WriteString("gotrue: " + err.Error() + "\n")
	os.Exit(126)
}
