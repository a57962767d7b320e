package wgns

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/dnsbind"
	"github.com/wgns/wgns/firewall"
	"github.com/wgns/wgns/nsmgr"
	"github.com/wgns/wgns/wgns/config"
)

// HandshakeMaxAge is how old a peer's latest handshake may be before Check fails it. A live
// session rekeys every two minutes while it carries traffic (PersistentKeepalive keeps an idle
// one carrying some), so a handshake older than this means the peer is not answering.
const HandshakeMaxAge = 3 * time.Minute

// The names of the checks, in the order a CheckReport lists them. They are part of the output
// contract (text and JSON): new checks may be added, these are not renamed.
const (
	CheckConfig     = "config"     // the config the tunnel was brought up from can be read
	CheckNamespace  = "namespace"  // /run/netns/NAME is the namespace wgns made, and it is ready
	CheckProcess    = "process"    // the tunnel's supervisor runs (it holds the embedded WireGuard)
	CheckInterfaces = "interfaces" // only lo and the tunnel interface, which is a WireGuard/TUN device and up
	CheckRoutes     = "routes"     // every route of every table is via lo or the tunnel; AllowedIPs are routed
	CheckRules      = "rules"      // the policy rules are the kernel's defaults
	CheckFirewall   = "firewall"   // table inet wgns is there exactly as wgns installs it
	CheckDNS        = "dns"        // resolv.conf and nsswitch.conf under /etc/netns/NAME as written
	CheckViews      = "views"      // every process inside sees the namespace's DNS view, none a host resolver
	CheckNameserver = "nameserver" // every DNS server of the config answers a query from inside, through the tunnel
	CheckHandshake  = "handshake"  // every peer's latest handshake is younger than HandshakeMaxAge (roaming peers excepted)
	// CheckFailover comes last, and only for a tunnel with failover groups: each group's
	// AllowedIPs are held by one peer, which answers (failover.go).
	CheckFailover = "failover"
)

// CheckResult is one item of a CheckReport.
type CheckResult struct {
	// Name is one of the Check* names.
	Name string `json:"name"`
	// OK reports whether the check passed.
	OK bool `json:"ok"`
	// Detail says what was found: on failure, each fault ("; " between them); on success, what
	// was verified.
	Detail string `json:"detail"`
}

// CheckReport is the outcome of Check for one tunnel. Its JSON shape is part of the contract:
// fields are only ever added.
type CheckReport struct {
	// Name is the tunnel's name.
	Name string `json:"name"`
	// OK reports whether every check passed.
	OK bool `json:"ok"`
	// Checks lists every check, in a fixed order, whether it passed or not.
	Checks []CheckResult `json:"checks"`
	// Warnings are findings that fail no check: risks of using the tunnel in ways wgns does not
	// control (a host resolver daemon that `ip netns exec` would reach).
	Warnings []string `json:"warnings,omitempty"`
}

// Failed returns the names of the checks that failed, in report order.
func (r *CheckReport) Failed() []string {
	var out []string
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c.Name)
		}
	}
	return out
}

// Text renders the report as `wgns check` prints it: one line per check, "ok" or "FAIL", the
// check's name and what was found, a "warn" line per warning, then a summary line.
func (r *CheckReport) Text() string {
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Name))
	}
	var b strings.Builder
	for _, c := range r.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		// A detail of several lines (a file's diff) continues under its first line.
		lines := strings.Split(c.Detail, "\n")
		fmt.Fprintf(&b, "%s  %-*s  %s\n", mark, width, c.Name, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(&b, "%*s%s\n", len(mark)+2+width+2, "", strings.TrimLeft(l, "\t"))
		}
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "warn  %s\n", w)
	}
	if failed := r.Failed(); len(failed) > 0 {
		fmt.Fprintf(&b, "%s: %d of %d checks FAILED (%s)\n", r.Name, len(failed), len(r.Checks), strings.Join(failed, ", "))
	} else {
		fmt.Fprintf(&b, "%s: all %d checks ok\n", r.Name, len(r.Checks))
	}
	return b.String()
}

// CheckOptions tunes Check.
type CheckOptions struct {
	// MaxHandshakeAge is how old a peer's latest handshake may be; 0 means HandshakeMaxAge.
	MaxHandshakeAge time.Duration
}

