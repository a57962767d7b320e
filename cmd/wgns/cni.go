package main

import (
	"github.com/wgns/wgns/cni"
)

// HolderCmd is `wgns cni-holder`, hidden: the supervisor of one CNI attachment of the embedded
// WireGuard, which the CNI ADD starts (supervisor.Start) and DEL ends. The attachment's
// description comes on a pipe, as it may hold keys.
type HolderCmd struct {
	ReadyFD int `name:"ready-fd" required:"" help:"Report readiness on this pipe."`
	SpecFD  int `name:"spec-fd" required:"" help:"Read the attachment's description from this pipe."`
}

// Run makes the attachment and holds it until SIGTERM.
func (c *HolderCmd) Run() error {
	if err := needRoot("cni-holder", "it configures a container's network namespace"); err != nil {
		return err
	}
	return cni.Hold(c.ReadyFD, c.SpecFD)
}
