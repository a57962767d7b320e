package main

import (
	"fmt"
	"time"

	"github.com/wgns/wgns/wgns"
)

// CheckCmd is `wgns check`.
type CheckCmd struct {
	JSON            bool          `help:"Print the report as JSON ({name, ok, checks: [{name, ok, detail}], warnings: [TEXT]}; fields are only ever added)."`
	MaxHandshakeAge time.Duration `default:"3m" help:"Fail a peer whose latest handshake is older than this."`
	Name            string        `arg:"" help:"Tunnel name."`
}

// Run audits the tunnel and exits 1 if any check fails.
func (c *CheckCmd) Run() error {
	if err := needRoot("check", "it reads the namespace's interfaces, routes, firewall and processes"); err != nil {
		return err
	}
	r, err := wgns.CheckWith(c.Name, wgns.CheckOptions{MaxHandshakeAge: c.MaxHandshakeAge})
	if err != nil {
		return err
	}
	if c.JSON {
		if err := writeJSON(r); err != nil {
			return err
		}
	} else {
		fmt.Print(r.Text())
	}
	if !r.OK {
		return &exitError{code: 1}
	}
	return nil
}