// Check audits the tunnel name for leaks and faults: only lo and the tunnel interface in its
// namespace, every route via them, the default policy rules, wgns's firewall table as it was
// installed, the DNS view as written, every process inside seeing that view (not the host's
// resolv.conf, nsswitch.conf or resolver sockets), the WireGuard process alive (userspace) and
// a handshake with every peer within HandshakeMaxAge. It warns when a host resolver daemon's
// socket exists, which `ip netns exec` would reach. What was intended is read from the config recorded in
// the tunnel's state. Faults are reported in the CheckReport, not as errors; the error is for a
// name that is invalid or not up (wrapping ErrNotUp) and for unreadable state.
//
// Check only reads. It must run in the host namespace; it never switches the calling
// goroutine's thread (netlink and nftables handles are bound to the namespace, and wgctrl runs
// through nsmgr.Do). A WireGuard process that does not answer within wgTimeout fails the
// handshake check; the goroutine waiting on it is then left behind until the process answers or
// dies.
func Check(name string) (*CheckReport, error) { return CheckWith(name, CheckOptions{}) }

// CheckWith is Check with options.
func CheckWith(name string, o CheckOptions) (*CheckReport, error) {
	if err := nsmgr.ValidateName(name); err != nil {
		return nil, err
	}
	st, err := ReadState(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tunnel %q is %w", name, ErrNotUp)
	}
	if err != nil {
		return nil, fmt.Errorf("checking tunnel %q: %w", name, err)
	}
	f := gather(name, st)
	f.maxAge = o.MaxHandshakeAge
	return evaluate(name, f), nil
}

// checkFacts is everything Check reads about a tunnel, gathered before any judgement, so that
// evaluate can be tested without root.
type checkFacts struct {
	now    time.Time
	maxAge time.Duration // 0: HandshakeMaxAge
	state  *State

	cfg    *config.Config
	cfgErr error

	nsID  nsmgr.ID // of /run/netns/NAME as found
	nsErr error    // opening it

	holderAlive bool

	links    []linkFact
	linksErr error

	routes    []routeFact
	routesErr error

	rules    []netlink.Rule
	rulesErr error

	fw    firewall.State
	fwErr error

	dns    []string
	dnsErr error

	views     []viewFact // the processes inside whose DNS view is not the namespace's
	viewsSeen int        // how many processes inside were looked at
	viewsErr  error      // listing them

	resolvers []dnsbind.ResolverSocket // host resolver sockets that exist

	nameservers []nameserverFact // the config's DNS servers, asked from inside

	peers []peerFact
	wgErr error

	failovers    *FailoverRecord // the supervisor's record; nil when there is none
	failoversErr error
}

type linkFact struct {
	name  string
	kind  string // netlink's type: "device" (lo), "wireguard", "tuntap", "veth", ...
	up    bool
	addrs []string
}

type routeFact struct {
	family int
	table  int
	typ    int
	dst    netip.Prefix
	gw     string
	devs   []string // the output interfaces (several for a multipath route); none for unreachable and the like
}

// viewFact is a process inside the namespace whose DNS view is not the namespace's.
type viewFact struct {
	pid    int
	comm   string
	faults []string
}

type peerFact struct {
	key           string
	lastHandshake time.Time
	keepalive     time.Duration
	allowed       int // how many allowed IPs it holds
}

// gather reads everything evaluate judges. Failures to read are recorded in the facts.
func gather(name string, st *State) *checkFacts {
	f := &checkFacts{now: time.Now(), state: st}
	f.holderAlive = st.holderAlive()
	f.cfg, f.cfgErr = config.Load(st.Config)

	ns, err := nsmgr.Open(name)
	if err != nil {
		f.nsErr = err
		return f
	}
	defer ns.Close()
	if f.nsID, err = nsmgr.IDOf(ns); err != nil {
		f.nsErr = err
		return f
	}
	f.gatherNetlink(ns)
	if f.cfg != nil && f.cfg.Namespace.Firewall {
		f.fw, f.fwErr = firewall.Inspect(int(ns), firewallRules(name, f.cfg))
	}
	if f.cfg != nil {
		f.dns, f.dnsErr = dnsbind.Check(name, dnsbind.View{Servers: f.cfg.Interface.DNS, Search: f.cfg.Interface.Search})
	}
	f.gatherViews(name)
	f.resolvers = dnsbind.HostResolverSockets()
	f.peers, f.wgErr = readPeers(ns, name)
	if f.cfg != nil {
		f.nameservers = gatherNameservers(ns, f.cfg.Interface.DNS)
	}
	f.failovers, f.failoversErr = readFailovers(name, st)
	return f
}

