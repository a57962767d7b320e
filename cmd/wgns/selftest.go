package main

import (
	"os"

	"github.com/wgns/wgns/selftest"
)

// selftestCmds are `wgns selftest` and the hidden commands it runs itself as inside the private
// world it builds. Their names must be those of selftest.CmdWorld, CmdSteps, CmdPeer and CmdProbe.
type selftestCmds struct {
	Selftest      SelftestCmd      `cmd:"" help:"Bring a tunnel up in a throwaway private world (own namespaces, a local WireGuard peer and DNS server) and show that traffic and DNS go through it and nothing leaks. Touches nothing of the host's network."`
	SelftestWorld selftestWorldCmd `cmd:"" name:"selftest-world" hidden:""`
	SelftestRun   selftestRunCmd   `cmd:"" name:"selftest-run" hidden:""`
	SelftestPeer  selftestPeerCmd  `cmd:"" name:"selftest-peer" hidden:""`
	SelftestProbe selftestProbeCmd `cmd:"" name:"selftest-probe" hidden:""`
}

// SelftestCmd is `wgns selftest`.
type SelftestCmd struct{}

// Run runs the self-test; it fails (exit 1) if any step failed.
func (SelftestCmd) Run() error {
	if err := needRoot("selftest", "it builds a private network world of namespaces"); err != nil {
		return err
	}
	failed, err := selftest.Run(os.Stdout)
	if err != nil {
		return err
	}
	if failed > 0 {
		return &exitError{code: 1}
	}
	return nil
}

type selftestWorldCmd struct{}

func (selftestWorldCmd) Run() error { return exitWith(selftest.RunWorld()) }

type selftestRunCmd struct{}

func (selftestRunCmd) Run() error { return exitWith(selftest.RunSteps(os.Stdout)) }

type selftestPeerCmd struct {
	Inside bool `help:"Already in the peer's namespace."`
}

func (c selftestPeerCmd) Run() error { return exitWith(selftest.RunPeer(c.Inside)) }

type selftestProbeCmd struct{}

func (selftestProbeCmd) Run() error { return exitWith(selftest.RunProbe(os.Stdout)) }

// exitWith turns a hidden command's exit status into Run's result.
func exitWith(code int) error {
	if code == 0 {
		return nil
	}
	return &exitError{code: code}
}
