package firewall

import (
	"errors"
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
)

// forwardedSetName is the name of the set that holds the forwarded port of proto.
func forwardedSetName(proto string) string { return "forwarded_" + proto }

// forwardedProto is the protocol of a forwarded-port set, "" for any other name.
func forwardedProto(set string) string {
	for _, proto := range []string{"tcp", "udp"} {
		if set == forwardedSetName(proto) {
			return proto
		}
	}
	return ""
}

// forwardedSet describes the forwarded-port set called name: `type inet_service`, no flags.
func forwardedSet(name string) *nftables.Set {
	return &nftables.Set{Table: table, Name: name, KeyType: nftables.TypeInetService, KeyByteOrder: binaryutil.BigEndian}
}

// elementsFor returns the elements of set called name for the ports of its protocol.
func elementsFor(ports []Port, name string) []nftables.SetElement {
	var els []nftables.SetElement
	for _, p := range ports {
		if forwardedSetName(p.Proto) == name {
			els = append(els, nftables.SetElement{Key: binaryutil.BigEndian.PutUint16(p.Port)})
		}
	}
	return els
}

// withSetIDs returns es with the transaction IDs of the sets its lookups name (a rule that
// refers to a set made in the same transaction names it by ID).
func withSetIDs(es []expr.Any, ids map[string]uint32) []expr.Any {
	out := slices.Clone(es)
	for i, e := range out {
		if l, ok := e.(*expr.Lookup); ok {
			if id, ok := ids[l.SetName]; ok {
				l2 := *l
				l2.SetID = id
				out[i] = &l2
			}
		}
	}
	return out
}

// maxForwarded is how many ports a forwarded-port set holds at most: the one NAT-PMP mapping of
// its protocol.
const maxForwarded = 1

// ErrForwardedPorts is returned (wrapped) by SetForwarded for ports it cannot hold: more than one
// per protocol, port 0, or a protocol other than tcp and udp.
var ErrForwardedPorts = errors.New("at most one port per protocol (tcp, udp), not 0")

// SetForwarded makes the forwarded-port sets of the wgns table in the network namespace open as
// nsFd hold exactly ports (at most one per protocol; none closes them), in one transaction that
// touches nothing else: the ports opened before are closed in the same instant the new ones
// open. The table must have been installed with Rules.PortForward; if it was not, or is absent,
// the error wraps unix.ENOENT and nothing changes. SetForwarded never switches the calling
// thread's namespace; the caller keeps nsFd open and closes it.
func SetForwarded(nsFd int, ports []Port) error {
	if err := setForwarded(nsFd, ports); err != nil {
		return fmt.Errorf("setting the forwarded ports of firewall table %q in namespace fd %d: %w", TableName, nsFd, err)
	}
	return nil
}

func setForwarded(nsFd int, ports []Port) error {
	count := map[string]int{}
	for _, p := range ports {
		if forwardedProto(forwardedSetName(p.Proto)) == "" || p.Port == 0 {
			return fmt.Errorf("port %s: %w", p, ErrForwardedPorts)
		}
		if count[p.Proto]++; count[p.Proto] > maxForwarded {
			return fmt.Errorf("%d %s ports: %w", count[p.Proto], p.Proto, ErrForwardedPorts)
		}
	}
	if err := checkNetns(nsFd); err != nil {
		return err
	}
	c, err := nftables.New(nftables.WithNetNSFd(nsFd))
	if err != nil {
		return err
	}
	for _, proto := range []string{"tcp", "udp"} {
		s := forwardedSet(forwardedSetName(proto))
		c.FlushSet(s)
		if els := elementsFor(ports, s.Name); len(els) > 0 {
			if err := c.SetAddElements(s, els); err != nil {
				return err
			}
		}
	}
	return c.Flush()
}

// keptForwarded returns the ports the forwarded-port sets hold now, for Apply to put back into
// the table it makes: nothing when the sets are absent, not as Apply makes them, or hold more
// than a set may (then someone else filled them, and the supervisor sets them again at its next
// renewal).
func keptForwarded(c *nftables.Conn) []Port {
	sets, err := c.GetSets(table)
	if err != nil {
		return nil
	}
	var keep []Port
	for _, s := range sets {
		proto := forwardedProto(s.Name)
		if proto == "" || setProblem(s) != "" {
			continue
		}
		ports, err := setPorts(c, s, proto)
		if err != nil || len(ports) > maxForwarded {
			continue
		}
		keep = append(keep, ports...)
	}
	return keep
}

// setPorts reads the ports a forwarded-port set holds.
func setPorts(c *nftables.Conn, s *nftables.Set, proto string) ([]Port, error) {
	els, err := c.GetSetElements(s)
	if err != nil {
		return nil, err
	}
	var ports []Port
	for _, e := range els {
		if len(e.Key) != 2 {
			return nil, fmt.Errorf("set %s: an element of %d bytes", s.Name, len(e.Key))
		}
		ports = append(ports, Port{Port: binaryutil.BigEndian.Uint16(e.Key), Proto: proto})
	}
	slices.SortFunc(ports, func(a, b Port) int { return int(a.Port) - int(b.Port) })
	return ports, nil
}

// setProblem says how set s differs from a forwarded-port set as Apply makes it, "" if it does
// not.
func setProblem(s *nftables.Set) string {
	switch {
	case s.KeyType.Name != nftables.TypeInetService.Name || s.KeyType.Bytes != nftables.TypeInetService.Bytes:
		return fmt.Sprintf("type %s (%d bytes), want inet_service", s.KeyType.Name, s.KeyType.Bytes)
	case s.IsMap || s.Interval || s.Constant || s.Anonymous || s.HasTimeout || s.Dynamic || s.Concatenation:
		return "has flags, want none"
	}
	return ""
}

// setView is a set of the table as read back.
type setView struct {
	name    string
	problem string // setProblem
	ports   []Port // its elements, for a forwarded-port set
}

// readSets reads the sets of table inet wgns, and the elements of the forwarded-port sets.
func readSets(c *nftables.Conn) ([]setView, error) {
	sets, err := c.GetSets(table)
	if err != nil {
		return nil, fmt.Errorf("listing sets: %w", err)
	}
	var out []setView
	for _, s := range sets {
		v := setView{name: s.Name, problem: setProblem(s)}
		if proto := forwardedProto(s.Name); proto != "" && v.problem == "" {
			if v.ports, err = setPorts(c, s, proto); err != nil {
				return nil, fmt.Errorf("listing the elements of set %s: %w", s.Name, err)
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// compareSets adds to the State what differs between the wanted sets and those read back, and
// records the forwarded ports.
func compareSets(want []string, got []setView, st *State, add func(string, ...any)) {
	for _, name := range want {
		i := slices.IndexFunc(got, func(v setView) bool { return v.name == name })
		switch {
		case i < 0:
			add("set %s is missing", name)
		case got[i].problem != "":
			add("set %s: %s", name, got[i].problem)
		case len(got[i].ports) > maxForwarded:
			add("set %s holds %d ports, want at most %d", name, len(got[i].ports), maxForwarded)
		default:
			st.Forwarded = append(st.Forwarded, got[i].ports...)
		}
	}
	for _, v := range got {
		if !slices.Contains(want, v.name) {
			add("unexpected set %s", v.name)
		}
	}
}