// viewSettle is how long gatherViews waits before it looks again at a process whose DNS view is
// not the namespace's: one still setting its view up (a wgns exec between its switch into the
// namespace and the exec of its command, a systemd service between fork and exec) has it in
// place by then.
const viewSettle = 100 * time.Millisecond

// gatherViews looks at the DNS view of every process whose main thread is inside the namespace:
// a thread that enters it for a moment (wgns's own, through nsmgr.Do) does not make its process
// one inside. A process whose view is not the namespace's is looked at again after viewSettle,
// and counts only if it still is not.
func (f *checkFacts) gatherViews(name string) {
	procs, err := nsmgr.ProcessLeaders(f.nsID)
	if err != nil {
		f.viewsErr = err
		return
	}
	inspect := func(pid int) ([]string, bool) {
		faults, err := dnsbind.Inspect(pid, name)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false // gone meanwhile
		}
		if err != nil {
			faults = []string{"could not be looked at: " + err.Error()}
		}
		return faults, true
	}
	var suspects []int
	for _, p := range procs {
		faults, alive := inspect(p.PID)
		if !alive {
			continue
		}
		f.viewsSeen++
		if len(faults) > 0 {
			suspects = append(suspects, p.PID)
		}
	}
	if len(suspects) == 0 {
		return
	}
	time.Sleep(viewSettle)
	for _, pid := range suspects {
		faults, alive := inspect(pid)
		if !alive {
			f.viewsSeen--
			continue
		}
		if len(faults) == 0 {
			continue
		}
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		f.views = append(f.views, viewFact{pid: pid, comm: strings.TrimSuffix(string(comm), "\n"), faults: faults})
	}
}

// readPeers reads the peers of the WireGuard interface name in ns, giving up after wgTimeout.
func readPeers(ns netns.NsHandle, name string) ([]peerFact, error) {
	d, err := readDevice(ns, name)
	if err != nil {
		return nil, err
	}
	var peers []peerFact
	for _, p := range d.Peers {
		peers = append(peers, peerFact{key: p.PublicKey.String(), lastHandshake: p.LastHandshakeTime,
			keepalive: p.PersistentKeepaliveInterval, allowed: len(p.AllowedIPs)})
	}
	return peers, nil
}

// dumpTries bounds the retries of a netlink dump that the kernel reports as interrupted (the
// table changed while it was read).
const dumpTries = 5

func (f *checkFacts) gatherNetlink(ns netns.NsHandle) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		err = fmt.Errorf("opening netlink in the namespace: %w", err)
		f.linksErr, f.routesErr, f.rulesErr = err, err, err
		return
	}
	defer h.Close()

	var links []netlink.Link
	links, f.linksErr = retryDump(func() ([]netlink.Link, error) { return h.LinkList() })
	names := map[int]string{}
	for _, l := range links {
		a := l.Attrs()
		names[a.Index] = a.Name
		lf := linkFact{name: a.Name, kind: l.Type(), up: a.Flags&net.FlagUp != 0}
		addrs, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(l, netlink.FAMILY_ALL) })
		if err != nil && f.linksErr == nil {
			f.linksErr = fmt.Errorf("listing the addresses of %q: %w", a.Name, err)
		}
		for _, ad := range addrs {
			if ad.IPNet != nil && !ad.IP.IsLinkLocalUnicast() {
				ones, _ := ad.Mask.Size()
				if ip, ok := netip.AddrFromSlice(ad.IP); ok {
					lf.addrs = append(lf.addrs, netip.PrefixFrom(ip.Unmap(), ones).String())
				}
			}
		}
		f.links = append(f.links, lf)
	}
	if f.linksErr != nil {
		f.linksErr = fmt.Errorf("listing interfaces: %w", f.linksErr)
	}

	routes, err := retryDump(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		f.routesErr = fmt.Errorf("listing routes: %w", err)
	}
	devName := func(i int) string {
		if n, ok := names[i]; ok {
			return n
		}
		return "if" + strconv.Itoa(i)
	}
	for _, r := range routes {
		rf := routeFact{family: r.Family, table: r.Table, typ: r.Type}
		if r.Dst != nil {
			ones, _ := r.Dst.Mask.Size()
			if ip, ok := netip.AddrFromSlice(r.Dst.IP); ok {
				rf.dst = netip.PrefixFrom(ip.Unmap(), ones)
			}
		} else if r.Family == netlink.FAMILY_V6 {
			rf.dst = netip.MustParsePrefix("::/0")
		} else {
			rf.dst = netip.MustParsePrefix("0.0.0.0/0")
		}
		if r.Gw != nil {
			rf.gw = r.Gw.String()
		}
		if r.LinkIndex > 0 {
			rf.devs = append(rf.devs, devName(r.LinkIndex))
		}
		for _, nh := range r.MultiPath {
			rf.devs = append(rf.devs, devName(nh.LinkIndex))
		}
		f.routes = append(f.routes, rf)
	}

	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := retryDump(func() ([]netlink.Rule, error) { return h.RuleList(fam) })
		if err != nil {
			f.rulesErr = fmt.Errorf("listing policy rules: %w", err)
			break
		}
		f.rules = append(f.rules, rules...)
	}
}

