package config

import "strings"

// User is an entry of [Namespace] Users: a user, by name, or a group, whose
// members are meant (written @GROUP).
type User struct {
	// Name is the user's or the group's name, as written (without the @).
	Name string
	// Group is true for @GROUP.
	Group bool
}

// String returns the entry as written in a config: NAME or @GROUP.
func (u User) String() string {
	if u.Group {
		return "@" + u.Name
	}
	return u.Name
}

// ParseUser reads one Users entry (NAME or @GROUP), as the config parser
// does; the reason is "" when s is valid. Names are what Debian's useradd and
// groupadd accept with --badname (and what systemd accepts for its users):
// 1-32 characters of letters, digits, "_", "." and "-", not starting with
// "-", not all digits (a number would be taken for an ID), not "." or "..",
// and optionally ending in "$" (Samba's machine accounts).
func ParseUser(s string) (User, string) {
	u := User{Name: s}
	if rest, ok := strings.CutPrefix(s, "@"); ok {
		u = User{Name: rest, Group: true}
	}
	if why := checkAccountName(u.Name); why != "" {
		return User{}, why
	}
	if !u.Group && u.Name == "root" {
		return User{}, "root needs no grant: it runs wgns exec itself, without the service"
	}
	return u, ""
}

// maxAccountName is the longest user or group name Debian's useradd accepts.
const maxAccountName = 32

// checkAccountName says what is wrong with a user or group name; "" if
// nothing.
func checkAccountName(name string) string {
	switch {
	case name == "":
		return "no name (write USER or @GROUP)"
	case len(name) > maxAccountName:
		return "longer than 32 characters"
	case name == "." || name == "..":
		return "not a name"
	case name[0] == '-':
		return "a name cannot start with -"
	}
	digits := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == '.', c == '-':
			digits = false
		case c == '$' && i == len(name)-1 && i > 0:
			digits = false
		default:
			return "a name has only letters, digits and _.- (and may end in $)"
		}
	}
	if digits {
		return "a number; name the user or group (IDs are not accepted)"
	}
	return ""
}

// users handles one entry of a Users line.
func (p *parser) users(n int, e string) error {
	u, why := ParseUser(e)
	if why != "" {
		return p.errf(n, "invalid Users entry %s: %s", p.show(e), why)
	}
	if err := listedOnce(p, p.userLines, u, n, "Users"); err != nil {
		return err
	}
	p.cfg.Namespace.Users = append(p.cfg.Namespace.Users, u)
	return nil
}
