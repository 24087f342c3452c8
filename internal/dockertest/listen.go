//go:build linux

package dockertest

import (
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Listen opens a TCP listener inside the engine's network namespace, on
// addr (such as Gateway+":0"): the containers reach it there, and nothing
// outside the namespace can. The listener is the caller's to close.
//
// A socket belongs to the network namespace of the thread that makes it,
// so a goroutine locked to its thread enters the engine's namespace, makes
// the socket and ends without unlocking: Go then ends the thread instead
// of handing it, still in that namespace, to other goroutines.
func (e *Engine) Listen(addr string) (net.Listener, error) {
	type result struct {
		listener net.Listener
		err      error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		l, err := e.listenInNamespace(addr)
		done <- result{l, err}
	}()
	r := <-done
	return r.listener, r.err
}

func (e *Engine) listenInNamespace(addr string) (net.Listener, error) {
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", e.cmd.Process.Pid))
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("entering the engine's network namespace: %w", err)
	}
	return net.Listen("tcp", addr)
}
