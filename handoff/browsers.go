package handoff

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wgns/wgns/internal/envlist"
)

// chromiumInUse returns the profile b would use with argv and env if a browser outside this
// process holds it: --user-data-dir (the last one, as Chromium reads its switches), else the
// default under CHROME_CONFIG_HOME or the user's config directory. Debian's wrapper's
// --temp-profile makes a new profile, which no one holds.
func chromiumInUse(sys system, b browser, argv, env []string) []profileUse {
	dir := ""
	for _, a := range argv[min(1, len(argv)):] {
		if a == "--" {
			break // what follows is a URL, whatever it looks like
		}
		if v, ok := strings.CutPrefix(a, "--user-data-dir="); ok && v != "" {
			dir = absolute(v)
		}
		if a == "--temp-profile" {
			return nil
		}
	}
	if dir == "" {
		home := envlist.Value(env, "CHROME_CONFIG_HOME")
		if !filepath.IsAbs(home) {
			home = configHome(env)
		}
		if home == "" {
			return nil
		}
		dir = filepath.Join(home, b.config)
	}
	// SingletonLock -> HOST-PID, made by the browser that holds the profile.
	target, err := os.Readlink(filepath.Join(dir, "SingletonLock"))
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(target, '-')
	if i < 0 {
		return nil
	}
	pid, err := strconv.Atoi(target[i+1:])
	if err != nil {
		return nil
	}
	if pid, ok := holder(sys, chromium, target[:i], pid); ok {
		return []profileUse{{profile: dir, pid: pid}}
	}
	return nil
}

// firefoxInUse returns the profiles held by a Firefox outside this process that Firefox, run
// with argv and env, would hand its command line to: the one --profile or -P names, or, without
// one, every profile in use (Firefox then passes its command line to whichever Firefox of the
// user's is running).
func firefoxInUse(sys system, argv, env []string) []profileUse {
	dirs := firefoxDirs(env)
	var profile, named string
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if a == "--" {
			break
		}
		// Firefox takes -flag, --flag, and a value after a space or an "=".
		flag, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			continue
		}
		next := func() string {
			if hasValue {
				return value
			}
			if i+1 < len(argv) {
				i++
				return argv[i]
			}
			return ""
		}
		switch strings.ToLower(flag) {
		case "profile":
			if v := next(); v != "" {
				profile = absolute(v)
			}
		case "p":
			named = next()
		}
	}
	if profile == "" && named != "" {
		profile = firefoxNamed(dirs, named)
		if profile == "" {
			return nil // a profile Firefox will not find either
		}
	}
	var candidates []string
	if profile != "" {
		candidates = []string{profile}
	} else {
		for _, d := range dirs {
			entries, err := os.ReadDir(d)
			if err != nil {
				continue
			}
			for _, e := range entries {
				if e.IsDir() {
					candidates = append(candidates, filepath.Join(d, e.Name()))
				}
			}
		}
	}
	var used []profileUse
	for _, p := range candidates {
		// lock -> ADDRESS:+PID, made by the Firefox that holds the profile.
		target, err := os.Readlink(filepath.Join(p, "lock"))
		if err != nil {
			continue
		}
		i := strings.LastIndex(target, ":+")
		if i < 0 {
			continue
		}
		pid, err := strconv.Atoi(target[i+2:])
		if err != nil {
			continue
		}
		if pid, ok := holder(sys, firefox, "", pid); ok {
			used = append(used, profileUse{profile: p, pid: pid})
		}
	}
	return used
}

// firefoxDirs are the directories that hold a user's Firefox profiles and their profiles.ini:
// XDG_CONFIG_HOME/mozilla/firefox (Firefox's own since 2025) and ~/.mozilla/firefox (before it,
// and still used where it exists).
func firefoxDirs(env []string) []string {
	var dirs []string
	if c := configHome(env); c != "" {
		dirs = append(dirs, filepath.Join(c, "mozilla", "firefox"))
	}
	if h := envlist.Value(env, "HOME"); filepath.IsAbs(h) {
		dirs = append(dirs, filepath.Join(h, ".mozilla", "firefox"))
	}
	return dirs
}

// firefoxNamed returns the directory of the profile called name in the first profiles.ini of
// dirs that lists it, or "".
func firefoxNamed(dirs []string, name string) string {
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "profiles.ini"))
		if err != nil || len(data) > 1<<20 {
			continue
		}
		var inProfile, relative bool
		var pName, pPath string
		found := func() string {
			if !inProfile || pName != name || pPath == "" {
				return ""
			}
			if relative || !filepath.IsAbs(pPath) {
				return filepath.Join(d, pPath)
			}
			return pPath
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "[") {
				if p := found(); p != "" {
					return p
				}
				inProfile = strings.HasPrefix(strings.ToLower(line), "[profile")
				relative, pName, pPath = false, "", ""
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			switch k {
			case "Name":
				pName = v
			case "Path":
				pPath = v
			case "IsRelative":
				relative = v == "1"
			}
		}
		if p := found(); p != "" {
			return p
		}
	}
	return ""
}
