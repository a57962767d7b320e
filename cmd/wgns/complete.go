package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/wgns/wgns/nsmgr"
)

// completeCmd is `wgns __complete KIND`: the names shell completion offers, one per line. It
// never fails for want of permission: what cannot be read is left out.
type completeCmd struct {
	Kind string `arg:"" enum:"tunnels,configs,services" help:"tunnels (running), configs (in /etc/wgns and /etc/wireguard) or services (systemd's)."`
}

// Run prints the names.
func (c *completeCmd) Run() error {
	names := completionNames(os.DirFS("/"), c.Kind)
	if len(names) == 0 {
		return nil
	}
	_, err := fmt.Println(strings.Join(names, "\n"))
	return err
}

// completionNames lists the names of a kind, sorted, from fsys (the root file system, paths
// without the leading slash).
func completionNames(fsys fs.FS, kind string) []string {
	var names []string
	switch kind {
	case "tunnels":
		names = runningTunnels(fsys)
	case "configs":
		for _, d := range configDirs {
			names = append(names, namesIn(fsys, strings.TrimPrefix(d, "/"), ".conf", validName)...)
		}
	case "services":
		for _, d := range unitSearchPath {
			names = append(names, namesIn(fsys, strings.TrimPrefix(d, "/"), "", func(n string) bool {
				return strings.HasSuffix(n, ".service") && !strings.HasSuffix(n, "@.service")
			})...)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// runningTunnels lists the tunnels wgns has state for (/run/wgns/NAME.json). /run/wgns is
// root's alone; for anyone else, a tunnel is a namespace in /run/netns whose DNS view in
// /etc/netns/NAME wgns wrote (both are readable by all, and only root can write them).
func runningTunnels(fsys fs.FS) []string {
	names, err := readNames(fsys, "run/wgns", ".json", validName)
	if !errors.Is(err, fs.ErrPermission) {
		return names
	}
	var out []string
	for _, n := range namesIn(fsys, "run/netns", "", validName) {
		b, err := fs.ReadFile(fsys, path.Join("etc/netns", n, "nsswitch.conf"))
		if err == nil && bytes.Contains(firstLine(b), []byte("written by wgns")) {
			out = append(out, n)
		}
	}
	return out
}

// namesIn lists the entries of dir that end in suffix, without it, for which ok holds; none
// when dir cannot be read.
func namesIn(fsys fs.FS, dir, suffix string, ok func(string) bool) []string {
	names, _ := readNames(fsys, dir, suffix, ok)
	return names
}

// readNames is namesIn, and why dir could not be read.
func readNames(fsys fs.FS, dir, suffix string, ok func(string) bool) ([]string, error) {
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n, found := strings.CutSuffix(e.Name(), suffix)
		if found && ok(n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func validName(n string) bool { return nsmgr.ValidateName(n) == nil }

func firstLine(b []byte) []byte {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return line
}