func retryDump[T any](dump func() ([]T, error)) ([]T, error) {
	var out []T
	var err error
	for range dumpTries {
		if out, err = dump(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return out, err
}

// evaluate judges the facts. It is pure: everything it needs is in f.
func evaluate(name string, f *checkFacts) *CheckReport {
	r := &CheckReport{Name: name, Checks: []CheckResult{
		checkConfig(f),
		checkNamespace(name, f),
		checkProcess(f),
		checkInterfaces(name, f),
		checkRoutes(name, f),
		checkRules(f),
		checkFirewall(f),
		checkDNS(name, f),
		checkViews(f),
		checkNameserver(f),
		checkHandshake(f),
	}}
	if c, ok := checkFailover(f); ok {
		r.Checks = append(r.Checks, c)
	}
	r.OK = len(r.Failed()) == 0
	r.Warnings = resolverWarnings(name, f)
	return r
}

func pass(name, detail string) CheckResult { return CheckResult{Name: name, OK: true, Detail: detail} }

func fail(name string, faults ...string) CheckResult {
	return CheckResult{Name: name, Detail: strings.Join(faults, "; ")}
}

// notChecked is the result of a check that could not look.
func notChecked(name string, err error) CheckResult {
	return fail(name, "could not check: "+err.Error())
}

// noNamespace is the result of a check that needs the namespace when it could not be opened.
func noNamespace(name string) CheckResult {
	return fail(name, "not checked: the namespace could not be opened")
}

// noConfig is the result of a check that needs to know what was intended when the config
// cannot be read.
func noConfig(name string) CheckResult {
	return fail(name, "not checked: the config cannot be read, so what was intended is unknown")
}

func checkConfig(f *checkFacts) CheckResult {
	if f.cfgErr != nil {
		return fail(CheckConfig, "reading the config the tunnel was brought up from: "+f.cfgErr.Error())
	}
	return pass(CheckConfig, f.state.Config)
}

func checkNamespace(name string, f *checkFacts) CheckResult {
	path := nsmgr.Path(name)
	var faults []string
	switch {
	case f.nsErr != nil:
		faults = append(faults, f.nsErr.Error())
	case f.nsID != f.state.Netns:
		faults = append(faults, fmt.Sprintf("%s is namespace %s, not %s that wgns made", path, idString(f.nsID), idString(f.state.Netns)))
	}
	if !f.state.Ready {
		faults = append(faults, fmt.Sprintf("not ready: up stopped at step %q", f.state.Step))
	}
	if len(faults) > 0 {
		return fail(CheckNamespace, faults...)
	}
	return pass(CheckNamespace, fmt.Sprintf("%s is the namespace wgns made (%s), ready", path, idString(f.nsID)))
}

func checkProcess(f *checkFacts) CheckResult {
	if f.state.Mode != ModeUserspace {
		if !f.holderAlive {
			return fail(CheckProcess, fmt.Sprintf("the supervisor (PID %d) is gone: kernel WireGuard works on, unwatched", f.state.PID))
		}
		return pass(CheckProcess, fmt.Sprintf("the supervisor runs as PID %d", f.state.PID))
	}
	if !f.holderAlive {
		return fail(CheckProcess, fmt.Sprintf("the embedded WireGuard's process (PID %d) is gone", f.state.PID))
	}
	return pass(CheckProcess, fmt.Sprintf("the embedded WireGuard runs as PID %d", f.state.PID))
}

// tunnelKinds are the netlink link types a tunnel interface may have, by mode.
var tunnelKinds = map[Mode]string{ModeKernel: "wireguard", ModeUserspace: "tuntap"}

func checkInterfaces(name string, f *checkFacts) CheckResult {
	if f.nsErr != nil {
		return noNamespace(CheckInterfaces)
	}
	if f.linksErr != nil {
		return notChecked(CheckInterfaces, f.linksErr)
	}
	var faults, seen []string
	haveLo, haveTun := false, false
	for _, l := range f.links {
		switch l.name {
		case "lo":
			haveLo = true
			if !l.up {
				faults = append(faults, "lo is down")
			}
		case name:
			haveTun = true
			if want := tunnelKinds[f.state.Mode]; l.kind != want {
				faults = append(faults, fmt.Sprintf("interface %s is a %s device, not the %s device wgns made (%s mode)", name, l.kind, want, f.state.Mode))
			}
			if !l.up {
				faults = append(faults, fmt.Sprintf("tunnel interface %s is down", name))
			}
		default:
			faults = append(faults, "extra interface "+describeLink(l))
			continue
		}
		seen = append(seen, l.name)
	}
	if !haveLo {
		faults = append(faults, "lo is missing")
	}
	if !haveTun {
		faults = append(faults, fmt.Sprintf("tunnel interface %s is missing", name))
	}
	if len(faults) > 0 {
		return fail(CheckInterfaces, faults...)
	}
	return pass(CheckInterfaces, "only "+strings.Join(seen, " and "))
}

func describeLink(l linkFact) string {
	state := "down"
	if l.up {
		state = "up"
	}
	parts := append([]string{l.kind, state}, l.addrs...)
	return fmt.Sprintf("%s (%s)", l.name, strings.Join(parts, ", "))
}

// maxListed bounds how many offending routes or rules a detail lists.
const maxListed = 6

func checkRoutes(name string, f *checkFacts) CheckResult {
	if f.nsErr != nil {
		return noNamespace(CheckRoutes)
	}
	if f.routesErr != nil {
		return notChecked(CheckRoutes, f.routesErr)
	}
	var bad []string
	for _, r := range f.routes {
		if !routeStaysIn(r, name) {
			bad = append(bad, describeRoute(r))
		}
	}
	var faults []string
	if len(bad) > 0 {
		faults = append(faults, "not via the tunnel: "+listSome(bad))
	}
	var routed []string
	if f.cfg != nil {
		seen := map[netip.Prefix]bool{}
		for _, p := range f.cfg.Peers {
			for _, a := range p.AllowedIPs {
				if seen[a] {
					continue // the peers of a failover group list the same
				}
				seen[a] = true
				if !slices.ContainsFunc(f.routes, func(r routeFact) bool {
					return r.table == unix.RT_TABLE_MAIN && r.dst == a && slices.Equal(r.devs, []string{name}) && r.typ == unix.RTN_UNICAST
				}) {
					faults = append(faults, fmt.Sprintf("missing route %s dev %s", a, name))
				} else {
					routed = append(routed, a.String())
				}
			}
		}
	}
	if len(faults) > 0 {
		return fail(CheckRoutes, faults...)
	}
	detail := fmt.Sprintf("all %d routes via lo or %s", len(f.routes), name)
	if len(routed) > 0 {
		detail += "; AllowedIPs routed: " + strings.Join(routed, ", ")
	}
	return pass(CheckRoutes, detail)
}

// routeStaysIn reports whether a route cannot send a packet anywhere but lo or the tunnel: all
// its devices are lo or the tunnel, or it has none and drops (unreachable, blackhole,
// prohibit) or defers to the next rule (throw).
func routeStaysIn(r routeFact, name string) bool {
	if len(r.devs) == 0 {
		switch r.typ {
		case unix.RTN_UNREACHABLE, unix.RTN_BLACKHOLE, unix.RTN_PROHIBIT, unix.RTN_THROW:
			return true
		}
		return false
	}
	for _, d := range r.devs {
		if d != "lo" && d != name {
			return false
		}
	}
	return true
}

var routeTypes = map[int]string{
	unix.RTN_LOCAL: "local", unix.RTN_BROADCAST: "broadcast", unix.RTN_ANYCAST: "anycast",
	unix.RTN_MULTICAST: "multicast", unix.RTN_BLACKHOLE: "blackhole", unix.RTN_UNREACHABLE: "unreachable",
	unix.RTN_PROHIBIT: "prohibit", unix.RTN_THROW: "throw", unix.RTN_NAT: "nat",
}

// describeRoute renders a route the way `ip route show table all` does.
func describeRoute(r routeFact) string {
	var parts []string
	if t, ok := routeTypes[r.typ]; ok {
		parts = append(parts, t)
	}
	switch {
	case r.dst.Bits() == 0:
		parts = append(parts, "default")
	case r.dst.IsSingleIP():
		parts = append(parts, r.dst.Addr().String())
	default:
		parts = append(parts, r.dst.String())
	}
	if r.gw != "" {
		parts = append(parts, "via", r.gw)
	}
	if len(r.devs) == 0 {
		parts = append(parts, "(no device)")
	}
	for _, d := range r.devs {
		parts = append(parts, "dev", d)
	}
	if r.table != unix.RT_TABLE_MAIN {
		parts = append(parts, "table", tableName(r.table))
	}
	return strings.Join(parts, " ")
}

func tableName(t int) string {
	switch t {
	case unix.RT_TABLE_LOCAL:
		return "local"
	case unix.RT_TABLE_MAIN:
		return "main"
	case unix.RT_TABLE_DEFAULT:
		return "default"
	}
	return strconv.Itoa(t)
}

func listSome(items []string) string {
	if len(items) <= maxListed {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:maxListed], ", "), len(items)-maxListed)
}

