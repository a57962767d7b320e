package integration

import (
	"context"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"golang.org/x/sys/unix"

	"github.com/wgns/wgns/wgns"
)

// The CNI tests run wgns as a CNI plugin the way container runtimes do, through libcni (the
// library containerd, CRI-O and podman use) and cnitool, against Debian's wireguard-go as the
// peer and Debian's containernetworking-plugins (ptp with host-local) as the primary plugin of a
// chain. A "pod" is a namespace made as runtimes make them (ip netns add); its DNS view is what a
// runtime would write from the result.

// Addresses of the CNI tests (TEST-NET only): the primary network's pods, a range standing for
// the cluster's services, and an address in it that the host world answers on.
const (
	cniPodRange     = "203.0.113.64/26"
	cniPodGateway   = "203.0.113.65"
	cniServiceRange = "203.0.113.128/26"
	cniServiceAddr  = "203.0.113.130"
)

// debianPlugins is where Debian's containernetworking-plugins are.
const debianPlugins = "/usr/lib/cni"

// cniModes are the WireGuard implementations the tests attach with: this kernel's default ("",
// as a config without "mode" gets), and the embedded one too where the default is the kernel's.
func cniModes() []string {
	if wgns.KernelWireGuard() {
		return []string{"", "userspace"}
	}
	return []string{""}
}

// modeName names a mode for subtests.
func modeName(m string) string {
	if m == "" {
		if wgns.KernelWireGuard() {
			return "default-kernel"
		}
		return "default-userspace"
	}
	return m
}

var varLibOnce sync.Once

// privateVarLib puts a writable overlay over the world's /var/lib (its upper layer in the world's
// /run), once: libcni's cache (/var/lib/cni), podman's and host-local's defaults must not reach
// the machine's disk.
func privateVarLib(t *testing.T) {
	t.Helper()
	var err error
	varLibOnce.Do(func() {
		const upper, work = "/run/.world-varlib/upper", "/run/.world-varlib/work"
		for _, d := range []string{upper, work} {
			if err = os.MkdirAll(d, 0o755); err != nil {
				return
			}
		}
		err = unix.Mount("overlay", "/var/lib", "overlay", 0, "lowerdir=/var/lib,upperdir="+upper+",workdir="+work)
	})
	if err != nil {
		t.Fatalf("mounting an overlay on the world's /var/lib: %v", err)
	}
}

// cniEnv is a CNI setup: a plugin directory with wgns in it (a link to the binary under test)
// beside Debian's plugins, a cache of libcni's own, a host-local data directory.
type cniEnv struct {
	binDir, cacheDir, ipamDir, confDir string
	cni                                *libcni.CNIConfig
}

