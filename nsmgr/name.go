// Package nsmgr manages named network namespaces the way iproute2 does (a file in /run/netns
// with the namespace bind-mounted onto it), and is the one place in wgns that moves an OS thread
// into another network namespace: Do for code of this process, Exec for a program that replaces
// it, Start for a program that runs as its child.
//
// Nothing here switches the namespace of the calling goroutine's thread. Every switch happens on
// a fresh goroutine locked to its thread, and a thread that could not be brought back is never
// returned to the Go runtime: it exits with its goroutine.
package nsmgr

import (
	"errors"
	"fmt"
	"os"
)

// ErrInvalidName is wrapped by the error ValidateName returns for a name that cannot name a
// namespace.
var ErrInvalidName = errors.New("invalid name")

// RunDir is the directory that holds named network namespaces, shared with iproute2.
const RunDir = "/run/netns"

// maxNameLen is the longest name: an interface name's limit (IFNAMSIZ-1), since a tunnel's
// interface carries its namespace's name.
const maxNameLen = 15

// ValidateName returns nil if name can name a namespace: 1 to 15 characters, each a letter,
// digit or one of _=+.-, and not "." or "..". Otherwise the error wraps ErrInvalidName and says
// what is allowed.
func ValidateName(name string) error {
	ok := len(name) >= 1 && len(name) <= maxNameLen && name != "." && name != ".."
	for i := 0; ok && i < len(name); i++ {
		ok = nameByte(name[i])
	}
	if !ok {
		return fmt.Errorf("%w %q: a name is 1-%d characters of letters, digits and _=+.-, and not \".\" or \"..\"",
			ErrInvalidName, name, maxNameLen)
	}
	return nil
}

// nameByte reports whether c may appear in a name.
func nameByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '_', '=', '+', '.', '-':
		return true
	}
	return false
}

// Path returns the file of the named namespace: RunDir/name. It does not validate name.
func Path(name string) string {
	return RunDir + "/" + name
}

// List returns the names of the files in RunDir that are valid names, sorted. A missing RunDir
// means no namespaces. It does not check that each file has a namespace mounted on it (Open does).
func List() ([]string, error) {
	entries, err := os.ReadDir(RunDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing network namespaces: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries { // os.ReadDir sorts by name
		if ValidateName(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	return names, nil
}
