package cni

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/wgns"
	"github.com/wgns/wgns/wgns/config"
)

// netConf is wgns's network configuration, as the runtime hands it over on stdin:
//
//	{
//	  "cniVersion": "1.1.0", "name": "vpn", "type": "wgns",
//	  "config": "/etc/wgns/vpn.conf",          // or "configText": "[Interface]\n..."
//	  "interface": "wg0",                       // optional
//	  "keep": ["10.244.0.0/16", "10.96.0.0/12"], // what stays on the primary interface
//	  "primary": "eth0",                        // not chained: the pod's own interface
//	  "mode": "kernel"                          // optional: "kernel" or "userspace"
//	}
type netConf struct {
	types.PluginConf
	// Config is the path of a wg-quick config, checked as wgns up checks it (root's, and no one
	// else can change it).
	Config string `json:"config,omitempty"`
	// ConfigText is the config itself, for keys the runtime hands in without a file. It is never
	// logged, put in a result or an error.
	ConfigText string `json:"configText,omitempty"`
	// Interface is the WireGuard interface's name inside the container: by default CNI_IFNAME
	// when wgns is the first plugin, "wg0" when chained (every plugin of a chain gets the first
	// one's CNI_IFNAME).
	Interface string `json:"interface,omitempty"`
	// Keep lists the prefixes that stay on the primary interface; the firewall lets nothing
	// else pass it.
	Keep []string `json:"keep,omitempty"`
	// Primary names the pod's own interface when wgns is not chained but attached beside the
	// pod's network (a Multus secondary network): the kept prefixes stay on it, through the
	// gateway of its default route. Chained, the primary interface is CNI_IFNAME.
	Primary string `json:"primary,omitempty"`
	// Mode forces a WireGuard implementation; "" picks kernel WireGuard when the kernel has it.
	Mode string `json:"mode,omitempty"`
}

// defaultChainedInterface is the WireGuard interface's name when wgns is chained.
const defaultChainedInterface = "wg0"

// parseConf decodes the network configuration and its prevResult. Errors are CNI errors with a
// code: 6 (undecodable), 7 (invalid).
func parseConf(stdin []byte) (*netConf, error) {
	var c netConf
	if err := json.Unmarshal(stdin, &c); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "decoding the network configuration: "+err.Error(), "")
	}
	if err := version.ParsePrevResult(&c.PluginConf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "network "+c.Name+": "+err.Error(), "")
	}
	switch wgns.Mode(c.Mode) {
	case "", wgns.ModeKernel, wgns.ModeUserspace:
	default:
		return nil, invalid(&c, "mode %q: want \"kernel\", \"userspace\" or none (kernel WireGuard when the kernel has it)", c.Mode)
	}
	if c.Interface != "" {
		if err := nsmgr.ValidateName(c.Interface); err != nil {
			return nil, invalid(&c, "interface: %v", err)
		}
	}
	if c.Primary != "" {
		if err := nsmgr.ValidateName(c.Primary); err != nil {
			return nil, invalid(&c, "primary: %v", err)
		}
	}
	return &c, nil
}

// invalid is a CNI error of code 7 about network c.
func invalid(c *netConf, format string, args ...any) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("network %s: ", c.Name)+fmt.Sprintf(format, args...), "")
}

// load reads the wg-quick config the network names, or parses its configText.
func (c *netConf) load() (*config.Config, error) {
	var cfg *config.Config
	var err error
	switch {
	case c.Config != "" && c.ConfigText != "":
		return nil, invalid(c, `both "config" and "configText": give one`)
	case c.Config != "":
		if !filepath.IsAbs(c.Config) {
			return nil, invalid(c, "config %q: not an absolute path", c.Config)
		}
		cfg, err = config.Load(c.Config)
	case c.ConfigText != "":
		cfg, err = config.Parse(c.textName(), []byte(c.ConfigText))
	default:
		return nil, invalid(c, `no WireGuard config: give "config" (a file such as /etc/wgns/%s.conf) or "configText"`, c.Name)
	}
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	// A tunnel's supervisor serves its ports; an attachment has none to do it, and a
	// container's ports are its runtime's to publish. Said, rather than silently ignored.
	if p := cfg.Namespace.Publish; len(p) > 0 {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("%s:%d: Publish does not apply to a CNI attachment: "+
			"publish the container's ports with its runtime (podman run -p, a Kubernetes Service)", cfg.Path, p[0].Line), "")
	}
	if pf := cfg.Namespace.PortForward; pf != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("%s:%d: PortForward does not apply to a CNI attachment: "+
			"it needs the supervisor of a tunnel brought up with `wgns up`", cfg.Path, pf.Line), "")
	}
	return cfg, nil
}

