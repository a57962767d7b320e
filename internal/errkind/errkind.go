// Package errkind makes errors that belong to a class named by a sentinel error without
// repeating the sentinel's text in their own.
package errkind

import "fmt"

// Errorf formats an error that matches kind (errors.Is) and says only what format says.
func Errorf(kind error, format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: kind}
}

type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }
