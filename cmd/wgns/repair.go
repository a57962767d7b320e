package main

import (
	"errors"
	"fmt"

	"github.com/wgns/wgns/supervisor"
	"github.com/wgns/wgns/wgns"
)

// RepairCmd is `wgns repair`.
type RepairCmd struct {
	DryRun bool   `help:"List what would be repaired; change nothing."`
	Name   string `arg:"" optional:"" help:"Tunnel name (default: every tunnel wgns knows)."`
}

// Run repairs one tunnel or all.
func (c *RepairCmd) Run() error {
	if err := needRoot("repair", "it remakes namespaces, interfaces and firewalls"); err != nil {
		return err
	}
	names, err := nameOrAll(c.Name)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		fmt.Println("no tunnels")
		return nil
	}
	var errs []error
	for _, n := range names {
		if err := c.repair(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *RepairCmd) repair(name string) error {
	res, err := wgns.Repair(name, c.DryRun)
	if res != nil {
		verb := "repaired"
		if c.DryRun {
			verb = "would repair"
		}
		if len(res.Actions) == 0 && err == nil {
			fmt.Printf("%s: nothing to repair\n", name)
		}
		for _, a := range res.Actions {
			fmt.Printf("%s: %s: %s\n", name, verb, a)
		}
	}
	if err != nil {
		return fmt.Errorf("repairing %q: %w", name, err)
	}
	if res.NeedHolder && !c.DryRun {
		st, err := wgns.ReadState(name)
		if err != nil {
			return err
		}
		warnings, err := supervisor.Start(supervisor.StartOptions{Name: name, ConfigPath: st.Config, Mode: st.Mode})
		warnAll(warnings)
		if err != nil {
			return fmt.Errorf("repairing %q: %w", name, err)
		}
		fmt.Printf("%s: its supervisor runs again; %s is ready\n", name, name)
	}
	return nil
}
