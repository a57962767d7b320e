// Package envlist reads environments held as KEY=VALUE lists, as exec and os.Environ use them.
package envlist

import "strings"

// Value returns the last value of key in env ("" if none), as getenv would.
func Value(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}
