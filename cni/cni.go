// Package cni is wgns as a CNI plugin (spec 1.1, github.com/containernetworking/cni): the wgns
// binary answers when a container runtime runs it with CNI_COMMAND set, and gives the
// container's namespace the same tunnel as `wgns up` gives its own (wgns.Attach): WireGuard as
// its only way out, the firewall installed before the interface arrives, the tunnel's DNS in the
// result.
//
// The network configuration ("type": "wgns") names the wg-quick config ("config": a path,
// checked as `wgns up` checks it; or "configText": the config itself) and, optionally, the
// WireGuard interface's name inside ("interface"), the implementation ("mode") and, when wgns is
// chained after a primary plugin such as ptp or bridge, the prefixes that stay on that plugin's
// interface ("keep": the cluster's pod and service ranges; "primary" names that interface when
// wgns is not chained but attached beside the pod's own network, as Multus attaches a secondary
// network); everything else goes through the tunnel or is dropped.
//
//   - ADD attaches. Kernel WireGuard needs no process afterwards; the embedded one runs in a
//     supervisor of its own (`wgns cni-holder`, detached), which DEL ends.
//   - DEL detaches, also when the namespace is gone or CNI_NETNS is empty, and when nothing was
//     attached: only what ADD made is removed, never the namespace.
//   - CHECK reports any difference from what ADD made (as a dry run of a repair would).
//   - GC detaches every attachment of the network that is not among cni.dev/valid-attachments.
//   - STATUS says whether an ADD could work: the config reads, the implementation is there.
//   - VERSION: 0.4.0, 1.0.0 and 1.1.0.
//
// Keys never reach a result, an error, a log, argv or the environment.
package cni

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/supervisor"
	"github.com/wgns/wgns/wgns"
	"github.com/wgns/wgns/wgns/config"
)

// Versions are the CNI spec versions the plugin speaks (CHECK needs 0.4.0, GC and STATUS 1.1.0).
var Versions = version.PluginSupports("0.4.0", "1.0.0", "1.1.0")

// Main runs one CNI command as the environment and stdin say, prints the result or the error
// (a CNI error object) on stdout, and returns the exit status.
func Main(wgnsVersion string) int {
	funcs := skel.CNIFuncs{Add: asRoot(add), Del: asRoot(del), Check: asRoot(check), GC: asRoot(gc), Status: asRoot(status)}
	if e := skel.PluginMainFuncsWithError(funcs, Versions, "wgns "+wgnsVersion+": WireGuard tunnel namespaces for containers"); e != nil {
		if err := e.Print(); err != nil {
			fmt.Fprintln(os.Stderr, "wgns: writing the CNI error:", err)
		}
		return 1
	}
	return 0
}

// errNeedRoot is the refusal of every command but VERSION to a user who is not root: only root
// can act in a container's namespace, and wgns's records of attachments are root's.
var errNeedRoot = types.NewError(100, "wgns as a CNI plugin needs root (it configures containers' network namespaces); the container runtime runs it as root", "")

func asRoot(f func(*skel.CmdArgs) error) func(*skel.CmdArgs) error {
	return func(args *skel.CmdArgs) error {
		if os.Geteuid() != 0 {
			return errNeedRoot
		}
		return f(args)
	}
}

// warn writes a warning to stderr, which runtimes log.
func warn(s string) { fmt.Fprintln(os.Stderr, "wgns: warning:", s) }

func key(c *netConf, args *skel.CmdArgs) wgns.AttachKey {
	return wgns.AttachKey{Network: c.Name, ContainerID: args.ContainerID, IfName: args.IfName}
}

// parseAndLoad parses the network configuration on stdin and loads the wg-quick config it names.
func parseAndLoad(stdin []byte) (*netConf, *config.Config, error) {
	c, err := parseConf(stdin)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := c.load()
	if err != nil {
		return nil, nil, err
	}
	return c, cfg, nil
}