func newCNIEnv(t *testing.T) *cniEnv {
	t.Helper()
	privateVarLib(t)
	dir := t.TempDir()
	e := &cniEnv{binDir: filepath.Join(dir, "bin"), cacheDir: filepath.Join(dir, "cache"), ipamDir: filepath.Join(dir, "ipam"),
		confDir: filepath.Join(dir, "net.d")}
	for _, d := range []string{e.binDir, e.cacheDir, e.ipamDir, e.confDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// As the README says to install it: the full wgns, linked (cnitool's test links the front).
	if err := os.Symlink(wgnsCore(), filepath.Join(e.binDir, "wgns")); err != nil {
		t.Fatal(err)
	}
	e.cni = libcni.NewCNIConfigWithCacheDir([]string{e.binDir, debianPlugins}, e.cacheDir, nil)
	return e
}

// path is CNI_PATH for cnitool and podman.
func (e *cniEnv) path() string { return e.binDir + ":" + debianPlugins }

// standaloneList is a network of wgns alone, CNI 1.1.0.
func standaloneList(t *testing.T, name, config, mode string) *libcni.NetworkConfigList {
	t.Helper()
	plugin := map[string]any{"type": "wgns", "config": config}
	if mode != "" {
		plugin["mode"] = mode
	}
	return confList(t, map[string]any{"cniVersion": "1.1.0", "name": name, "plugins": []any{plugin}})
}

// ptpPlugin is Debian's ptp with host-local on the pods' range, its data in e's directory;
// addresses are taken from first on (host-local keeps one pool per network name, and the
// networks of a test share the range).
func (e *cniEnv) ptpPlugin(first string) map[string]any {
	return map[string]any{"type": "ptp", "ipMasq": false, "ipam": map[string]any{
		"type": "host-local", "dataDir": e.ipamDir,
		"ranges": [][]map[string]any{{{"subnet": cniPodRange, "gateway": cniPodGateway, "rangeStart": first}}},
		"routes": []map[string]any{{"dst": "0.0.0.0/0"}}}}
}

// chainedList is ptp (with host-local) followed by wgns, keeping the pods' and services' ranges on
// ptp's interface: CNI 1.0.0, the newest Debian's ptp speaks.
func (e *cniEnv) chainedList(t *testing.T, name, config, mode string) *libcni.NetworkConfigList {
	t.Helper()
	plugin := map[string]any{"type": "wgns", "config": config, "keep": []string{cniPodRange, cniServiceRange}}
	if mode != "" {
		plugin["mode"] = mode
	}
	return confList(t, map[string]any{"cniVersion": "1.0.0", "name": name, "plugins": []any{e.ptpPlugin("203.0.113.70"), plugin}})
}

func confList(t *testing.T, m map[string]any) *libcni.NetworkConfigList {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	l, err := libcni.NetworkConfFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// pod makes a namespace as a runtime does; t.Cleanup deletes it.
func pod(t *testing.T, name string) string {
	t.Helper()
	mustRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() { run("ip", "netns", "del", name) })
	return "/run/netns/" + name
}

// podDNS writes the pod's DNS view from a CNI result, as a runtime writes a container's
// resolv.conf (ip netns exec binds /etc/netns/NAME/* over /etc).
func podDNS(t *testing.T, name string, res *types100.Result) {
	t.Helper()
	dir := filepath.Join("/etc/netns", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var b strings.Builder
	for _, s := range res.DNS.Nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(res.DNS.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(res.DNS.Search, " "))
	}
	b.WriteString("options timeout:1 attempts:2\n")
	for f, text := range map[string]string{"resolv.conf": b.String(), "nsswitch.conf": "hosts: files dns\n"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// inPod runs a shell command inside pod name.
func inPod(name, script string) (string, error) {
	return run("ip", "netns", "exec", name, "sh", "-c", script)
}

func mustInPod(t *testing.T, name, script string) string {
	t.Helper()
	out, err := inPod(name, script)
	if err != nil {
		t.Fatalf("in pod %s: %s: %v\n%s", name, script, err, out)
	}
	return out
}

// cniWaitTunnel waits until a ping through the pod's tunnel gets an answer.
func cniWaitTunnel(t *testing.T, name string) {
	t.Helper()
	waitFor(t, 20*time.Second, "a ping through the tunnel of pod "+name, func() bool {
		_, err := inPod(name, "ping -c1 -W1 "+peerTunnel4)
		return err == nil
	})
}

// cniHostName is the name an attachment's kernel interface has in the host namespace before its
// move, and its embedded device's control socket.
func cniHostName(k wgns.AttachKey) string { return "wgc" + k.ID()[:12] }

// learnCNIPort records the UDP port of the pod's tunnel, for the uplink's judge.
func (w *leakWorld) learnCNIPort(t *testing.T, podName, iface string, k wgns.AttachKey) {
	t.Helper()
	out, err := run("ip", "netns", "exec", podName, "wg", "show", iface, "listen-port") // kernel WireGuard
	if err != nil {
		out, err = run("wg", "show", cniHostName(k), "listen-port") // the embedded one, by its socket
	}
	if err != nil || strings.TrimSpace(out) == "" {
		t.Fatalf("no listen port for %s in pod %s: %v %s", iface, podName, err, out)
	}
	w.ports[strings.TrimSpace(out)] = true
}

// cniProbes runs the leak tests' probes inside pod name and returns, by label, whether each got
// through; extra adds probes of its own.
func cniProbes(t *testing.T, name string, extra map[string]string) map[string]bool {
	t.Helper()
	probes := outsideProbes()
	for l, c := range extra {
		probes[l] = c
	}
	out := mustInPod(t, name, parallelProbes(probes))
	return probeResults(t, out, probes)
}

// judgeProbes fails the test for a probe outside the tunnel that got through (unless want says
// it must), and for a control or wanted probe that did not.
func judgeProbes(t *testing.T, got map[string]bool, want map[string]bool) {
	t.Helper()
	labels := make([]string, 0, len(got))
	for l := range got {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, l := range labels {
		w, ok := want[l]
		switch {
		case ok:
			if got[l] != w {
				t.Errorf("probe %s: got through = %v, want %v", l, got[l], w)
			}
		case strings.HasPrefix(l, "t:"):
			if !got[l] {
				t.Errorf("control probe %s through the tunnel did not get through", l)
			}
		case got[l]:
			t.Errorf("LEAK: probe %s got through", l)
		}
	}
}

// tcpServer serves "hello" on the peer's tunnel address, port 8080, from the peer's namespace.
func tcpServer(t *testing.T, p *peer) {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", p.NS, "socat", "TCP-LISTEN:8080,bind="+peerTunnel4+",reuseaddr,fork", "SYSTEM:echo hello")
	startUntilEnd(t, srv)
	waitFor(t, 5*time.Second, "socat listening in "+p.NS, func() bool {
		return listening(p.NS, "tcp", "src", peerTunnel4+":8080")
	})
}

// assertTunnelWorks shows ping, DNS and TCP through the pod's tunnel.
func assertTunnelWorks(t *testing.T, podName string) {
	t.Helper()
	mustInPod(t, podName, "ping -c1 -W5 "+peerTunnel4)
	mustInPod(t, podName, "ping -6 -c1 -W5 "+peerTunnel6)
	if out := mustInPod(t, podName, "getent ahostsv4 "+leakDNSName); !strings.Contains(out, leakDNSAddr) {
		t.Errorf("DNS in pod %s: %q, want %s (the peer's dnsmasq, through the tunnel)", podName, out, leakDNSAddr)
	}
	if out := mustInPod(t, podName, "nc -w5 "+peerTunnel4+" 8080 </dev/null"); strings.TrimSpace(out) != "hello" {
		t.Errorf("TCP through the tunnel of pod %s: %q, want hello", podName, out)
	}
}

// assertPodBare checks what DEL leaves in a pod: no wgns table, no WireGuard interface, only the
// interfaces named; on the host, no interface, control socket, record or holder of the attachment.
func assertPodBare(t *testing.T, podName string, k wgns.AttachKey, links ...string) {
	t.Helper()
	if out := mustRun(t, "ip", "netns", "exec", podName, "nft", "list", "ruleset"); strings.TrimSpace(out) != "" {
		t.Errorf("pod %s keeps an nftables ruleset after DEL:\n%s", podName, out)
	}
	got := linkNames(mustRun(t, "ip", "-n", podName, "-o", "link", "show"))
	sort.Strings(got)
	want := append([]string{"lo"}, links...)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("pod %s has interfaces %v after DEL, want %v", podName, got, want)
	}
	host := cniHostName(k)
	if _, err := run("ip", "link", "show", host); err == nil {
		t.Errorf("interface %s is left in the host world", host)
	}
	for _, f := range []string{"/var/run/wireguard/" + host + ".sock", "/run/wgns/cni/" + k.ID() + ".json", "/run/wgns/cni/" + k.ID() + ".log"} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s is left after DEL", f)
		}
	}
	if pids := cniHolders(); len(pids) > 0 {
		t.Errorf("holder processes %v are left after DEL", pids)
	}
}

// cniHolders lists the wgns cni-holder processes of the world.
func cniHolders() []int {
	return pidsWhere(func(pid int) bool { return strings.Contains(cmdline(pid), "cni-holder") })
}

func addList(t *testing.T, e *cniEnv, l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) *types100.Result {
	t.Helper()
	r, err := e.cni.AddNetworkList(context.Background(), l, rt)
	if err != nil {
		t.Fatalf("ADD %s: %v", l.Name, err)
	}
	res, err := types100.NewResultFromResult(r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestIntegrationCNIStandalone: wgns alone in a pod's namespace, through libcni: ADD returns the
// WireGuard interface, its addresses and the tunnel's DNS; ping, DNS and TCP go through the tunnel
// and nothing else gets out (the probes of the leak tests, and a capture of the uplink that shows
// only WireGuard's UDP); STATUS and CHECK pass, CHECK names a removed firewall; DEL leaves the
// pod's namespace bare and nothing on the host, and a second DEL, and a DEL without CNI_NETNS,
// succeed.
func TestIntegrationCNIStandalone(t *testing.T) {
	for i, mode := range cniModes() {
		t.Run(modeName(mode), func(t *testing.T) {
			name := fmt.Sprintf("cs%d", i)
			w := newLeakWorld(t, name)
			tcpServer(t, w.p)
			e := newCNIEnv(t)
			podName := "cni-" + name
			netns := pod(t, podName)
			l := standaloneList(t, "wgvpn", w.config, mode)
			rt := &libcni.RuntimeConf{ContainerID: "ctr-" + name, NetNS: netns, IfName: "wg0"}
			k := wgns.AttachKey{Network: "wgvpn", ContainerID: rt.ContainerID, IfName: "wg0"}

			if err := e.cni.GetStatusNetworkList(context.Background(), l); err != nil {
				t.Errorf("STATUS: %v", err)
			}
			capture := startCapture(t, w.uplink)
			start := time.Now()
			res := addList(t, e, l, rt)
			t.Logf("ADD through libcni took %v", time.Since(start))
			t.Cleanup(func() { e.cni.DelNetworkList(context.Background(), l, rt) })
			if len(res.Interfaces) != 1 || res.Interfaces[0].Name != "wg0" || res.Interfaces[0].Sandbox != netns {
				t.Errorf("ADD's interfaces: %+v", res.Interfaces)
			}
			var addrs []string
			for _, ip := range res.IPs {
				addrs = append(addrs, ip.Address.String())
			}
			if want := []string{clientTunnel4 + "/24", clientTunnel6 + "/64"}; !slices.Equal(addrs, want) {
				t.Errorf("ADD's addresses %v, want %v", addrs, want)
			}
			if !slices.Equal(res.DNS.Nameservers, []string{peerTunnel4}) {
				t.Errorf("ADD's DNS %+v, want the tunnel's %s", res.DNS, peerTunnel4)
			}
			podDNS(t, podName, res)
			cniWaitTunnel(t, podName)
			w.learnCNIPort(t, podName, "wg0", k)
			assertTunnelWorks(t, podName)
			judgeProbes(t, cniProbes(t, podName, nil), nil)
			foreign, wg := w.uplinkForeign(capture.stop(t, false))
			for _, l := range foreign {
				t.Errorf("LEAK on the uplink: %s", l)
			}
			if wg == 0 {
				t.Error("the uplink carried no WireGuard packet")
			}
			if host := mustRun(t, "nft", "list", "ruleset"); strings.TrimSpace(host) != "" {
				t.Errorf("the host world has an nftables ruleset:\n%s", host)
			}

			if err := e.cni.CheckNetworkList(context.Background(), l, rt); err != nil {
				t.Errorf("CHECK: %v", err)
			}
			mustRun(t, "ip", "netns", "exec", podName, "nft", "delete", "table", "inet", "wgns")
			err := e.cni.CheckNetworkList(context.Background(), l, rt)
			if err == nil || !strings.Contains(err.Error(), "install firewall table inet wgns") {
				t.Errorf("CHECK of a pod whose firewall was removed: %v", err)
			}

			start = time.Now()
			if err := e.cni.DelNetworkList(context.Background(), l, rt); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			t.Logf("DEL through libcni took %v", time.Since(start))
			assertPodBare(t, podName, k)
			if err := e.cni.DelNetworkList(context.Background(), l, rt); err != nil {
				t.Errorf("a second DEL: %v", err)
			}
			noNetns := *rt
			noNetns.NetNS = ""
			if err := e.cni.DelNetworkList(context.Background(), l, &noNetns); err != nil {
				t.Errorf("DEL without CNI_NETNS: %v", err)
			}
		})
	}
}

// TestIntegrationCNIChained: wgns after Debian's ptp (with host-local), keeping the pods' and the
// services' ranges on ptp's eth0. The tunnel carries ping, DNS and TCP; the pod still reaches
// another pod of the primary network and a service address, and nothing else outside the tunnel:
// not the host world's addresses, not the peer's underlay, not an address the host world routes
// (ptp's default route stays, as the tunnel routes only its own range, and the firewall drops what
// it would carry). Captures on the uplink and on ptp's host side show it. DEL restores ptp's
// namespace as ptp made it, before ptp's DEL removes eth0.
func TestIntegrationCNIChained(t *testing.T) {
	for i, mode := range cniModes() {
		t.Run(modeName(mode), func(t *testing.T) {
			name := fmt.Sprintf("cc%d", i)
			w := newLeakWorld(t, name)
			tcpServer(t, w.p)
			e := newCNIEnv(t)
			// A service address the host world answers on, in the kept services' range.
			mustRun(t, "ip", "addr", "add", cniServiceAddr+"/32", "dev", "lo")
			t.Cleanup(func() { run("ip", "addr", "del", cniServiceAddr+"/32", "dev", "lo") })
			svc := exec.Command("socat", "TCP-LISTEN:8081,bind="+cniServiceAddr+",reuseaddr,fork", "SYSTEM:echo service")
			startUntilEnd(t, svc)

			// A neighbour: a pod of the primary network only.
			ptpOnly := confList(t, map[string]any{"cniVersion": "1.0.0", "name": "cluster", "plugins": []any{e.ptpPlugin("203.0.113.100")}})
			nbName := "nb-" + name
			nbRT := &libcni.RuntimeConf{ContainerID: "nb-" + name, NetNS: pod(t, nbName), IfName: "eth0"}
			nb := addList(t, e, ptpOnly, nbRT)
			t.Cleanup(func() { e.cni.DelNetworkList(context.Background(), ptpOnly, nbRT) })
			nbAddr := strings.Split(nb.IPs[0].Address.String(), "/")[0]

			podName := "cni-" + name
			netns := pod(t, podName)
			l := e.chainedList(t, "wgchain", w.config, mode)
			rt := &libcni.RuntimeConf{ContainerID: "ctr-" + name, NetNS: netns, IfName: "eth0"}
			k := wgns.AttachKey{Network: "wgchain", ContainerID: rt.ContainerID, IfName: "eth0"}
			routesBefore := "" // ptp's own routes, as a ptp-only pod has them
			{
				out := mustRun(t, "ip", "-n", nbName, "route", "show")
				routesBefore = strings.ReplaceAll(out, nbAddr, "ADDR")
			}
			uplink := startCapture(t, w.uplink)
			res := addList(t, e, l, rt)
			t.Cleanup(func() { e.cni.DelNetworkList(context.Background(), l, rt) })
			var names []string
			for _, i := range res.Interfaces {
				names = append(names, i.Name+"@"+i.Sandbox)
			}
			if len(names) != 3 || names[1] != "eth0@"+netns || names[2] != "wg0@"+netns {
				t.Errorf("ADD's interfaces: %v, want ptp's two and wg0 in the pod", names)
			}
			if !slices.Equal(res.DNS.Nameservers, []string{peerTunnel4}) {
				t.Errorf("ADD's DNS %+v, want the tunnel's %s", res.DNS, peerTunnel4)
			}
			veth := res.Interfaces[0].Name // ptp's host side
			primary := startCapture(t, veth)
			podDNS(t, podName, res)
			cniWaitTunnel(t, podName)
			w.learnCNIPort(t, podName, "wg0", k)
			assertTunnelWorks(t, podName)
			waitFor(t, 5*time.Second, "socat listening on "+cniServiceAddr, func() bool {
				return listening("", "tcp", "src", cniServiceAddr+":8081")
			})
			if out, err := inPod(podName, "nc -w5 "+cniServiceAddr+" 8081 </dev/null"); err != nil || strings.TrimSpace(out) != "service" {
				t.Logf("routes:\n%s\nruleset:\n%s\nhost routes:\n%s", mustRun(t, "ip", "-n", podName, "route"), mustRun(t, "ip", "netns", "exec", podName, "nft", "list", "ruleset"), mustRun(t, "ip", "route"))
				t.Errorf("TCP to the service address %s on the primary interface: %q", cniServiceAddr, out)
			}
			got := cniProbes(t, podName, map[string]string{
				"k:neighbour:icmp": "ping -c1 -W2 " + nbAddr,
				"k:gateway:icmp":   "ping -c1 -W2 " + cniPodGateway,
				"k:service:tcp":    "nc -z -w2 " + cniServiceAddr + " 8081",
			})
			judgeProbes(t, got, map[string]bool{"k:neighbour:icmp": true, "k:gateway:icmp": true, "k:service:tcp": true})
			foreign, wg := w.uplinkForeign(uplink.stop(t, false))
			for _, l := range foreign {
				t.Errorf("LEAK on the uplink: %s", l)
			}
			if wg == 0 {
				t.Error("the uplink carried no WireGuard packet")
			}
			for _, l := range primary.stop(t, false) {
				if !cniKept(l) {
					t.Errorf("LEAK on ptp's interface %s: %s", veth, l)
				}
			}

			// CHECK of the chain stops at Debian's ptp (1.1.1), whose CHECK looks for every address
			// of the result on its own interface, wg0's too (upstream's ptp, bridge and macvlan do
			// the same): a limit of theirs for any chained plugin that adds addresses. wgns's own
			// CHECK, with the chain's result as its prevResult, passes, and names a fault.
			err := e.cni.CheckNetworkList(context.Background(), l, rt)
			if err == nil || err.Error() != "Failed to match addr "+clientTunnel4+"/24 on interface eth0" {
				t.Errorf("CHECK of the chain: %v, want ptp's refusal of wg0's address", err)
			}
			var raw map[string]any
			json.Unmarshal(l.Plugins[1].Bytes, &raw)
			raw["name"], raw["cniVersion"] = l.Name, l.CNIVersion
			b, _ := json.Marshal(raw)
			wgPlugin, err := libcni.NetworkPluginConfFromBytes(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.cni.CheckNetwork(context.Background(), wgPlugin, rt); err != nil {
				t.Errorf("CHECK of wgns in the chain: %v", err)
			}
			mustRun(t, "ip", "-n", podName, "route", "del", cniServiceRange)
			if err := e.cni.CheckNetwork(context.Background(), wgPlugin, rt); err == nil || !strings.Contains(err.Error(), "add route "+cniServiceRange+" via "+cniPodGateway+" on eth0 (kept off the tunnel)") {
				t.Errorf("CHECK of wgns with a kept route removed: %v", err)
			}
			mustRun(t, "ip", "-n", podName, "route", "add", cniServiceRange, "via", cniPodGateway, "dev", "eth0")
			// DEL of wgns alone (the chain's last plugin) puts ptp's routes back.
			delete(raw, "name")
			delete(raw, "cniVersion")
			wgOnly := confList(t, map[string]any{"cniVersion": "1.0.0", "name": "wgchain", "plugins": []any{raw}})
			if err := e.cni.DelNetworkList(context.Background(), wgOnly, rt); err != nil {
				t.Fatalf("DEL of wgns: %v", err)
			}
			addr := strings.Split(res.IPs[0].Address.String(), "/")[0]
			if after := strings.ReplaceAll(mustRun(t, "ip", "-n", podName, "route", "show"), addr, "ADDR"); after != routesBefore {
				t.Errorf("after wgns's DEL the pod's routes are\n%s\nwant ptp's own\n%s", after, routesBefore)
			}
			assertPodBare(t, podName, k, "eth0")
			if err := e.cni.DelNetworkList(context.Background(), l, rt); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			assertPodBare(t, podName, k)
		})
	}
}

// cniKept reports whether a packet line of a capture on ptp's host side belongs on the primary
// network: address resolution, IPv6 link housekeeping, or IP between addresses of the kept
// ranges.
func cniKept(line string) bool {
	if strings.HasPrefix(line, "ARP,") {
		return true
	}
	f := strings.Fields(line)
	if len(f) < 4 || (f[0] != "IP" && f[0] != "IP6") || f[2] != ">" {
		return false
	}
	kept := []netip.Prefix{netip.MustParsePrefix(cniPodRange), netip.MustParsePrefix(cniServiceRange)}
	in := func(s string) bool {
		if i := strings.LastIndexByte(s, '.'); i >= 0 && (f[0] == "IP6" || strings.Count(s, ".") == 4) {
			s = s[:i] // a port
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return false
		}
		if f[0] == "IP6" {
			return a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsUnspecified()
		}
		return slices.ContainsFunc(kept, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	return in(f[1]) && in(strings.TrimSuffix(f[3], ":"))
}

// TestIntegrationCNIGarbage: GC, through libcni, removes an attachment the runtime lost (its
// holder killed, or for kernel WireGuard nothing to kill, and its namespace deleted, its record
// left), and keeps the one still listed as valid.
func TestIntegrationCNIGarbage(t *testing.T) {
	const name = "cg"
	w := newLeakWorld(t, name)
	e := newCNIEnv(t)
	l := standaloneList(t, "wggc", w.config, "")
	live := &libcni.RuntimeConf{ContainerID: "live", NetNS: pod(t, "cni-live"), IfName: "wg0"}
	lost := &libcni.RuntimeConf{ContainerID: "lost", NetNS: pod(t, "cni-lost"), IfName: "wg0"}
	// The two pods share the peer's one client key and address: only one handshakes at a time,
	// which does not matter here.
	addList(t, e, l, live)
	t.Cleanup(func() { e.cni.DelNetworkList(context.Background(), l, live) })
	addList(t, e, l, lost)
	lostKey := wgns.AttachKey{Network: "wggc", ContainerID: "lost", IfName: "wg0"}
	recPath := "/run/wgns/cni/" + lostKey.ID() + ".json"
	var rec struct {
		PID int `json:"pid"`
	}
	b, err := os.ReadFile(recPath)
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &rec)
	if rec.PID != 0 {
		if err := syscall.Kill(rec.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the lost attachment's holder to die", func() bool { return syscall.Kill(rec.PID, 0) != nil })
	}
	mustRun(t, "ip", "netns", "del", "cni-lost")

	// A runtime that lost its own cache: only the plugin's GC knows the lost attachment.
	fresh := libcni.NewCNIConfigWithCacheDir([]string{e.binDir, debianPlugins}, t.TempDir(), nil)
	if err := fresh.GCNetworkList(context.Background(), l, &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: "live", IfName: "wg0"}}}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if _, err := os.Stat(recPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("GC left the lost attachment's record: %v", err)
	}
	if _, err := os.Stat("/var/run/wireguard/" + cniHostName(lostKey) + ".sock"); err == nil {
		t.Error("GC left the lost attachment's control socket")
	}
	if err := e.cni.CheckNetworkList(context.Background(), l, live); err != nil {
		t.Errorf("CHECK of the attachment GC was told is valid: %v", err)
	}
	if err := e.cni.DelNetworkList(context.Background(), l, live); err != nil {
		t.Fatal(err)
	}
	if pids := cniHolders(); len(pids) > 0 {
		t.Errorf("holders left: %v", pids)
	}
}

// TestIntegrationCNITool: cnitool, built from the CNI module, does ADD, CHECK and DEL of a wgns
// network from the shell, with the network's conflist in a directory of its own.
func TestIntegrationCNITool(t *testing.T) {
	const name = "ct"
	w := newLeakWorld(t, name)
	e := newCNIEnv(t)
	// Through the front this time, which hands CNI to the full wgns with the environment and
	// stdin as they came.
	link := filepath.Join(e.binDir, "wgns")
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(wgnsBin, link); err != nil {
		t.Fatal(err)
	}
	tool := filepath.Join(t.TempDir(), "cnitool")
	build := exec.Command("go", "build", "-o", tool, "github.com/containernetworking/cni/cnitool")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building cnitool: %v\n%s", err, out)
	}
	conflist := fmt.Sprintf(`{"cniVersion": "1.1.0", "name": "wgtool", "plugins": [{"type": "wgns", "config": %q}]}`, w.config)
	if err := os.WriteFile(filepath.Join(e.confDir, "10-wgtool.conflist"), []byte(conflist), 0o644); err != nil {
		t.Fatal(err)
	}
	podName := "cni-" + name
	netns := pod(t, podName)
	cnitool := func(cmd string) (string, error) {
		c := exec.Command(tool, cmd, "wgtool", netns)
		c.Env = append(os.Environ(), "NETCONFPATH="+e.confDir, "CNI_PATH="+e.path(), "CNI_IFNAME=wg0")
		out, err := c.CombinedOutput()
		return string(out), err
	}
	out, err := cnitool("add")
	t.Cleanup(func() { cnitool("del") })
	if err != nil {
		t.Fatalf("cnitool add: %v\n%s", err, out)
	}
	r, err := types100.NewResultFromResult(mustResult(t, out))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Interfaces) != 1 || r.Interfaces[0].Name != "wg0" || !slices.Equal(r.DNS.Nameservers, []string{peerTunnel4}) {
		t.Errorf("cnitool add printed %s", out)
	}
	podDNS(t, podName, r)
	cniWaitTunnel(t, podName)
	if out := mustInPod(t, podName, "getent ahostsv4 "+leakDNSName); !strings.Contains(out, leakDNSAddr) {
		t.Errorf("DNS in pod %s: %q", podName, out)
	}
	if out, err := cnitool("check"); err != nil {
		t.Errorf("cnitool check: %v\n%s", err, out)
	}
	mustRun(t, "ip", "-n", podName, "link", "set", "wg0", "down")
	if out, err := cnitool("check"); err == nil || !strings.Contains(out, "bring interface wg0 up") {
		t.Errorf("cnitool check of a pod whose wg0 is down: %v\n%s", err, out)
	}
	if out, err := cnitool("del"); err != nil {
		t.Fatalf("cnitool del: %v\n%s", err, out)
	}
	k := wgns.AttachKey{Network: "wgtool", IfName: "wg0"}
	k.ContainerID = cnitoolContainerID(netns)
	assertPodBare(t, podName, k)
	if out, err := cnitool("del"); err != nil {
		t.Errorf("a second cnitool del: %v\n%s", err, out)
	}
}

// mustResult decodes a result as cnitool prints it.
func mustResult(t *testing.T, out string) types.Result {
	t.Helper()
	r, err := types100.NewResult([]byte(out[strings.Index(out, "{"):]))
	if err != nil {
		t.Fatalf("decoding cnitool's result: %v\n%s", err, out)
	}
	return r
}

// cnitoolContainerID is the container ID cnitool makes up for a namespace path.
func cnitoolContainerID(netns string) string {
	s := sha512.Sum512([]byte(netns))
	return fmt.Sprintf("cnitool-%x", s[:10])
}

// TestIntegrationCNIFailedAddLeavesNothing: an ADD that fails leaves the pod and the host as they
// were: one refused before it makes anything (an endpoint that does not resolve), and one whose
// process is killed half-way (a test build's WGNS_TEST_CRASH_AT; the plugin itself for kernel
// WireGuard, the holder for the embedded one), after which the runtime's DEL clears the rest.
func TestIntegrationCNIFailedAddLeavesNothing(t *testing.T) {
	const name = "cf"
	w := newLeakWorld(t, name)
	e := newCNIEnv(t)
	podName := "cni-" + name
	netns := pod(t, podName)
	rt := &libcni.RuntimeConf{ContainerID: "ctr-" + name, NetNS: netns, IfName: "wg0"}
	k := wgns.AttachKey{Network: "wgfail", ContainerID: rt.ContainerID, IfName: "wg0"}

	bad := filepath.Join(t.TempDir(), "bad.conf")
	b, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), "Endpoint = "+peerUnderlay4, "Endpoint = peer.invalid", 1))
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = e.cni.AddNetworkList(context.Background(), standaloneList(t, "wgfail", bad, ""), rt)
	if err == nil || !strings.Contains(err.Error(), `resolving endpoint "peer.invalid"`) {
		t.Errorf("ADD with an endpoint that does not resolve: %v", err)
	}
	assertPodBare(t, podName, k)
	if _, err := os.Stat("/run/wgns/cni/" + k.ID() + ".lock"); err == nil {
		t.Error("a failed ADD left its lock file")
	}

	for _, point := range []string{"firewall", "move", "routes", "peers"} {
		t.Run("crash at "+point, func(t *testing.T) {
			l := standaloneList(t, "wgfail", w.config, "")
			t.Setenv("WGNS_TEST_CRASH_AT", point)
			_, err := e.cni.AddNetworkList(context.Background(), l, rt)
			os.Unsetenv("WGNS_TEST_CRASH_AT")
			if err == nil {
				e.cni.DelNetworkList(context.Background(), l, rt)
				t.Skip("WGNS_BIN is not a test build: it has no crash points")
			}
			t.Logf("ADD killed at %s: %v", point, err)
			if err := e.cni.DelNetworkList(context.Background(), l, rt); err != nil {
				t.Fatalf("DEL after an ADD killed at %s: %v", point, err)
			}
			assertPodBare(t, podName, k)
			if host := mustRun(t, "nft", "list", "ruleset"); strings.TrimSpace(host) != "" {
				t.Errorf("the host world has an nftables ruleset:\n%s", host)
			}
		})
	}
}

