package nsmgr

import (
	"fmt"

	"github.com/wgns/wgns/internal/osthread"
)

// AsUser runs fn on a thread of its own that has the credential c (supplementary groups, group,
// user: real, effective and saved), and waits for it; the thread ends afterwards, and the
// process's other threads keep their credentials. It is for work that must get no more access
// than the user has, such as opening anew a file the user handed over: the kernel checks the
// user's rights, not root's. fn must do its work on the calling goroutine.
func AsUser(c *Credential, fn func() error) error {
	var err error
	osthread.Disposable(func() {
		// Never unlocked: the thread ends with this goroutine, with the user's credentials.
		if err = switchThreadCred(c); err != nil {
			err = fmt.Errorf("switching a thread to user %d: %w", c.UID, err)
			return
		}
		err = fn()
	})
	return err
}
