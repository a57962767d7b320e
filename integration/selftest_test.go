package integration

import (
	"bytes"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestIntegrationSelftest runs `wgns selftest` as a user would. The test world plays the host:
// selftest builds its own private world inside it, and must leave the test world's network as
// it found it.
func TestIntegrationSelftest(t *testing.T) {
	before := worldNetwork(t)
	var out bytes.Buffer
	cmd := exec.Command(wgnsBin, "selftest")
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	t.Logf("wgns selftest (%v):\n%s", took.Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("wgns selftest: %v", err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	last := lines[len(lines)-1]
	m := regexp.MustCompile(`^selftest: (\d+) passed, 0 failed$`).FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("closing line %q, want \"selftest: N passed, 0 failed\"", last)
	}
	oks := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "  FAIL") {
			t.Errorf("a step failed: %s", l)
		}
		if strings.HasPrefix(l, "  ok    ") {
			oks++
		}
	}
	if m[1] != strconv.Itoa(oks) || oks < 15 {
		t.Errorf("closing line says %s passed; %d ok lines printed (want at least 15)", m[1], oks)
	}
	for _, want := range []string{
		"wgns up --userspace",
		"namespace st holds only lo and st",
		"TCP over IPv4 through the tunnel",
		"TCP over IPv6 through the tunnel",
		"decoy DNS got 0 queries, decoy sockets 0 connections",
		"wgns down st",
		"the host's network is untouched",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if took > scaled(10*time.Second) {
		t.Errorf("wgns selftest took %v, want well under 10s", took)
	}
	if after := worldNetwork(t); after != before {
		t.Errorf("the test world's network changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// worldNetwork describes the test world's interfaces, addresses, routes and named namespaces.
func worldNetwork(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{{"-o", "link"}, {"-o", "addr"}, {"route", "show", "table", "all"}, {"-6", "route", "show", "table", "all"}, {"netns", "list"}} {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
		b.Write(out)
	}
	return b.String()
}