// cniRunAs runs the wgns binary as a CNI plugin with command cmd as uid (no groups), conf on
// stdin, and returns stdout and the exit code.
func cniRunAs(t *testing.T, uid int, cmd string, rt *libcni.RuntimeConf, conf []byte, args ...string) (string, int) {
	t.Helper()
	bin := copyWgns(t)
	c := exec.Command(bin, args...)
	c.Env = []string{"PATH=/usr/bin:/bin", "CNI_PATH=" + filepath.Dir(bin)}
	if cmd != "" {
		c.Env = append(c.Env, "CNI_COMMAND="+cmd, "CNI_CONTAINERID="+rt.ContainerID, "CNI_NETNS="+rt.NetNS, "CNI_IFNAME="+rt.IfName)
	}
	c.Stdin = strings.NewReader(string(conf))
	if uid != 0 {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}}
	}
	out, _, code := runCmd(t, c)
	return out, code
}

// TestIntegrationCNIRefusals: what a runtime (or a user) must not get from the plugin. A network
// whose CNI_NETNS is the host's own namespace is refused before anything is made (its firewall
// would cut the host off); a config another user could change is refused; a user who is not root
// gets a refusal from every command but VERSION, and the attachment root made stays as it is;
// the holder command refuses such a user too; the records are root's alone.
func TestIntegrationCNIRefusals(t *testing.T) {
	const name = "cr"
	w := newLeakWorld(t, name)
	e := newCNIEnv(t)
	l := standaloneList(t, "wgref", w.config, "")
	before := hostSnapshot(t)

	host := &libcni.RuntimeConf{ContainerID: "host", NetNS: "/proc/1/ns/net", IfName: "wg0"}
	_, err := e.cni.AddNetworkList(context.Background(), l, host)
	if err == nil || !strings.Contains(err.Error(), "/proc/1/ns/net is the host's own network namespace (the one wgns runs in); refusing to confine it") {
		t.Errorf("ADD into the host's namespace: %v", err)
	}
	if after := hostSnapshot(t); after != before {
		t.Errorf("a refused ADD changed the host world:\n%s", lineDiff(before, after))
	}

	const uid = 4321
	theirs := filepath.Join(t.TempDir(), "theirs.conf")
	b, _ := os.ReadFile(w.config)
	os.WriteFile(theirs, b, 0o600)
	os.Chown(theirs, uid, uid)
	podName := "cni-" + name
	rt := &libcni.RuntimeConf{ContainerID: "ctr-" + name, NetNS: pod(t, podName), IfName: "wg0"}
	_, err = e.cni.AddNetworkList(context.Background(), standaloneList(t, "wgref", theirs, ""), rt)
	if err == nil || !strings.Contains(err.Error(), "owned by uid 4321, not root") {
		t.Errorf("ADD with a config another user owns: %v", err)
	}
	assertPodBare(t, podName, wgns.AttachKey{Network: "wgref", ContainerID: rt.ContainerID, IfName: "wg0"})

	addList(t, e, l, rt)
	t.Cleanup(func() { e.cni.DelNetworkList(context.Background(), l, rt) })
	conf, _ := json.Marshal(map[string]any{"cniVersion": "1.1.0", "name": "wgref", "type": "wgns", "config": w.config})
	for _, cmd := range []string{"ADD", "DEL", "CHECK", "GC", "STATUS"} {
		out, code := cniRunAs(t, uid, cmd, rt, conf)
		if code == 0 || !strings.Contains(out, "wgns as a CNI plugin needs root") || !strings.Contains(out, `"code": 100`) {
			t.Errorf("%s as uid %d: exit %d\n%s", cmd, uid, code, out)
		}
	}
	if out, code := cniRunAs(t, uid, "VERSION", rt, conf); code != 0 || !strings.Contains(out, `"1.1.0"`) {
		t.Errorf("VERSION as uid %d: exit %d\n%s", uid, code, out)
	}
	if out, code := cniRunAs(t, uid, "", rt, nil, "cni-holder", "--ready-fd", "3", "--spec-fd", "4"); code == 0 {
		t.Errorf("wgns cni-holder as uid %d: exit 0\n%s", uid, out)
	}
	if err := e.cni.CheckNetworkList(context.Background(), l, rt); err != nil {
		t.Errorf("CHECK after the user's attempts: %v", err)
	}
	for path, want := range map[string]os.FileMode{"/run/wgns": 0o700, "/run/wgns/cni": 0o700} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, mode %v, want %v", path, err, fi.Mode().Perm(), want)
		}
	}
	recs, _ := filepath.Glob("/run/wgns/cni/*")
	for _, r := range recs {
		if fi, err := os.Stat(r); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, want root's alone", r, fi.Mode().Perm())
		}
	}
}

