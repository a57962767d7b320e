package main

import "github.com/wgns/wgns/cmd/internal/execcmd"

// ExecCmd is `wgns exec`. Its flags and its work are package execcmd's, which the lean front
// (cmd/wgns-front, installed as `wgns`) runs without kong; this is the same command, reached
// through kong for --help and for the forms execcmd.Parse leaves to it.
type ExecCmd struct {
	execcmd.Cmd
}

// Run is exec through kong.
func (c *ExecCmd) Run() error {
	if code := c.Execute(); code != 0 {
		return &exitError{code: code}
	}
	return nil
}
