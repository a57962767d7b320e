package config

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	k := mustKey(t, keyA)
	s := NewSecret(k)
	psk := NewSecret(mustKey(t, keyPSK))
	cfg := &Config{Interface: Interface{PrivateKey: s}, Peers: []Peer{{PresharedKey: &psk}}}

	forms := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "% x", "%d", "%10.3v", "%T"} {
		forms["Secret "+verb] = fmt.Sprintf(verb, s)
		forms["*Secret "+verb] = fmt.Sprintf(verb, &s)
		forms["Config "+verb] = fmt.Sprintf(verb, cfg)
		forms["Peers "+verb] = fmt.Sprintf(verb, cfg.Peers)
	}
	forms["String"] = s.String()
	forms["GoString"] = s.GoString()
	forms["Sprint"] = fmt.Sprint(s, cfg.Interface, *cfg)
	for name, v := range map[string]any{"Secret": s, "Config": cfg} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		forms["json "+name] = string(b)
	}
	text, _ := s.MarshalText()
	forms["MarshalText"] = string(text)

	for _, key := range []Secret{s, psk} {
		raw := key.Key()
		secretForms := []string{
			raw.String(), raw.String()[:43],
			hex.EncodeToString(raw[:]), strings.ToUpper(hex.EncodeToString(raw[:])),
			fmt.Sprint(raw[:]), fmt.Sprintf("%#v", raw[:4]), fmt.Sprintf("%v", raw[:4]),
			string(raw[:8]),
		}
		for name, out := range forms {
			for _, f := range secretForms {
				if strings.Contains(out, f) {
					t.Errorf("%s shows the key (%q): %s", name, f, out)
				}
			}
		}
	}
	for _, name := range []string{"Secret %v", "Secret %x", "*Secret %d", "String", "GoString", "MarshalText"} {
		if forms[name] != "(hidden)" {
			t.Errorf("%s = %q, want (hidden)", name, forms[name])
		}
	}
	if forms["json Secret"] != `"(hidden)"` {
		t.Errorf("json = %s", forms["json Secret"])
	}
}

func TestSecretKey(t *testing.T) {
	var zero Secret
	if !zero.IsZero() {
		t.Error("zero Secret: IsZero() = false")
	}
	k := mustKey(t, keyA)
	s := NewSecret(k)
	if s.IsZero() || s.Key() != k {
		t.Error("NewSecret does not hold the key")
	}
	if !s.Equal(NewSecret(k)) || s.Equal(NewSecret(mustKey(t, keyB))) || s.Equal(zero) {
		t.Error("Equal is wrong")
	}
}

func TestPortString(t *testing.T) {
	if got := (Port{51413, "tcp"}).String(); got != "51413/tcp" {
		t.Errorf("got %q", got)
	}
}

func TestKeyWindowsFindsKeys(t *testing.T) {
	w := keyWindows("x=" + keyA + " " + keyB[:40] + " y")
	found := false
	for _, s := range w {
		if s == keyA[:43] {
			found = true
		}
		if strings.HasPrefix(s, keyB[:40]) {
			t.Errorf("a 40-character run gave window %q", s)
		}
	}
	if !found {
		t.Errorf("keyWindows missed the key: %q", w)
	}
}

func TestShow(t *testing.T) {
	const hiddenValue = "(value not shown: it looks like a key)"
	for _, tt := range []struct{ in, want string }{
		{"192.0.2.1", `"192.0.2.1"`},
		{keyA, hiddenValue},
		{keyC[:43], `"` + keyC[:43] + `"`}, // not a key without its "="
		{"/etc/wgns/" + keyC, hiddenValue},
		{"[" + keyB + "]:51820", hiddenValue},
		{keyC + "x", hiddenValue},
		{strings.Repeat("a", 50) + "=", hiddenValue},
		{keyB[:42], `"` + keyB[:42] + `"`},
		{"/tmp/TestLoadKeyFiles2548943324/001/readable.key", `"/tmp/TestLoadKeyFiles2548943324/001/readable.key"`},
		{strings.Repeat("a", 50), `"` + strings.Repeat("a", 50) + `"`},
		{strings.Repeat("é", 40), `"` + strings.Repeat("é", 32) + `"...`},
	} {
		if got := show(tt.in); got != tt.want {
			t.Errorf("show(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
