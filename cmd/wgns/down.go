package main

import (
	"fmt"
	"time"

	"github.com/wgns/wgns/wgns"
)

// DownCmd is `wgns down`.
type DownCmd struct {
	Force bool          `help:"End the processes still inside (SIGTERM, then SIGKILL after --grace) instead of refusing."`
	Grace time.Duration `default:"5s" help:"How long --force waits after SIGTERM."`
	Name  string        `arg:"" help:"Tunnel name."`
}

// Run tears the tunnel down.
func (c *DownCmd) Run() error {
	if err := needRoot("down", "it removes a network namespace and its WireGuard interface"); err != nil {
		return err
	}
	wasUp, err := wgns.Down(c.Name, wgns.DownOptions{Force: c.Force, Grace: c.Grace})
	if err != nil {
		return err
	}
	if !wasUp {
		fmt.Printf("%s is not up; nothing to do\n", c.Name)
		return nil
	}
	fmt.Printf("%s is down\n", c.Name)
	return nil
}
