package selftest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// snapshotNetwork describes, as sorted lines of text, what the self-test must leave as it found
// it in the calling thread's network namespace (the host's): interfaces, addresses, routes of
// every table, and the named namespaces of /run/netns. It only reads. Counters, lifetimes and
// other fields that change by themselves are left out.
func snapshotNetwork() (string, error) {
	var lines []string
	links, err := netlink.LinkList()
	if err != nil {
		return "", fmt.Errorf("listing the host's interfaces: %w", err)
	}
	names := map[int]string{}
	for _, l := range links {
		a := l.Attrs()
		names[a.Index] = a.Name
		lines = append(lines, fmt.Sprintf("link %s index %d type %s up %v mtu %d master %d",
			a.Name, a.Index, l.Type(), a.Flags&unix.IFF_UP != 0, a.MTU, a.MasterIndex))
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return "", fmt.Errorf("listing the host's addresses: %w", err)
	}
	for _, a := range addrs {
		lines = append(lines, fmt.Sprintf("addr %s dev %s", a.IPNet, names[a.LinkIndex]))
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return "", fmt.Errorf("listing the host's routes: %w", err)
	}
	for _, r := range routes {
		lines = append(lines, fmt.Sprintf("route %v via %v dev %s src %v table %d type %d scope %d proto %d metric %d",
			r.Dst, r.Gw, names[r.LinkIndex], r.Src, r.Table, r.Type, r.Scope, r.Protocol, r.Priority))
	}
	entries, err := os.ReadDir("/run/netns")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("listing /run/netns: %w", err)
	}
	for _, e := range entries {
		lines = append(lines, "netns "+e.Name())
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n", nil
}
