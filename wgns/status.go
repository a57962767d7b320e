package wgns

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/wgns/wgns/firewall"
	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/wgns/config"
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
	DNS        []string     `json:"dns"`
	Firewall   string       `json:"firewall"` // "on", "off", "missing", "altered"
	Processes  int          `json:"processes"`
	Peers      []PeerStatus `json:"peers"`
}

// PeerStatus is one peer of a tunnel, as `wg show` shows it.
type PeerStatus struct {
	PublicKey     string    `json:"public_key"`
	Endpoint      string    `json:"endpoint,omitempty"`
	AllowedIPs    []string  `json:"allowed_ips"`
	LastHandshake time.Time `json:"latest_handshake,omitempty"`
	RxBytes       int64     `json:"transfer_rx"`
	TxBytes       int64     `json:"transfer_tx"`
	Keepalive     int       `json:"persistent_keepalive,omitempty"`
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
// With brief, only what `list` shows is read (no wgctrl, firewall or process scan).
func GetStatus(name string, brief bool) (*Status, error) {
	if err := nsmgr.ValidateName(name); err != nil {
		return nil, err
	}
	st, err := ReadState(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tunnel %q: %w", name, ErrNotUp)
	}
	if err != nil {
		return nil, err
	}
	s := &Status{Name: name, Mode: st.Mode, Namespace: nsmgr.Path(name), Config: st.Config, Since: st.Since,
		PID: st.PID, Addresses: []string{}, DNS: []string{}, Peers: []PeerStatus{}}
	switch {
	case !st.Ready:
		s.State = "starting (step " + string(st.Step) + ")"
		if st.Mode == ModeUserspace && !st.holderAlive() {
			s.State = "broken: a crashed up left it at step " + string(st.Step)
		}
	case st.Mode == ModeUserspace && !st.holderAlive():
		s.State = "broken: the WireGuard process is gone"
	default:
		s.State = "ready"
	}
	id, err := nsmgr.IDByName(name)
	if err != nil || id != st.Netns {
		s.State = "broken: the namespace is gone or replaced"
		return s, nil
	}
	ns, err := nsmgr.Open(name)
	if err != nil {
		s.State = "broken: " + err.Error()
		return s, nil
	}
	defer ns.Close()
	if h, err := netlink.NewHandleAt(ns); err == nil {
		if l, err := h.LinkByName(name); err == nil {
			addrs, _ := h.AddrList(l, netlink.FAMILY_ALL)
			for _, a := range addrs {
				if p, ok := netip.AddrFromSlice(a.IP); ok {
					ones, _ := a.Mask.Size()
					s.Addresses = append(s.Addresses, netip.PrefixFrom(p.Unmap(), ones).String())
				}
			}
		} else if s.State == "ready" {
			s.State = "broken: interface " + name + " is gone"
		}
		h.Close()
	}
	if brief {
		return s, nil
	}
	if cfg, err := config.Load(st.Config); err == nil {
		for _, d := range cfg.Interface.DNS {
			s.DNS = append(s.DNS, d.String())
		}
		s.DNS = append(s.DNS, cfg.Interface.Search...)
		if !cfg.Namespace.Firewall {
			s.Firewall = "off"
		} else if fs, err := firewall.Inspect(int(ns), firewallRules(name, cfg)); err == nil {
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
	if procs, err := nsmgr.ProcessLeaders(id); err == nil {
		s.Processes = len(procs)
	}
	d, err := readDevice(ns, name)
	if err == nil {
		s.PublicKey = d.PublicKey.String()
		s.ListenPort = d.ListenPort
		for _, p := range d.Peers {
			ps := PeerStatus{PublicKey: p.PublicKey.String(), AllowedIPs: []string{}, LastHandshake: p.LastHandshakeTime,
				RxBytes: p.ReceiveBytes, TxBytes: p.TransmitBytes, Keepalive: int(p.PersistentKeepaliveInterval / time.Second)}
			if p.Endpoint != nil {
				ps.Endpoint = p.Endpoint.String()
			}
			for _, a := range p.AllowedIPs {
				ps.AllowedIPs = append(ps.AllowedIPs, a.String())
			}
			s.Peers = append(s.Peers, ps)
		}
	}
	if err != nil && s.State == "ready" {
		s.State = "broken: reading WireGuard state: " + err.Error()
	}
	return s, nil
}
