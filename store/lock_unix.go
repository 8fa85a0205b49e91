//go:build unix

package store

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// lockFile takes an exclusive flock(2) on the file at path, for as long as
// the returned Closer stays open; ErrInUse when another open file (another
// process's gateway) holds it. flock is apart from the POSIX record locks
// SQLite takes on the same file, so SQLite's own locking is unchanged.
func lockFile(path string) (io.Closer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrInUse
		}
		return nil, err
	}
	return f, nil
}
