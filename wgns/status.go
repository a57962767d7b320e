package wgns

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/ports"
)

// Status is what `wgns status` shows of one tunnel. Its JSON shape is part of the contract:
// fields are only ever added.
type Status struct {
	Name       string       `json:"name"`
	Mode       Mode         `json:"mode"`
	State      string       `json:"state"` // "ready", "starting", "broken: why"
	Namespace  string       `json:"namespace"`
	Config     string       `json:"config"`
	Since      time.Time    `json:"since"`
	PID        int          `json:"pid,omitempty"`
	PublicKey  string       `json:"public_key,omitempty"`
	ListenPort int          `json:"listen_port,omitempty"`
	Addresses  []string     `json:"addresses"`
	DNS        []string     `json:"dns,omitzero"`        // left out by list, which does not read it
	Firewall   string       `json:"firewall,omitzero"`   // "on", "off", "missing", "altered"; left out by list
	Processes  *int         `json:"processes,omitempty"` // left out by list
	Peers      []PeerStatus `json:"peers,omitzero"`      // left out by list

	// With Failover = on, from the supervisor's record (failover.go): how many times the
	// AllowedIPs of a failover group moved to another peer since up, when they last did, and
	// each group. Left out without failover groups, and by list.
	Failovers      *int          `json:"failovers,omitempty"`
	LastFailover   time.Time     `json:"last_failover,omitzero"`
	FailoverGroups []GroupStatus `json:"failover_groups,omitempty"`
	// Ports, from the supervisor's record (left out by list): the published ports, and the
	// provider's forwarded port with the lease's end (forwarded_port is 0 and left out while
	// there is none; port_forward says why).
	Published            []ports.PublishedPort `json:"published,omitzero"`
	ForwardedPort        int                   `json:"forwarded_port,omitempty"`
	ForwardedPortExpires time.Time             `json:"forwarded_port_expires,omitzero"`
	PortForward          *ports.ForwardState   `json:"port_forward,omitempty"`
}

// PeerStatus is one peer of a tunnel, as `wg show` shows it.
type PeerStatus struct {
	PublicKey     string    `json:"public_key"`
	Endpoint      string    `json:"endpoint,omitempty"`
	AllowedIPs    []string  `json:"allowed_ips"`
	LastHandshake time.Time `json:"latest_handshake,omitzero"`
	RxBytes       int64     `json:"transfer_rx"`
	TxBytes       int64     `json:"transfer_tx"`
	Keepalive     int       `json:"persistent_keepalive,omitempty"`
	// Group is the peer's failover group, from 1; 0 (left out) when it is in none.
	Group int `json:"group,omitempty"`
	// Active, for a peer of a failover group, says whether it holds the group's AllowedIPs.
	Active *bool `json:"active,omitempty"`
}

// GroupStatus is one failover group of a tunnel.
type GroupStatus struct {
	Group int      `json:"group"` // from 1
	Peers []string `json:"peers"` // public keys, in file order
	// Active is the peer that holds the group's AllowedIPs; "" when no single one does.
	Active string `json:"active,omitempty"`
	// Check is the address probed through the active peer; "" when the group is judged from
	// WireGuard's own counters.
	Check        string    `json:"check,omitempty"`
	Failovers    int       `json:"failovers"`
	LastFailover time.Time `json:"last_failover,omitzero"`
	// DownSince is when every peer of the group had been tried and none answered: the group's
	// traffic goes nowhere (nothing leaves outside the tunnel). Left out while a peer answers.
	DownSince time.Time `json:"down_since,omitzero"`
}