// TestIntegrationCNISecondary: wgns as a second network of a pod whose own network (Debian's ptp)
// was attached first, the way Multus attaches a secondary network (each network its own ADD, the
// second with CNI_IFNAME net1, no prevResult), with "primary": "eth0" and the kept ranges. The
// tunnel carries ping, DNS and TCP; the pod reaches its neighbour and the gateway on eth0 and
// nothing else outside the tunnel; DEL of wgns gives ptp its default route back.
func TestIntegrationCNISecondary(t *testing.T) {
	const name = "c2"
	w := newLeakWorld(t, name)
	tcpServer(t, w.p)
	e := newCNIEnv(t)
	cluster := confList(t, map[string]any{"cniVersion": "1.0.0", "name": "cluster2", "plugins": []any{e.ptpPlugin("203.0.113.70")}})
	nbRT := &libcni.RuntimeConf{ContainerID: "nb-" + name, NetNS: pod(t, "nb-"+name), IfName: "eth0"}
	nb := addList(t, e, confList(t, map[string]any{"cniVersion": "1.0.0", "name": "cluster2", "plugins": []any{e.ptpPlugin("203.0.113.100")}}), nbRT)
	t.Cleanup(func() { e.cni.DelNetworkList(context.Background(), cluster, nbRT) })
	nbAddr := strings.Split(nb.IPs[0].Address.String(), "/")[0]

	podName := "cni-" + name
	netns := pod(t, podName)
	ownRT := &libcni.RuntimeConf{ContainerID: "ctr-" + name, NetNS: netns, IfName: "eth0"}
	addList(t, e, cluster, ownRT)
	t.Cleanup(func() { e.cni.DelNetworkList(context.Background(), cluster, ownRT) })
	ptpRoutes := mustRun(t, "ip", "-n", podName, "route", "show")

	l := confList(t, map[string]any{"cniVersion": "1.1.0", "name": "wgside", "plugins": []any{map[string]any{
		"type": "wgns", "config": w.config, "primary": "eth0", "keep": []string{cniPodRange}}}})
	rt := &libcni.RuntimeConf{ContainerID: "ctr-" + name, NetNS: netns, IfName: "net1"}
	k := wgns.AttachKey{Network: "wgside", ContainerID: rt.ContainerID, IfName: "net1"}
	capture := startCapture(t, w.uplink)
	res := addList(t, e, l, rt)
	t.Cleanup(func() { e.cni.DelNetworkList(context.Background(), l, rt) })
	if len(res.Interfaces) != 1 || res.Interfaces[0].Name != "net1" {
		t.Errorf("ADD's interfaces: %+v", res.Interfaces)
	}
	podDNS(t, podName, res)
	cniWaitTunnel(t, podName)
	w.learnCNIPort(t, podName, "net1", k)
	assertTunnelWorks(t, podName)
	got := cniProbes(t, podName, map[string]string{
		"k:neighbour:icmp": "ping -c1 -W2 " + nbAddr,
		"k:gateway:icmp":   "ping -c1 -W2 " + cniPodGateway,
	})
	judgeProbes(t, got, map[string]bool{"k:neighbour:icmp": true, "k:gateway:icmp": true})
	foreign, wg := w.uplinkForeign(capture.stop(t, false))
	for _, l := range foreign {
		t.Errorf("LEAK on the uplink: %s", l)
	}
	if wg == 0 {
		t.Error("the uplink carried no WireGuard packet")
	}
	if err := e.cni.CheckNetworkList(context.Background(), l, rt); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	if err := e.cni.DelNetworkList(context.Background(), l, rt); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if after := mustRun(t, "ip", "-n", podName, "route", "show"); after != ptpRoutes {
		t.Errorf("after wgns's DEL the pod's routes are\n%s\nwant ptp's\n%s", after, ptpRoutes)
	}
	assertPodBare(t, podName, k, "eth0")
}
