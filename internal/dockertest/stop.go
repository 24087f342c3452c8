//go:build linux

package dockertest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Stop removes the engine's containers and images, stops the engine, and
// removes its folder and cgroups. It returns an error naming anything it
// found left behind (a process, a mount, a cgroup), after removing it. It
// is safe to call more than once.
func (e *Engine) Stop() error {
	if e.stopped {
		return nil
	}
	e.stopped = true
	var problems []error
	if e.running() {
		problems = append(problems, e.removeEverything())
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.exited:
		case <-time.After(readyTimeout):
			problems = append(problems, errors.New("dockerd did not stop on SIGTERM; killed"))
			_ = e.cmd.Process.Kill()
			<-e.exited
		}
	}
	if e.t.Failed() {
		e.t.Logf("dockerd log (tail):\n%s", e.LogTail())
	}
	problems = append(problems, e.killLeftovers(), e.mountsLeft(), e.removeCgroups())
	if err := os.RemoveAll(e.Dir); err != nil {
		problems = append(problems, err)
	}
	return errors.Join(problems...)
}

func (e *Engine) running() bool {
	select {
	case <-e.exited:
		return false
	default:
		return e.exited != nil
	}
}

// removeEverything removes every container and image, as an operator
// would, so that the engine stops with nothing running.
func (e *Engine) removeEverything() error {
	var problems []error
	for _, list := range [][]string{{"ps", "-aq"}, {"images", "-q"}} {
		out, err := e.Docker(list...)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		ids := strings.Fields(out)
		if len(ids) == 0 {
			continue
		}
		remove := []string{"rm", "-f"}
		if list[0] == "images" {
			remove = []string{"rmi", "-f"}
		}
		if _, err := e.Docker(append(remove, ids...)...); err != nil {
			problems = append(problems, err)
		}
	}
	return errors.Join(problems...)
}

// killLeftovers kills any process still running from the engine's folder
// (containerd, a shim, a gVisor sandbox or gofer: each names the folder on
// its command line) and says which there were.
func (e *Engine) killLeftovers() error {
	var left []string
	for attempt := 0; attempt < 50; attempt++ {
		pids := e.processes()
		if len(pids) == 0 {
			break
		}
		if attempt == 0 {
			for pid, cmdline := range pids {
				left = append(left, fmt.Sprintf("%d %.120s", pid, cmdline))
			}
		}
		for pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(left) > 0 {
		return fmt.Errorf("processes of the engine outlived it (killed): %s", strings.Join(left, "; "))
	}
	return nil
}

// processes maps the pid of every process whose command line names the
// engine's folder, and of each of their descendants (a gVisor sandbox's
// own processes name nothing), to its command line.
func (e *Engine) processes() map[int]string {
	found := map[int]string{}
	parents := map[int]int{}
	cmdlines := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", entry.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmdlines[pid] = strings.ReplaceAll(string(data), "\x00", " ")
		parents[pid] = parentOf(pid)
		if strings.Contains(cmdlines[pid], e.Dir+"/") {
			found[pid] = cmdlines[pid]
		}
	}
	for pid := range parents {
		for ancestor := parents[pid]; ancestor > 1; ancestor = parents[ancestor] {
			if _, ok := found[ancestor]; ok {
				found[pid] = cmdlines[pid]
				break
			}
		}
	}
	return found
}

// parentOf is a process's parent pid, or 0 when it cannot be read. The
// fourth field of /proc/PID/stat, after the command in parentheses.
func parentOf(pid int) int {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	end := strings.LastIndexByte(string(data), ')')
	if end < 0 {
		return 0
	}
	fields := strings.Fields(string(data[end+1:]))
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// mountsLeft reports any mount under the engine's folder that this
// process's mount namespace (the machine's) can see.
func (e *Engine) mountsLeft() error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var left []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && strings.HasPrefix(fields[4], e.Dir) {
			left = append(left, fields[4])
			_ = syscall.Unmount(fields[4], syscall.MNT_DETACH)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("mounts of the engine outlived it (detached): %s", strings.Join(left, ", "))
	}
	return nil
}

// removeCgroups removes the engine's parent cgroup from every hierarchy,
// with its containers' own, waiting a while for the processes a kill has
// just ended to leave them: rmdir fails while a cgroup holds a task.
func (e *Engine) removeCgroups() error {
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = e.removeCgroupsOnce(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func (e *Engine) removeCgroupsOnce() error {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", e.cgroupParent))
	if direct := filepath.Join("/sys/fs/cgroup", e.cgroupParent); isDir(direct) {
		dirs = append(dirs, direct)
	}
	var problems []error
	for _, dir := range dirs {
		// Children first: a cgroup is removed with rmdir once empty.
		subdirs, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, sub := range subdirs {
			if isDir(sub) {
				if err := syscall.Rmdir(sub); err != nil {
					problems = append(problems, fmt.Errorf("cgroup %s: %w", sub, err))
				}
			}
		}
		if err := syscall.Rmdir(dir); err != nil {
			problems = append(problems, fmt.Errorf("cgroup %s: %w", dir, err))
		}
	}
	return errors.Join(problems...)
}

func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}
