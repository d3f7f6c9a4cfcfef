package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockName is the file in the data directory that one ledgerd holds while
// it runs. The embedded NATS and the embedded store each lock their own
// files too, but later in start-up and with messages that name neither
// ledgerd nor the directory; this lock fails first, and says why.
const lockName = "ledgerd.lock"

// dataDirLock is a held lock on a data directory.
type dataDirLock struct{ f *os.File }

// lockDataDir creates dir if needed and takes its lock, or says in one
// sentence why it cannot: the path is a file, it cannot be created, or
// another ledgerd holds it.
func lockDataDir(dir string) (*dataDirLock, error) {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("data directory %s is a file, not a directory (--data-dir)", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory %s cannot be created (--data-dir): %w", dir, err)
	}
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data directory %s cannot be used: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := readPID(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another ledgerd%s; stop it or choose another --data-dir", dir, holder)
		}
		return nil, fmt.Errorf("data directory %s cannot be locked: %w", dir, err)
	}
	// The pid is for people reading the error above; the lock is the flock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dataDirLock{f: f}, nil
}

func readPID(f *os.File) string {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid := strings.TrimSpace(string(buf[:n]))
	if _, err := strconv.Atoi(pid); err != nil {
		return ""
	}
	return " (pid " + pid + ")"
}

// release gives the lock up; the file stays, empty of meaning.
func (l *dataDirLock) release() {
	if l != nil {
		l.f.Close()
	}
}
