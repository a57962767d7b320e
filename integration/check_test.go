package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// checkReport is `wgns check --json` parsed.
type checkReport struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Checks []struct {
		Name   string `json:"name"`
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
	} `json:"checks"`
	Warnings []string `json:"warnings"`
}

// checkResult is one run of `wgns check --json`.
type checkResult struct {
	args        []string
	out, errOut string
	code        int
	err         error // the run itself failed
}

// runCheck runs `wgns check --json [args] name`. It may run on any goroutine.
func runCheck(name string, args ...string) checkResult {
	r := checkResult{args: append(append([]string{"check", "--json"}, args...), name)}
	cmd := exec.Command(wgnsBin, r.args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r.out, r.errOut = o.String(), e.String()
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		r.err = err
	}
	return r
}

func (r checkResult) report(t *testing.T) checkReport {
	t.Helper()
	if r.err != nil {
		t.Fatalf("wgns %s: %v", strings.Join(r.args, " "), r.err)
	}
	var rep checkReport
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatalf("wgns %s: exit %d, %v\n%s\n%s", strings.Join(r.args, " "), r.code, err, r.out, r.errOut)
	}
	return rep
}

// checkReportOf runs `wgns check --json` and returns its report and exit status.
func checkReportOf(t *testing.T, name string, args ...string) (checkReport, int) {
	t.Helper()
	r := runCheck(name, args...)
	return r.report(t), r.code
}

// assertCheck runs wgns check and asserts that exactly the checks in failing fail, each with a
// detail containing the text given, and that the exit status says so.
func assertCheck(t *testing.T, name string, failing map[string]string, args ...string) checkReport {
	t.Helper()
	return assertCheckResult(t, runCheck(name, args...), failing)
}

// assertCheckResult is assertCheck for a run already made (by runCheck, on any goroutine).
func assertCheckResult(t *testing.T, res checkResult, failing map[string]string) checkReport {
	t.Helper()
	r := res.report(t)
	want := 0
	if len(failing) > 0 {
		want = 1
	}
	if res.code != want || r.OK != (len(failing) == 0) {
		t.Errorf("wgns check: exit %d, ok %v; want exit %d", res.code, r.OK, want)
	}
	seen := 0
	for _, c := range r.Checks {
		want, shouldFail := failing[c.Name]
		switch {
		case shouldFail && c.OK:
			t.Errorf("check %s: ok (%s), want FAIL naming %q", c.Name, c.Detail, want)
		case shouldFail && !strings.Contains(c.Detail, want):
			t.Errorf("check %s: FAIL %q, want it to name %q", c.Name, c.Detail, want)
		case !shouldFail && !c.OK:
			t.Errorf("check %s: unexpected FAIL: %s", c.Name, c.Detail)
		}
		if shouldFail {
			seen++
		}
	}
	if seen != len(failing) {
		t.Errorf("wgns check reported %d of the %d checks expected to fail: %+v", seen, len(failing), r.Checks)
	}
	return r
}

