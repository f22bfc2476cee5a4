package testupstream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// server is the life cycle every server of this package shares, embedded
// in each (Postgres, MariaDB, Redis, FerretDB): its directory, the user it
// runs as, the process that runs it now and how that process is asked to
// shut down. Each server's own code says how to launch it and how to tell
// that it is ready; starting on a free port, waiting, stopping by PID with
// a grace period and restarting on the same port are done here.
type server struct {
	name      string              // the server in errors: "postgres"
	dir       string              // the temporary directory, removed by stop
	cred      *syscall.Credential // the system user it runs as when run as root (nil: the current user)
	shutdown  syscall.Signal      // the signal that asks it for a clean shutdown
	stopGrace time.Duration       // how long a shutdown may take before its process group is killed
	// leftover is a file a killed server leaves behind that would stop
	// it from starting again (PostgreSQL's postmaster.pid), removed
	// before a restart; "" if none.
	leftover string

	mu      sync.Mutex
	port    int
	proc    *process // nil once stopped
	stopped bool     // Stop was called: dir is gone
}

// prepare checks that binaries are installed (needBinary: pkg is the Debian
// package that installs them), looks up the system user a server runs as
// when the tests run as root (runAs; user "": the current user always),
// and makes the server's directory, named for kind, for that user.
func prepare(kind, user, pkg string, binaries ...string) (dir string, cred *syscall.Credential, err error) {
	for _, path := range binaries {
		if err := needBinary(path, pkg); err != nil {
			return "", nil, err
		}
	}
	if user != "" {
		if cred, err = runAs(user, pkg); err != nil {
			return "", nil, err
		}
	}
	if dir, err = makeDir(kind, cred); err != nil {
		return "", nil, err
	}
	return dir, cred, nil
}

// spawn starts the program path with args in the server's directory, its
// output appended to the file logName there, and waits until each of
// ready succeeds in turn; then the process is the server's, on port. On a
// failure it stops the process again. label names the program in errors.
// The caller holds mu, or owns the server alone.
func (s *server) spawn(port int, label, path string, args []string, logName string, ready ...func(context.Context) error) error {
	proc, err := startProcess(path, args, s.dir, filepath.Join(s.dir, logName), s.cred)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	for _, ping := range ready {
		if err := proc.waitReady(label, ping); err != nil {
			proc.stop(s.shutdown, s.stopGrace)
			return err
		}
	}
	s.port, s.proc = port, proc
	return nil
}

// startFree calls start with free ports (startOnFreePort) for a server
// that has never run, and removes its directory if none starts.
func (s *server) startFree(start func(port int) error) error {
	err := startOnFreePort(start)
	if err != nil {
		os.RemoveAll(s.dir)
	}
	return err
}

// stopProc shuts the running process down, if any, killing its process
// group once the grace period is over. The caller holds mu.
func (s *server) stopProc() {
	if s.proc != nil {
		s.proc.stop(s.shutdown, s.stopGrace)
		s.proc = nil
	}
}

// stop shuts the server down and removes its directory; calling it again
// does nothing.
func (s *server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	s.stopProc()
	os.RemoveAll(s.dir)
}

// restart shuts the server down and calls start with its port again
// (startOnSamePort), with its data as it left it.
func (s *server) restart(start func(port int) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New(s.name + ": Restart after Stop")
	}
	s.stopProc()
	if s.leftover != "" {
		os.Remove(s.leftover)
	}
	return startOnSamePort(s.port, start)
}