// Names lists the tunnels wgns has state for, sorted.
func Names() ([]string, error) {
	m, err := filepath.Glob(filepath.Join(RunDir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range m {
		n := strings.TrimSuffix(filepath.Base(p), ".json")
		if nsmgr.ValidateName(n) == nil {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// GetStatus reads a tunnel's status; the error wraps ErrNotUp when wgns has no record of it.
// With brief, only what `list` shows is read (no wgctrl, firewall or process scan), and the
// fields it does not fill are left out of its JSON.
func GetStatus(name string, brief bool) (*Status, error) {
	s, err := getStatus(hostSystem{}, name, brief)
	if err == nil && !brief {
		addPorts(s, PortsPath(name))
	}
	return s, err
}

// addPorts adds to s what the record at path, the supervisor's, says of the tunnel's ports, if
// that supervisor is s's holder and runs.
func addPorts(s *Status, path string) {
	rec, err := ports.ReadRecord(path)
	if err != nil || rec.PID == 0 || rec.PID != s.PID || nsmgr.StartTime(rec.PID) != rec.Start {
		return
	}
	s.Published = rec.Published
	if f := rec.Forward; f != nil {
		s.PortForward = f
		s.ForwardedPort, s.ForwardedPortExpires = int(f.Port), f.Expires
	}
}

func getStatus(sys system, name string, brief bool) (*Status, error) {
	if err := nsmgr.ValidateName(name); err != nil {
		return nil, err
	}
	st, err := sys.readState(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tunnel %q is %w", name, ErrNotUp)
	}
	if err != nil {
		return nil, err
	}
	s := &Status{Name: name, Mode: st.Mode, Namespace: nsmgr.Path(name), Config: st.Config, Since: st.Since, PID: st.PID}
	if !brief {
		s.Addresses, s.DNS, s.Peers = []string{}, []string{}, []PeerStatus{}
	}
	holderAlive := sys.holderAlive(st)
	switch {
	case !st.Ready && !holderAlive:
		s.State = "broken: a crashed up left it at step " + string(st.Step)
	case !st.Ready:
		s.State = "starting (step " + string(st.Step) + ")"
	case st.Mode == ModeUserspace && !holderAlive:
		s.State = "broken: the WireGuard process is gone"
	case !holderAlive:
		s.State = "broken: its supervisor is gone (kernel WireGuard works on, but nothing watches it)"
	default:
		s.State = "ready"
	}
	id, err := sys.nsID(name)
	if err != nil || id != st.Netns {
		s.State = "broken: the namespace is gone or replaced"
		return s, nil
	}
	ns, err := sys.nsOpen(name)
	if err != nil {
		s.State = "broken: " + err.Error()
		return s, nil
	}
	defer ns.close()
	if _, ok := ns.link(name); ok {
		addrs, _ := ns.addrs(name)
		for _, a := range addrs {
			if !a.Addr().IsLinkLocalUnicast() {
				s.Addresses = append(s.Addresses, a.String())
			}
		}
	} else if s.State == "ready" {
		s.State = "broken: interface " + name + " is gone"
	}
	if brief {
		return s, nil
	}
	if cfg, err := sys.loadConfig(st.Config); err == nil {
		for _, d := range cfg.Interface.DNS {
			s.DNS = append(s.DNS, d.String())
		}
		s.DNS = append(s.DNS, cfg.Interface.Search...)
		if !cfg.Namespace.Firewall {
			s.Firewall = "off"
		} else if fs, err := ns.firewallState(firewallRules(name, cfg)); err == nil {
			switch {
			case !fs.Present:
				s.Firewall = "missing"
			case !fs.Matches:
				s.Firewall = "altered"
			default:
				s.Firewall = "on"
			}
		}
	}
	if procs, err := sys.inside(id); err == nil {
		n := len(procs)
		s.Processes = &n
		closeAll(procs)
	}
	d, err := ns.device(name)
	if err == nil {
		s.PublicKey = d.PublicKey.String()
		s.ListenPort = d.ListenPort
		s.Peers = append(s.Peers, peerStatuses(d.Peers)...)
	}
	if err != nil && s.State == "ready" {
		s.State = "broken: reading WireGuard state: " + err.Error()
	}
	if rec, rerr := sys.readFailovers(name, st); rerr == nil && rec != nil {
		var peers []wgtypes.Peer
		if err == nil {
			peers = d.Peers
		}
		s.addFailovers(rec, peers)
	}
	return s, nil
}

// peerStatuses is what status shows of the device's peers.
func peerStatuses(peers []wgtypes.Peer) []PeerStatus {
	var out []PeerStatus
	for _, p := range peers {
		ps := PeerStatus{PublicKey: p.PublicKey.String(), AllowedIPs: []string{}, LastHandshake: p.LastHandshakeTime,
			RxBytes: p.ReceiveBytes, TxBytes: p.TransmitBytes, Keepalive: int(p.PersistentKeepaliveInterval / time.Second)}
		if p.Endpoint != nil {
			ps.Endpoint = p.Endpoint.String()
		}
		for _, a := range p.AllowedIPs {
			ps.AllowedIPs = append(ps.AllowedIPs, a.String())
		}
		out = append(out, ps)
	}
	return out
}

// PeerStates reads the peers of tunnel name from its WireGuard device alone: what `up` polls
// while it waits for the first handshakes. Unlike GetStatus it reads no config, firewall or
// process list (the process scan grows with the processes on the machine).
func PeerStates(name string) ([]PeerStatus, error) {
	return peerStates(hostSystem{}, name)
}

func peerStates(sys system, name string) ([]PeerStatus, error) {
	if err := nsmgr.ValidateName(name); err != nil {
		return nil, err
	}
	ns, err := sys.nsOpen(name)
	if err != nil {
		return nil, err
	}
	defer ns.close()
	d, err := ns.device(name)
	if err != nil {
		return nil, err
	}
	return peerStatuses(d.Peers), nil
}
