package wgns

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/wgns/wgns/wgns/config"
)

// Plan is what `wgns up --dry-run` prints: the reconciler's own dry run of bringing up tunnel
// name from cfg, one numbered line per action. It changes nothing, resolves no endpoint and
// needs no root; without root, it plans from nothing (the tunnel's record is root's).
func Plan(name string, cfg *config.Config, mode Mode) (string, error) {
	return plan(hostSystem{}, name, cfg, mode)
}

func plan(sys system, name string, cfg *config.Config, mode Mode) (string, error) {
	mode = mode.OrDefault()
	var b strings.Builder
	fmt.Fprintf(&b, "config %s is valid; ", cfg.Path)
	st, err := sys.readState(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		st = &State{Name: name, Step: StepNamespace}
	case errors.Is(err, fs.ErrPermission):
		st = &State{Name: name, Step: StepNamespace}
		b.WriteString("planned from nothing (only root can read what is up now); ")
	case err != nil:
		return "", err
	case healthy(sys, st):
		fmt.Fprintf(&b, "%s is already up (since %s): up would change nothing (`wgns repair --dry-run %s` lists what differs from the config)\n",
			name, st.Since.Format(time.RFC3339), name)
		return b.String(), nil
	}
	st.Mode = mode
	st.PID, st.Start = sys.self() // the up that runs the plan is the tunnel's supervisor
	r := &reconciler{name: name, cfg: cfg, st: st, sys: sys, dev: sys.backend(mode), dryRun: true}
	defer r.close()
	if err := r.run(); err != nil {
		return "", err
	}
	b.WriteString("up would:\n")
	for i, a := range append(r.actions, portsPlan(name, cfg)...) {
		fmt.Fprintf(&b, "  %d. %s\n", i+1, a)
	}
	return b.String(), nil
}

// portsPlan is what the supervisor does for the tunnel's ports once it is up.
func portsPlan(name string, cfg *config.Config) []string {
	var out []string
	for _, p := range cfg.Namespace.Publish {
		what := "connection"
		if p.Proto == "udp" {
			what = "flow"
		}
		out = append(out, fmt.Sprintf("listen on %s/%s in the host namespace, and carry each %s to port %d on %s's lo (Publish)",
			p.Host, p.Proto, what, p.Port, name))
	}
	if pf := cfg.Namespace.PortForward; pf != nil {
		a := fmt.Sprintf("ask %s through the tunnel for a forwarded port (NAT-PMP), renew it, open it in the firewall and write it to %s",
			pf.Gateway, PortPath(name))
		if pf.Command != nil {
			a += fmt.Sprintf("; tell it to `%s`, run inside as %s", strings.Join(pf.Command, " "), pf.User)
		}
		out = append(out, a)
	}
	return out
}
