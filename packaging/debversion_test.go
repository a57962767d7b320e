// Package packaging holds the tests of the Debian packaging's scripts (debversion, mkdeb).
package packaging

import (
	"os/exec"
	"strings"
	"testing"
)

func debversion(t *testing.T, describe, count string) (string, error) {
	t.Helper()
	out, err := exec.Command("./debversion", describe, count).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestDebversion: git describe's forms map to valid native Debian versions.
func TestDebversion(t *testing.T) {
	for _, tc := range []struct{ describe, count, want string }{
		{"v1.2.3", "9", "1.2.3"},
		{"1.2.3", "9", "1.2.3"},
		{"v1.2.3-5-gabc1234", "9", "1.2.3+git5.abc1234"},
		{"v1.2.3-rc1", "9", "1.2.3~rc1"},
		{"v1.2.3-rc1-2-gabc1234", "9", "1.2.3~rc1+git2.abc1234"},
		{"abc1234", "123", "0~git123.abc1234"},
		{"abc1234-dirty", "123", "0~git123.abc1234.dirty"},
		{"v1.2.3-5-gabc1234-dirty", "9", "1.2.3+git5.abc1234.dirty"},
	} {
		got, err := debversion(t, tc.describe, tc.count)
		if err != nil || got != tc.want {
			t.Errorf("debversion %q %s = %q, %v; want %q", tc.describe, tc.count, got, err, tc.want)
		}
	}
}

// TestDebversionRefuses: what cannot be a Debian version is an error that says so, not a
// package dpkg would refuse later.
func TestDebversionRefuses(t *testing.T) {
	for _, describe := range []string{"release-2", "x y", "v1.2;rm", ""} {
		got, err := debversion(t, describe, "1")
		if err == nil || !strings.Contains(got, "debversion:") {
			t.Errorf("debversion %q = %q, %v; want an error", describe, got, err)
		}
	}
}

// TestDebversionOrder: builds sort as they were made, by dpkg's own rules: untagged commits in
// commit order, before any release; a pre-release before its release; commits after a tag
// after it; uncommitted changes after their commit.
func TestDebversionOrder(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg is not installed")
	}
	order := [][2]string{
		{"abc1234", "99"},
		{"abc1234-dirty", "99"},
		{"0def567", "100"},
		{"v0.1.0-rc1", "101"},
		{"v0.1.0-rc1-1-gfff0000", "102"},
		{"v0.1.0", "103"},
		{"v0.1.0-1-g0123abc", "104"},
		{"v0.1.0-12-g0123abc", "115"},
		{"v0.2.0", "116"},
	}
	var prev string
	for _, o := range order {
		v, err := debversion(t, o[0], o[1])
		if err != nil {
			t.Fatalf("debversion %s: %v: %s", o[0], err, v)
		}
		if prev != "" {
			if err := exec.Command("dpkg", "--compare-versions", prev, "lt", v).Run(); err != nil {
				t.Errorf("dpkg does not sort %s (from %s) after %s", v, o[0], prev)
			}
		}
		if out, err := exec.Command("dpkg", "--validate-version", v).CombinedOutput(); err != nil {
			t.Errorf("dpkg --validate-version %s: %v %s", v, err, out)
		}
		prev = v
	}
}