// defaultRule is a policy rule every network namespace starts with.
type defaultRule struct {
	family   int
	priority int
	table    int
}

// defaultRules are the kernel's rules of a new namespace, as `ip rule` and `ip -6 rule` show
// them: local, main and (IPv4 only) default.
var defaultRules = []defaultRule{
	{netlink.FAMILY_V4, 0, unix.RT_TABLE_LOCAL},
	{netlink.FAMILY_V4, 32766, unix.RT_TABLE_MAIN},
	{netlink.FAMILY_V4, 32767, unix.RT_TABLE_DEFAULT},
	{netlink.FAMILY_V6, 0, unix.RT_TABLE_LOCAL},
	{netlink.FAMILY_V6, 32766, unix.RT_TABLE_MAIN},
}

// isDefaultRule reports whether r is exactly d: that priority and table, and no selector or
// other setting at all.
func isDefaultRule(r netlink.Rule, d defaultRule) bool {
	want := *netlink.NewRule()
	want.Family, want.Priority, want.Table = d.family, d.priority, d.table
	// Protocol is not compared: it says who made the rule (newer kernels say "kernel"), not
	// what it does.
	return r.Family == want.Family && r.Priority == want.Priority && r.Table == want.Table &&
		r.Mark == 0 && r.Mask == nil && r.Tos == 0 && r.TunID == 0 && r.Goto == want.Goto &&
		r.Src == nil && r.Dst == nil && r.Flow == want.Flow && r.IifName == "" && r.OifName == "" &&
		r.SuppressIfgroup == want.SuppressIfgroup && r.SuppressPrefixlen == want.SuppressPrefixlen &&
		!r.Invert && r.Dport == nil && r.Sport == nil && r.IPProto == 0 && r.UIDRange == nil && r.Type == 0
}

