// Command wgns confines programs and systemd services to a WireGuard tunnel by giving them a
// network namespace whose only way out is that tunnel.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "wgns: under construction")
	os.Exit(125)
}