func add(args *skel.CmdArgs) error {
	c, cfg, err := parseAndLoad(args.StdinData)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		warn(w)
	}
	k := key(c, args)
	o, err := c.attachOptions(k, args.Netns, cfg)
	if err != nil {
		return err
	}
	o.Mode = o.Mode.OrDefault()
	if o.Mode == wgns.ModeKernel {
		o.Warn = warn
		if _, err := wgns.Attach(o); err != nil {
			return err
		}
	} else if err := startHolder(c, o); err != nil {
		return err
	}
	var prev *types100.Result
	if c.chained() {
		if prev, err = types100.NewResultFromResult(c.PrevResult); err != nil {
			return err
		}
	}
	return types.PrintResult(result(prev, o, cfg), c.CNIVersion)
}

// startHolder starts the supervisor that makes and holds an embedded WireGuard attachment, and
// waits for its word. When it fails, nothing of the attachment is left.
func startHolder(c *netConf, o wgns.AttachOptions) error {
	spec, err := newHolderSpec(c, o)
	if err != nil {
		return err
	}
	id := o.Key.ID()
	warnings, err := supervisor.Start(supervisor.StartOptions{Name: id, Attach: spec, LogPath: wgns.AttachLogPath(id)})
	for _, w := range warnings {
		warn(w)
	}
	if err != nil {
		// It undoes what it made before it says why; one killed on the way could not.
		if derr := wgns.Detach(o.Key, o.Netns); derr != nil {
			return fmt.Errorf("%w (and undoing it: %v)", err, derr)
		}
		return err
	}
	return nil
}

func del(args *skel.CmdArgs) error {
	// DEL needs nothing of the config: the record says what ADD made, and a config removed or
	// broken since must not keep the attachment alive.
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	return wgns.Detach(key(c, args), args.Netns)
}

func check(args *skel.CmdArgs) error {
	c, cfg, err := parseAndLoad(args.StdinData)
	if err != nil {
		return err
	}
	if c.PrevResult == nil {
		return invalid(c, "CHECK without a prevResult (the result of ADD)")
	}
	prev, err := types100.NewResultFromResult(c.PrevResult)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, fmt.Sprintf("network %s: prevResult: %v", c.Name, err), "")
	}
	k := key(c, args)
	if err := wgns.CheckAttachment(k, args.Netns, cfg); err != nil {
		return err
	}
	// The runtime's record of ADD must show the interface ADD made, in this namespace.
	iface := c.Interface
	if iface == "" {
		iface = args.IfName
		if slices.ContainsFunc(prev.Interfaces, func(i *types100.Interface) bool { return i.Name == defaultChainedInterface && i.Sandbox == args.Netns }) {
			iface = defaultChainedInterface
		}
	}
	if !slices.ContainsFunc(prev.Interfaces, func(i *types100.Interface) bool { return i.Name == iface && i.Sandbox == args.Netns }) {
		return fmt.Errorf("%s: the result of ADD has no interface %s in %s", k, iface, args.Netns)
	}
	return nil
}

func gc(args *skel.CmdArgs) error {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	valid := make([]wgns.AttachKey, len(c.ValidAttachments))
	for i, a := range c.ValidAttachments {
		valid[i] = wgns.AttachKey{Network: c.Name, ContainerID: a.ContainerID, IfName: a.IfName}
	}
	return wgns.GCAttachments(c.Name, valid)
}

// errNotAvailable is STATUS's "the plugin is not available" (code 50).
const errNotAvailable = 50

func status(args *skel.CmdArgs) error {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	if _, err := c.load(); err != nil {
		var te *types.Error
		if errors.As(err, &te) {
			return types.NewError(errNotAvailable, te.Msg, te.Details)
		}
		return types.NewError(errNotAvailable, err.Error(), "")
	}
	switch wgns.Mode(c.Mode) {
	case wgns.ModeKernel:
		if !wgns.KernelWireGuard() {
			return types.NewError(errNotAvailable, fmt.Sprintf("network %s: mode kernel, but this kernel has no WireGuard", c.Name), "")
		}
	case wgns.ModeUserspace, "":
		if wgns.Mode(c.Mode) == "" && wgns.KernelWireGuard() {
			break
		}
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return types.NewError(errNotAvailable, fmt.Sprintf("network %s: the embedded WireGuard needs /dev/net/tun: %v", c.Name, err), "")
		}
		unix.Close(fd)
	}
	return nil
}