// textName is what errors and warnings about a configText call it ("FILE:LINE: ...").
func (c *netConf) textName() string { return fmt.Sprintf("configText of network %s", c.Name) }

// keep parses the kept prefixes.
func (c *netConf) keep() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.Keep {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, invalid(c, "keep: %q is not a prefix (like 10.244.0.0/16)", s)
		}
		if p.Masked() != p {
			return nil, invalid(c, "keep: %s has host bits set (the prefix is %s)", p, p.Masked())
		}
		out = append(out, p)
	}
	return out, nil
}

// chained reports whether wgns runs after another plugin in this ADD (it has a prevResult).
func (c *netConf) chained() bool { return c.PrevResult != nil }

// attachOptions is what ADD asks of wgns.Attach: the WireGuard interface, and when chained the
// primary interface (CNI_IFNAME), the prefixes kept on it and its gateways from prevResult.
func (c *netConf) attachOptions(key wgns.AttachKey, netns string, cfg *config.Config) (wgns.AttachOptions, error) {
	o := wgns.AttachOptions{Key: key, Netns: netns, Interface: c.Interface, Config: cfg, Mode: wgns.Mode(c.Mode)}
	keep, err := c.keep()
	if err != nil {
		return o, err
	}
	if !c.chained() {
		if o.Interface == "" {
			o.Interface = key.IfName
		}
		if c.Primary != "" {
			o.Primary = &wgns.Primary{Interface: c.Primary, Keep: keep}
		} else if len(keep) > 0 {
			return o, invalid(c, `"keep" needs a primary interface to keep the prefixes on: chain wgns after the pod's network plugin, or name the pod's interface in "primary"`)
		}
		return o, nil
	}
	if c.Primary != "" && c.Primary != key.IfName {
		return o, invalid(c, "primary %q: chained, the primary interface is the one the plugins before wgns made, %s", c.Primary, key.IfName)
	}
	if o.Interface == "" {
		o.Interface = defaultChainedInterface
	}
	prev, err := types100.NewResultFromResult(c.PrevResult)
	if err != nil {
		return o, types.NewError(types.ErrDecodingFailure, fmt.Sprintf("network %s: prevResult: %v", c.Name, err), "")
	}
	o.Primary = &wgns.Primary{Interface: key.IfName, Keep: keep, Gateways: gateways(prev, key.IfName)}
	return o, nil
}

// gateways are the primary interface's gateways in prevResult, one per address family: those of
// its addresses, else those of its default routes.
func gateways(prev *types100.Result, ifname string) []netip.Addr {
	var out []netip.Addr
	add := func(ip []byte) {
		a, ok := netip.AddrFromSlice(ip)
		if !ok || !a.IsValid() {
			return
		}
		a = a.Unmap()
		if !slices.ContainsFunc(out, func(b netip.Addr) bool { return b.Is4() == a.Is4() }) {
			out = append(out, a)
		}
	}
	for _, ip := range prev.IPs {
		if ip.Interface != nil && *ip.Interface >= 0 && *ip.Interface < len(prev.Interfaces) &&
			prev.Interfaces[*ip.Interface].Name == ifname && ip.Gateway != nil {
			add(ip.Gateway)
		}
	}
	for _, r := range prev.Routes {
		if ones, _ := r.Dst.Mask.Size(); ones == 0 && r.GW != nil {
			add(r.GW)
		}
	}
	return out
}
