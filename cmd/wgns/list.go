package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wgns/wgns/wgns"
)

// ListCmd is `wgns list`.
type ListCmd struct {
	JSON bool `help:"One JSON object per tunnel, in an array (the shape of status --json, brief)."`
}

// Run lists the tunnels.
func (c *ListCmd) Run() error {
	if err := needRoot("list", "it reads the tunnels' records in /run/wgns"); err != nil {
		return err
	}
	names, err := wgns.Names()
	if err != nil {
		return err
	}
	return showStatuses(names, true, true, c.JSON, func(list []*wgns.Status) error {
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tMODE\tSTATE\tADDRESS")
		for _, s := range list {
			addr := strings.Join(s.Addresses, ",")
			if addr == "" {
				addr = "-"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", s.Name, s.Mode, s.State, addr)
		}
		return w.Flush()
	})
}

// showStatuses prints the status of each tunnel in names (brief as for GetStatus): as JSON, as
// "no tunnels" when there is none, or else with plain. A tunnel that is not up is left out when
// skipDown, and is an error otherwise.
func showStatuses(names []string, brief, skipDown, asJSON bool, plain func([]*wgns.Status) error) error {
	list := []*wgns.Status{}
	for _, n := range names {
		s, err := wgns.GetStatus(n, brief)
		if skipDown && errors.Is(err, wgns.ErrNotUp) {
			continue
		}
		if err != nil {
			return err
		}
		list = append(list, s)
	}
	if asJSON {
		return writeJSON(list)
	}
	if len(list) == 0 {
		fmt.Println("no tunnels")
		return nil
	}
	return plain(list)
}

// StatusCmd is `wgns status`.
type StatusCmd struct {
	JSON bool   `help:"Print JSON (an array of objects; fields are only ever added)."`
	Name string `arg:"" optional:"" help:"Tunnel name (default: all)."`
}

// Run shows one tunnel or all.
func (c *StatusCmd) Run() error {
	if err := needRoot("status", "it reads the tunnels' records in /run/wgns and their WireGuard devices"); err != nil {
		return err
	}
	names, err := nameOrAll(c.Name)
	if err != nil {
		return err
	}
	return showStatuses(names, false, c.Name == "", c.JSON, func(list []*wgns.Status) error {
		for i, s := range list {
			if i > 0 {
				fmt.Println()
			}
			fmt.Print(formatStatus(s, time.Now()))
		}
		return nil
	})
}

func writeJSON(v any) error {
	e := json.NewEncoder(os.Stdout)
	e.SetIndent("", "  ")
	return e.Encode(v)
}

// formatStatus renders a status like wg(8) show does.
func formatStatus(s *wgns.Status, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tunnel: %s\n", s.Name)
	fmt.Fprintf(&b, "  state: %s\n", s.State)
	if strings.HasPrefix(s.State, "broken") {
		fmt.Fprintf(&b, "  to fix: wgns repair %s\n", s.Name)
	}
	fmt.Fprintf(&b, "  mode: %s\n", s.Mode)
	fmt.Fprintf(&b, "  namespace: %s\n", s.Namespace)
	fmt.Fprintf(&b, "  config: %s\n", s.Config)
	if s.PublicKey != "" {
		fmt.Fprintf(&b, "  public key: %s\n", s.PublicKey)
	}
	if s.ListenPort != 0 {
		fmt.Fprintf(&b, "  listening port: %d\n", s.ListenPort)
	}
	fmt.Fprintf(&b, "  addresses: %s\n", orNone(s.Addresses))
	fmt.Fprintf(&b, "  dns: %s\n", orNone(s.DNS))
	fmt.Fprintf(&b, "  firewall: %s\n", s.Firewall)
	if s.Processes != nil {
		fmt.Fprintf(&b, "  processes inside: %d\n", *s.Processes)
	}
	formatFailovers(&b, s, now)
	formatPorts(&b, s, now)
	for _, p := range s.Peers {
		fmt.Fprintf(&b, "\n  peer: %s\n", p.PublicKey)
		if p.Endpoint != "" {
			fmt.Fprintf(&b, "    endpoint: %s\n", p.Endpoint)
		}
		fmt.Fprintf(&b, "    allowed ips: %s\n", orNone(p.AllowedIPs))
		if p.LastHandshake.IsZero() {
			fmt.Fprintf(&b, "    latest handshake: never\n")
		} else {
			fmt.Fprintf(&b, "    latest handshake: %s ago\n", now.Sub(p.LastHandshake).Round(time.Second))
		}
		fmt.Fprintf(&b, "    transfer: %d B received, %d B sent\n", p.RxBytes, p.TxBytes)
		if p.Keepalive > 0 {
			fmt.Fprintf(&b, "    persistent keepalive: every %d seconds\n", p.Keepalive)
		}
		if p.Group > 0 {
			role := "standing by"
			if p.Active != nil && *p.Active {
				role = "active"
			}
			fmt.Fprintf(&b, "    failover group: %d (%s)\n", p.Group, role)
		}
	}
	return b.String()
}

// formatPorts renders the published ports and the provider's forwarded port, when there are.
func formatPorts(b *strings.Builder, s *wgns.Status, now time.Time) {
	if len(s.Published) > 0 {
		ps := make([]string, len(s.Published))
		for i, p := range s.Published {
			ps[i] = fmt.Sprintf("%s -> %d/%s", p.Listen, p.Port, p.Proto)
		}
		fmt.Fprintf(b, "  published: %s\n", strings.Join(ps, ", "))
	}
	f := s.PortForward
	if f == nil {
		return
	}
	if f.Port == 0 {
		fmt.Fprintf(b, "  forwarded port: none yet (NAT-PMP, gateway %s)\n", f.Gateway)
	} else {
		line := fmt.Sprintf("  forwarded port: %d", f.Port)
		if f.UDPPort != 0 {
			line += fmt.Sprintf(" (UDP %d)", f.UDPPort)
		}
		if f.External != 0 {
			line += fmt.Sprintf(", public port %d", f.External)
		}
		fmt.Fprintf(b, "%s (NAT-PMP, gateway %s, lease ends in %s)\n", line, f.Gateway, f.Expires.Sub(now).Round(time.Second))
	}
	if f.Error != "" {
		fmt.Fprintf(b, "  port forwarding failing since %s ago: %s\n", now.Sub(f.Since).Round(time.Second), f.Error)
	}
}

// formatFailovers renders the failover lines of a status: how many, when last, and each group.
func formatFailovers(b *strings.Builder, s *wgns.Status, now time.Time) {
	if s.Failovers == nil {
		return
	}
	ago := func(t time.Time) string {
		return fmt.Sprintf("%s (%s ago)", t.Local().Format(time.DateTime), now.Sub(t).Round(time.Second))
	}
	if *s.Failovers == 0 {
		fmt.Fprintf(b, "  failovers: none\n")
	} else {
		fmt.Fprintf(b, "  failovers: %d, the last at %s\n", *s.Failovers, ago(s.LastFailover))
	}
	for _, g := range s.FailoverGroups {
		how := "WireGuard's counters"
		if g.Check != "" {
			how = "probing " + g.Check
		}
		switch {
		case !g.DownSince.IsZero():
			fmt.Fprintf(b, "  failover group %d: DOWN since %s: none of its %d peers answers; its traffic goes nowhere (%s)\n", g.Group, ago(g.DownSince), len(g.Peers), how)
		case g.Active == "":
			fmt.Fprintf(b, "  failover group %d: no single peer holds its AllowedIPs (%s)\n", g.Group, how)
		default:
			fmt.Fprintf(b, "  failover group %d: peer %s active, of %d (%s)\n", g.Group, g.Active, len(g.Peers), how)
		}
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}

// nameOrAll is name, or every tunnel wgns has state for when name is "".
func nameOrAll(name string) ([]string, error) {
	if name != "" {
		return []string{name}, nil
	}
	return wgns.Names()
}