func checkRules(f *checkFacts) CheckResult {
	if f.nsErr != nil {
		return noNamespace(CheckRules)
	}
	if f.rulesErr != nil {
		return notChecked(CheckRules, f.rulesErr)
	}
	found := make([]bool, len(defaultRules))
	var extra []string
	for _, r := range f.rules {
		i := slices.IndexFunc(defaultRules, func(d defaultRule) bool { return isDefaultRule(r, d) })
		if i < 0 || found[i] {
			extra = append(extra, describeRule(r))
			continue
		}
		found[i] = true
	}
	var faults []string
	if len(extra) > 0 {
		faults = append(faults, "unexpected: "+listSome(extra))
	}
	for i, d := range defaultRules {
		if !found[i] {
			faults = append(faults, "missing: "+describeRule(netlink.Rule{Family: d.family, Priority: d.priority, Table: d.table, Goto: -1, Flow: -1,
				SuppressIfgroup: -1, SuppressPrefixlen: -1}))
		}
	}
	if len(faults) > 0 {
		return fail(CheckRules, faults...)
	}
	return pass(CheckRules, "only the default rules (lookup local, main, default)")
}

// describeRule renders a policy rule the way `ip rule` does.
func describeRule(r netlink.Rule) string {
	fam := "-4"
	if r.Family == netlink.FAMILY_V6 {
		fam = "-6"
	}
	parts := []string{fam, strconv.Itoa(r.Priority) + ":"}
	if r.Invert {
		parts = append(parts, "not")
	}
	from, to := "all", ""
	if r.Src != nil {
		from = r.Src.String()
	}
	parts = append(parts, "from", from)
	if r.Dst != nil {
		to = r.Dst.String()
		parts = append(parts, "to", to)
	}
	if r.Mark != 0 || r.Mask != nil {
		m := fmt.Sprintf("fwmark %#x", r.Mark)
		if r.Mask != nil {
			m += fmt.Sprintf("/%#x", *r.Mask)
		}
		parts = append(parts, m)
	}
	if r.IifName != "" {
		parts = append(parts, "iif", r.IifName)
	}
	if r.OifName != "" {
		parts = append(parts, "oif", r.OifName)
	}
	if r.UIDRange != nil {
		parts = append(parts, fmt.Sprintf("uidrange %d-%d", r.UIDRange.Start, r.UIDRange.End))
	}
	if r.IPProto != 0 {
		parts = append(parts, "ipproto", strconv.Itoa(r.IPProto))
	}
	if r.Sport != nil {
		parts = append(parts, fmt.Sprintf("sport %d-%d", r.Sport.Start, r.Sport.End))
	}
	if r.Dport != nil {
		parts = append(parts, fmt.Sprintf("dport %d-%d", r.Dport.Start, r.Dport.End))
	}
	if r.Goto >= 0 {
		parts = append(parts, "goto", strconv.Itoa(r.Goto))
	}
	if r.Table != 0 {
		parts = append(parts, "lookup", tableName(r.Table))
	}
	if r.SuppressPrefixlen >= 0 {
		parts = append(parts, "suppress_prefixlength", strconv.Itoa(r.SuppressPrefixlen))
	}
	if r.SuppressIfgroup >= 0 {
		parts = append(parts, "suppress_ifgroup", strconv.Itoa(r.SuppressIfgroup))
	}
	if r.Table == 0 && r.Goto < 0 {
		parts = append(parts, "(no table: blackhole, unreachable or prohibit)")
	}
	return strings.Join(parts, " ")
}

