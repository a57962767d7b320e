// Package shellquote quotes words for a POSIX shell, for the commands wgns prints or generates.
package shellquote

import "strings"

// Always returns s in single quotes; a quote inside ends the quoting, is escaped with a
// backslash, and starts it again.
func Always(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Word returns s as one word for a POSIX shell: as it is when it holds only ASCII letters,
// digits and _=+.,:@/- (unit names and tunnel names usually do), else quoted as by Always.
func Word(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_=+.,:@/-", r))
	}) {
		return s
	}
	return Always(s)
}