// TestIntegrationCheck: wgns check passes on a healthy tunnel (text and JSON), and each fault
// made by hand is named by the one check it concerns, with exit status 1; once the fault is
// undone the check passes again.
func TestIntegrationCheck(t *testing.T) {
	const name = "ck"
	p := newPeer(t, name)
	startDNS(t, p, dnsName, dnsAddr)
	tunnelUp(t, p, name)
	waitTunnel(t, name)
	process := fmt.Sprintf(`the embedded WireGuard runs as PID %d`, holderPID(t, name))
	if kernelMode() {
		process = fmt.Sprintf(`the supervisor runs as PID %d`, holderPID(t, name))
	}

	out, errOut, code := wgnsRun(t, "check", name)
	wantLines := []string{
		`ok    config      ` + regexp.QuoteMeta(p.ConfigPath),
		`ok    namespace   /run/netns/ck is the namespace wgns made \(\d+:\d+\), ready`,
		`ok    process     ` + process,
		`ok    interfaces  only lo and ck`,
		`ok    routes      all \d+ routes via lo or ck; AllowedIPs routed: 0\.0\.0\.0/0, ::/0`,
		`ok    rules       only the default rules \(lookup local, main, default\)`,
		`ok    firewall    table inet wgns as wgns installed it; \d+ packets dropped`,
		`ok    dns         /etc/netns/ck/resolv\.conf and nsswitch\.conf as written \(nameserver 192\.0\.2\.1\)`,
		`ok    views       no process inside`,
		`ok    nameserver  192\.0\.2\.1 answered through the tunnel in \d+\.\d ms \(\w+\)`,
		`ok    handshake   peer ` + regexp.QuoteMeta(p.Key.PublicKey().String()) + `: latest handshake \d+s ago`,
		`ck: all 11 checks ok`,
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || len(lines) != len(wantLines) {
		t.Fatalf("wgns check %s: exit %d, %d lines, want 0 and %d\n%s%s", name, code, len(lines), len(wantLines), out, errOut)
	}
	for i, re := range wantLines {
		if !regexp.MustCompile("^" + re + "$").MatchString(lines[i]) {
			t.Errorf("line %d: %q\nwant %q", i+1, lines[i], re)
		}
	}
	assertCheck(t, name, nil)

	// What wgns wrote, to put back after a fault.
	resolv, err := os.ReadFile("/etc/netns/" + name + "/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	nsswitch, err := os.ReadFile("/etc/netns/" + name + "/nsswitch.conf")
	if err != nil {
		t.Fatal(err)
	}
	write := func(path string, b []byte) func(t *testing.T) {
		return func(t *testing.T) {
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	xw, xn := "xw-"+name, "xn-"+name
	ip := func(args ...string) func(t *testing.T) {
		return func(t *testing.T) { mustRun(t, "ip", args...) }
	}
	nft := func(args ...string) func(t *testing.T) {
		return func(t *testing.T) { mustRun(t, "ip", append([]string{"netns", "exec", name, "nft"}, args...)...) }
	}
	steps := func(fs ...func(t *testing.T)) func(t *testing.T) {
		return func(t *testing.T) {
			for _, f := range fs {
				f(t)
			}
		}
	}
	faults := []struct {
		name    string
		make    func(t *testing.T)
		undo    func(t *testing.T) // nil: the fault stays (the last case)
		failing map[string]string
		text    string // a line the text output must hold
	}{
		{
			name:    "extra interface",
			make:    ip("link", "add", xw, "type", "veth", "peer", "name", xn, "netns", name),
			undo:    ip("link", "del", xw),
			failing: map[string]string{"interfaces": "extra interface " + xn + " (veth, down)"},
			text:    "FAIL  interfaces  extra interface " + xn + " (veth, down)\n",
		},
		{
			name: "route out of another interface, in another table",
			make: steps(ip("link", "add", xw, "type", "veth", "peer", "name", xn, "netns", name),
				ip("-n", name, "link", "set", xn, "up"),
				ip("-n", name, "route", "add", "203.0.113.0/24", "dev", xn, "table", "100")),
			undo: ip("link", "del", xw),
			failing: map[string]string{
				"interfaces": "extra interface " + xn + " (veth, up)",
				"routes":     "not via the tunnel: 203.0.113.0/24 dev " + xn + " table 100",
			},
		},
		{
			name:    "policy rule added",
			make:    ip("-n", name, "rule", "add", "pref", "100", "from", clientTunnel4, "lookup", "100"),
			undo:    ip("-n", name, "rule", "del", "pref", "100"),
			failing: map[string]string{"rules": "unexpected: -4 100: from " + clientTunnel4 + "/32 lookup 100"},
			text:    "FAIL  rules       unexpected: -4 100: from " + clientTunnel4 + "/32 lookup 100\n",
		},
		{
			name:    "default rule deleted",
			make:    ip("-n", name, "-6", "rule", "del", "pref", "32766"),
			undo:    ip("-n", name, "-6", "rule", "add", "pref", "32766", "lookup", "main"),
			failing: map[string]string{"rules": "missing: -6 32766: from all lookup main"},
		},
		{
			name:    "firewall policy changed",
			make:    nft("add", "chain", "inet", "wgns", "output", "{ policy accept ; }"),
			undo:    nft("add", "chain", "inet", "wgns", "output", "{ policy drop ; }"),
			failing: map[string]string{"firewall": "table inet wgns was altered: chain output: policy accept, want drop"},
		},
		{
			name: "firewall rule added",
			make: nft("insert", "rule", "inet", "wgns", "output", "meta", "l4proto", "udp", "accept"),
			undo: func(t *testing.T) {
				out := mustRun(t, "ip", "netns", "exec", name, "nft", "-a", "list", "chain", "inet", "wgns", "output")
				m := regexp.MustCompile(`meta l4proto udp accept # handle (\d+)`).FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("the added rule is not in:\n%s", out)
				}
				nft("delete", "rule", "inet", "wgns", "output", "handle", m[1])(t)
			},
			failing: map[string]string{"firewall": "chain output: unexpected rule"},
		},
		{
			name:    "resolv.conf changed",
			make:    write("/etc/netns/"+name+"/resolv.conf", append(append([]byte{}, resolv...), "nameserver 203.0.113.53\n"...)),
			undo:    write("/etc/netns/"+name+"/resolv.conf", resolv),
			failing: map[string]string{"dns": "/etc/netns/" + name + "/resolv.conf: content differs"},
		},
		{
			name: "resolv.conf removed",
			make: func(t *testing.T) {
				if err := os.Remove("/etc/netns/" + name + "/resolv.conf"); err != nil {
					t.Fatal(err)
				}
			},
			undo:    write("/etc/netns/"+name+"/resolv.conf", resolv),
			failing: map[string]string{"dns": "/etc/netns/" + name + "/resolv.conf: missing"},
		},
		{
			name: "nsswitch.conf asks systemd-resolved",
			make: write("/etc/netns/"+name+"/nsswitch.conf",
				regexp.MustCompile(`(?m)^hosts:.*$`).ReplaceAll(nsswitch, []byte("hosts: files resolve [!UNAVAIL=return] dns"))),
			undo:    write("/etc/netns/"+name+"/nsswitch.conf", nsswitch),
			failing: map[string]string{"dns": "/etc/netns/" + name + "/nsswitch.conf: content differs"},
		},
		{
			name:    "firewall table deleted",
			make:    nft("delete", "table", "inet", "wgns"),
			failing: map[string]string{"firewall": "table inet wgns is missing"},
			text:    "FAIL  firewall    table inet wgns is missing\n",
		},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			f.make(t)
			assertCheck(t, name, f.failing)
			if f.text != "" {
				out, _, code := wgnsRun(t, "check", name)
				if code != 1 || !strings.Contains(out, f.text) || !strings.HasSuffix(out, fmt.Sprintf("of 11 checks FAILED (%s)\n", strings.Join(checksInOrder(f.failing), ", "))) {
					t.Errorf("wgns check: exit %d, output\n%s\nwant exit 1, a line %q and the failed checks in the summary", code, out, f.text)
				}
			}
			if f.undo != nil {
				f.undo(t)
				assertCheck(t, name, nil)
			}
		})
	}

	// A tunnel that is not up, and a name that cannot be one: exit 1, with a message.
	if _, e, code := wgnsRun(t, "check", "nope"); code != 1 || !strings.Contains(e, "not up") {
		t.Errorf("wgns check nope: exit %d, stderr %q", code, e)
	}
	if _, e, code := wgnsRun(t, "check", "a/b"); code != 1 || !strings.Contains(e, "a/b") {
		t.Errorf("wgns check a/b: exit %d, stderr %q", code, e)
	}
}

// checksInOrder returns the check names that are keys of m, in the order wgns check reports them.
func checksInOrder(m map[string]string) []string {
	order := []string{"config", "namespace", "process", "interfaces", "routes", "rules", "firewall", "dns", "views", "handshake"}
	var out []string
	for _, k := range order {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

// TestIntegrationCheckFirewallOff: "Firewall = off" in [Namespace] reaches up (no wgns table in
// the namespace) and check, which passes and says so.
func TestIntegrationCheckFirewallOff(t *testing.T) {
	const name = "cf"
	p := newPeer(t, name)
	startDNS(t, p, dnsName, dnsAddr)
	p.writeConfig(t, p.ConfigPath, "\n[Namespace]\nFirewall = off\n")
	tunnelUp(t, p, name)
	waitTunnel(t, name)
	if out := mustRun(t, "ip", "netns", "exec", name, "nft", "list", "ruleset"); strings.TrimSpace(out) != "" {
		t.Errorf("Firewall = off, yet namespace %s has a ruleset:\n%s", name, out)
	}
	r := assertCheck(t, name, nil)
	for _, c := range r.Checks {
		if c.Name == "firewall" && !strings.Contains(c.Detail, "off, as the config says") {
			t.Errorf("check firewall: %q", c.Detail)
		}
	}
}
