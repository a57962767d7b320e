package config

import (
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// fuzzFS serves keyC from any path whose name starts with "good", a
// group-readable keyB from names starting with "open", and nothing else.
// Neither private key is in the seeds, so any sign of them in a message came
// from a file.
type fuzzFS struct{}

func (fuzzFS) ReadKeyFile(path string) (keyFile, error) {
	base := path[strings.LastIndexByte(path, '/')+1:]
	switch {
	case strings.HasPrefix(base, "good"):
		return rootFile(keyC + "\n"), nil
	case strings.HasPrefix(base, "open"):
		return keyFile{Mode: 0o644, Data: []byte(keyB)}, nil
	}
	return keyFile{}, syscall.ENOENT
}

// keyPattern is a key as written: 43 base64 characters and a "=".
var keyPattern = regexp.MustCompile(`[A-Za-z0-9+/]{43}=`)

// writtenKeys returns the body (without "=") of every key written in s.
func writtenKeys(s string) []string {
	var keys []string
	for _, k := range keyPattern.FindAllString(s, -1) {
		keys = append(keys, k[:43])
	}
	return keys
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		ifc + peerB,
		"[Interface]\nPrivateKeyFile = good.key\nAddress = fd00::2\nDNS = fd00::53, example.com\n[Peer]\nPublicKey = {PB}\nPresharedKeyFile = /open.psk\nEndpoint = [fd00::1]:51820\nAllowedIPs = ::/0\n",
		ifc + "PostUp = echo {A}\n" + peerB,
		ifc + peerB + "Endpoint = {PSK}:1\n[Namespace]\nAllowInbound = 1/tcp\nFirewall = off\n",
	} {
		f.Add([]byte(expand(f, s)))
	}
	l := newLoader(fuzzFS{})
	const name = "fuzz.conf"
	f.Fuzz(func(t *testing.T, data []byte) {
		input := string(data)
		keys := append(writtenKeys(input), keyB[:43], keyC[:43])
		noKeys := func(what, msg string) {
			t.Helper()
			if !strings.HasPrefix(msg, name+":") {
				t.Fatalf("%s does not start with %q: %s", what, name+":", msg)
			}
			for _, k := range keys {
				if strings.Contains(msg, k) {
					t.Fatalf("%s shows key %q: %s", what, k, msg)
				}
			}
		}
		cfg, err := l.parse(name, data)
		if err != nil {
			noKeys("error", err.Error())
			return
		}
		for _, w := range cfg.Warnings {
			noKeys("warning", w)
		}
		text := format(cfg)
		again, err := l.parse(name, []byte(text))
		if err != nil {
			t.Fatalf("parsing the formatted config: %v\n%s", err, text)
		}
		if !reflect.DeepEqual(withoutNoise(cfg), withoutNoise(again)) {
			t.Fatalf("round trip changed the config:\n%s\nbecame\n%s", dump(cfg), dump(again))
		}
	})
}