func checkFirewall(f *checkFacts) CheckResult {
	switch {
	case f.cfg == nil:
		return noConfig(CheckFirewall)
	case !f.cfg.Namespace.Firewall:
		return pass(CheckFirewall, "off, as the config says (Firewall = off): only the routes keep traffic in the tunnel")
	case f.nsErr != nil:
		return noNamespace(CheckFirewall)
	case f.fwErr != nil:
		return notChecked(CheckFirewall, f.fwErr)
	case !f.fw.Present:
		return fail(CheckFirewall, fmt.Sprintf("table inet %s is missing", firewall.TableName))
	case !f.fw.Matches:
		return fail(CheckFirewall, fmt.Sprintf("table inet %s was altered: %s", firewall.TableName, strings.Join(f.fw.Diff, "; ")))
	}
	detail := fmt.Sprintf("table inet %s as wgns installed it", firewall.TableName)
	if in := f.cfg.Namespace.AllowInbound; len(in) > 0 {
		ports := make([]string, len(in))
		for i, p := range in {
			ports[i] = p.String()
		}
		detail += ", inbound open on " + strings.Join(ports, ", ")
	}
	if f.cfg.Namespace.PortForward != nil {
		fwd := "none yet"
		if len(f.fw.Forwarded) > 0 {
			ports := make([]string, len(f.fw.Forwarded))
			for i, p := range f.fw.Forwarded {
				ports[i] = p.String()
			}
			fwd = strings.Join(ports, ", ")
		}
		detail += ", forwarded port open: " + fwd
	}
	return pass(CheckFirewall, fmt.Sprintf("%s; %d packets dropped", detail, f.fw.Dropped))
}

