package testutil

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"testing"
)

// RefusingAddr returns a loopback address where connections are refused,
// and keeps it so until the test ends: the port is bound but never listened
// on, so no other test or process can take it meanwhile.
func RefusingAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	name, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	return fmt.Sprintf("127.0.0.1:%d", name.(*syscall.SockaddrInet4).Port)
}

// Ports below the kernel's ephemeral range (32768 and up on Linux, 49152 and
// up on macOS), which servers that listen on port 0 never get.
const (
	firstPort = 20000
	lastPort  = 32000
)

var (
	portsMu sync.Mutex
	// nextPort starts at a random place, so that test binaries running at
	// once on one machine rarely hand out the same ports.
	nextPort  = firstPort + rand.IntN((lastPort-firstPort)/2)
	portsSeen = map[int]bool{}
)

// Fataler is the part of testing.TB that FreePort needs, so that a program
// which is not a test (the benchmark) can take ports from the same range.
type Fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// FreePort returns a loopback port for a server the test starts in another
// process, which must bind it itself. It is taken below the kernel's
// ephemeral range, so that no server listening on port 0 in a parallel
// test can take it before that process does, and it is never handed out
// twice in one test binary. It is checked free by binding it.
func FreePort(t Fataler) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for tries := 0; tries <= lastPort-firstPort; tries, nextPort = tries+1, nextPort+1 {
		if nextPort > lastPort {
			nextPort = firstPort
		}
		port := nextPort
		if portsSeen[port] {
			continue
		}
		portsSeen[port] = true
		listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		listener.Close()
		nextPort++
		return port
	}
	t.Fatalf("no free port left below the ephemeral range")
	return 0
}
