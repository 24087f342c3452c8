package vaulttest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// procRoot is where the process table is read; Linux only. Elsewhere it
// does not exist, PIDsOf finds nothing and RSS fails.
const procRoot = "/proc"

// PIDsOf returns the processes whose executable is exe. Vault starts each
// plugin from its plugin directory, and every server has its own, so a
// server's plugin processes are those running its copy of the binary.
func PIDsOf(exe string) []int {
	want, err := filepath.EvalSymlinks(exe)
	if err != nil {
		return nil
	}
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil
	}
	var pids []int
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		// Another user's process, or one that just ended, cannot be read:
		// neither can be ours.
		if got, err := os.Readlink(filepath.Join(procRoot, entry.Name(), "exe")); err == nil && got == want {
			pids = append(pids, pid)
		}
	}
	return pids
}

// RSS is a process's resident set size in bytes (VmRSS).
func RSS(pid int) (int64, error) {
	f, err := os.Open(filepath.Join(procRoot, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseVMRSS(f)
}

// parseVMRSS reads the VmRSS line of a /proc/PID/status file, which the
// kernel writes in kB.
func parseVMRSS(r io.Reader) (int64, error) {
	scanner := bufio.NewScanner(r)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) == 3 && fields[0] == "VmRSS:" && fields[2] == "kB" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", fields[1], err)
			}
			return kb * 1024, nil
		}
	}
	if err := scanner.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmRSS line: a kernel thread, or a process that has exited")
}