func checkDNS(name string, f *checkFacts) CheckResult {
	switch {
	case f.cfg == nil:
		return noConfig(CheckDNS)
	case f.dnsErr != nil:
		return notChecked(CheckDNS, f.dnsErr)
	case len(f.dns) > 0:
		return fail(CheckDNS, f.dns...)
	}
	dir := dnsbind.EtcDir + "/" + name
	servers := make([]string, len(f.cfg.Interface.DNS))
	for i, s := range f.cfg.Interface.DNS {
		servers[i] = s.String()
	}
	if len(servers) == 0 {
		return pass(CheckDNS, dir+"/resolv.conf and nsswitch.conf as written (no DNS server: lookups fail)")
	}
	return pass(CheckDNS, fmt.Sprintf("%s/resolv.conf and nsswitch.conf as written (nameserver %s)", dir, strings.Join(servers, ", ")))
}

func checkViews(f *checkFacts) CheckResult {
	switch {
	case f.nsErr != nil:
		return noNamespace(CheckViews)
	case f.viewsErr != nil:
		return notChecked(CheckViews, f.viewsErr)
	}
	if len(f.views) > 0 {
		faults := make([]string, len(f.views))
		for i, v := range f.views {
			faults[i] = fmt.Sprintf("PID %d (%s): %s", v.pid, v.comm, strings.Join(v.faults, ", "))
		}
		return fail(CheckViews, faults...)
	}
	switch f.viewsSeen {
	case 0:
		return pass(CheckViews, "no process inside")
	case 1:
		return pass(CheckViews, "the process inside sees the namespace's DNS view and no host resolver")
	}
	return pass(CheckViews, fmt.Sprintf("all %d processes inside see the namespace's DNS view and no host resolver", f.viewsSeen))
}

// resolverWarnings warns of each host resolver socket that a program run by `ip netns exec`
// (which hides nothing) would ask.
func resolverWarnings(name string, f *checkFacts) []string {
	var w []string
	for _, s := range f.resolvers {
		w = append(w, fmt.Sprintf("%s's socket %s exists: a program run with `ip netns exec %s` would resolve names through it, "+
			"outside the tunnel (`wgns exec` and services confined with `wgns unit install` cannot reach it)", s.Daemon, s.Path, name))
	}
	return w
}

func checkHandshake(f *checkFacts) CheckResult {
	if f.nsErr != nil {
		return noNamespace(CheckHandshake)
	}
	if f.wgErr != nil {
		return fail(CheckHandshake, "no WireGuard device to ask: "+f.wgErr.Error())
	}
	if len(f.peers) == 0 {
		return fail(CheckHandshake, "the WireGuard device has no peer")
	}
	maxAge := f.maxAge
	if maxAge <= 0 {
		maxAge = HandshakeMaxAge
	}
	roaming := map[string]bool{} // peers without an Endpoint: they find us, when they want to
	if f.cfg != nil {
		for _, p := range f.cfg.Peers {
			if p.Endpoint == "" {
				roaming[p.PublicKey.String()] = true
			}
		}
	}
	var faults, oks []string
	for _, p := range f.peers {
		if f.standingBy(p) {
			continue // carries nothing: checkFailover's
		}
		age := f.now.Sub(p.lastHandshake)
		shown := age.Round(time.Second)
		switch {
		case roaming[p.key] && (p.lastHandshake.IsZero() || age > maxAge):
			last := "no handshake yet"
			if !p.lastHandshake.IsZero() {
				last = fmt.Sprintf("latest handshake %s ago", shown)
			}
			oks = append(oks, fmt.Sprintf("peer %s: %s (it has no Endpoint: it roams, and handshakes when it sends)", p.key, last))
		case p.lastHandshake.IsZero():
			faults = append(faults, fmt.Sprintf("peer %s: no handshake yet", p.key))
		case age > maxAge:
			hint := ""
			if p.keepalive == 0 {
				hint = " (without PersistentKeepalive an idle tunnel handshakes only when it sends)"
			}
			faults = append(faults, fmt.Sprintf("peer %s: latest handshake %s ago, more than %s%s", p.key, shown, maxAge, hint))
		default:
			oks = append(oks, fmt.Sprintf("peer %s: latest handshake %s ago", p.key, shown))
		}
	}
	if len(faults) > 0 {
		return fail(CheckHandshake, faults...)
	}
	return pass(CheckHandshake, strings.Join(oks, "; "))
}
