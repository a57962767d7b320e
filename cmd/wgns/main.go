// Command wgns confines programs and systemd services to a WireGuard tunnel by giving them a
// network namespace whose only way out is that tunnel.
//
// Exit codes: 0 success; 1 failure (a message says what, where and why); for exec, the command's
// own status, or 125 (wgns failed), 126 (not executable), 127 (not found), like env(1) and sudo.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/wgns/wgns/cmd/internal/execcmd"
	"github.com/wgns/wgns/cni"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// CLI is the whole command line.
type CLI struct {
	Up      UpCmd      `cmd:"" help:"Create NAME's namespace and tunnel from a wg-quick config; return once it is ready."`
	Down    DownCmd    `cmd:"" help:"Tear down everything up made for NAME."`
	Exec    ExecCmd    `cmd:"" help:"Run a command inside NAME's namespace, with its DNS, as the invoking user."`
	List    ListCmd    `cmd:"" help:"One line per tunnel: name, mode, state, address."`
	Status  StatusCmd  `cmd:"" help:"Show a tunnel like wg show does, plus namespace, DNS, firewall and processes."`
	Repair  RepairCmd  `cmd:"" help:"Bring a tunnel (or all) back to what its config says; clear what a crashed up left."`
	Check   CheckCmd   `cmd:"" help:"Audit NAME for leaks: interfaces, routes, rules, firewall, DNS files, the DNS view of every process inside, handshake; exit 1 on any FAIL."`
	Unit    UnitCmd    `cmd:"" help:"systemd: confine a service to NAME with a drop-in (install, remove, show); print the unit templates."`
	Serve   ServeCmd   `cmd:"" help:"The root service behind sudo-free exec (systemd's wgns.socket starts it; this starts it by hand)."`
	Version VersionCmd `cmd:"" help:"Print wgns's version and the WireGuard implementation this kernel allows."`
	Help    HelpCmd    `cmd:"" help:"Show help: for wgns, or for one command (wgns help up)."`
	Holder  HolderCmd  `cmd:"" name:"cni-holder" hidden:"" help:"The holder of a CNI attachment's embedded WireGuard (started by the CNI ADD)."`

	VersionFlag versionFlag `name:"version" help:"Print wgns's version (as wgns version does) and exit."`
	selftestCmds
	docCmds
}

const description = `wgns confines programs and systemd services to a WireGuard tunnel.

Each tunnel NAME is a network namespace (/run/netns/NAME) whose only way out is the
WireGuard interface NAME, with its own resolv.conf and nsswitch.conf (/etc/netns/NAME/) and its
own firewall. The host's routes, rules and resolver are never touched.

  sudo wgns up ./work.conf          # the wg-quick config your provider gave you
  sudo wgns exec work -- firefox    # runs as you (SUDO_UID), inside the tunnel
  wgns exec work -- firefox         # the same without sudo, if work's [Namespace] Users names you
  sudo wgns status work
  sudo wgns down work

Run by a container runtime with CNI_COMMAND set, wgns is a CNI plugin ("type": "wgns") that
gives containers and pods the same tunnel namespace (wgns(8), CNI PLUGIN).
`

func main() {
	if os.Getenv("CNI_COMMAND") != "" { // a container runtime runs wgns as its CNI plugin
		os.Exit(cni.Main(version))
	}
	// exec is on the hot path of scripts: it skips the full command-line model (as the lean
	// front does, which normally runs exec before this program is reached).
	if len(os.Args) > 1 && os.Args[1] == "exec" {
		if cmd, ok := execcmd.Parse(os.Args[2:]); ok {
			os.Exit(cmd.Execute())
		}
	}
	var cli CLI
	parser, err := newParser(&cli)
	if err != nil {
		panic(err)
	}
	args := os.Args[1:]
	if len(args) == 0 {
		args = []string{"--help"} // bare wgns: help, exit 0
	}
	ctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wgns: %v\n", err)
		os.Exit(usageStatus(args))
	}
	if err := ctx.Run(); err != nil {
		var ex *exitError
		if errors.As(err, &ex) {
			if ex.msg != "" {
				fmt.Fprintln(os.Stderr, "wgns:", ex.msg)
			}
			os.Exit(ex.code)
		}
		fmt.Fprintln(os.Stderr, "wgns:", err)
		os.Exit(1)
	}
}

// newParser is wgns's command-line parser, with extra options (tests redirect its output).
func newParser(cli *CLI, extra ...kong.Option) (*kong.Kong, error) {
	return kong.New(cli, append([]kong.Option{
		kong.Name("wgns"),
		kong.Description(description),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Vars{"version": version},
	}, extra...)...)
}

// HelpCmd is `wgns help [CMD...]`: the help of wgns, or of a command.
type HelpCmd struct {
	Command []string `arg:"" optional:"" help:"The command (and subcommand) to explain."`
}

// Run shows the help kong shows for CMD --help, and exits 0.
func (c *HelpCmd) Run(ctx *kong.Context) error {
	_, err := ctx.Kong.Parse(append(c.Command, "--help"))
	return err // only a wrong command comes back here; --help exits
}

// versionFlag is --version: the output of wgns version.
type versionFlag bool

// BeforeApply prints the version and exits, as --help does.
func (versionFlag) BeforeApply(app *kong.Kong) error {
	VersionCmd{}.Run()
	app.Exit(0)
	return nil
}

// exitError ends wgns with a given status.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// needRoot refuses command cmd to a user who is not root, saying why it needs root.
func needRoot(cmd, why string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("wgns %s needs root (%s): run it with sudo", cmd, why)
	}
	return nil
}

// usageStatus is the exit status of a command line wgns cannot parse: 2, as getopt's tools
// exit, but 125 for exec, whose own statuses must not be taken for the command's (like env's).
func usageStatus(args []string) int {
	for _, a := range args {
		if a == "exec" {
			return 125
		}
		if !strings.HasPrefix(a, "-") {
			break // another command
		}
	}
	return 2
}
