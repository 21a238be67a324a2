package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// ownCPUTime is the user plus system CPU time this process (all its threads, not its
// children) has used so far.
func ownCPUTime() (time.Duration, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, err
	}
	_, s, err := parseStat(string(b))
	return s.cpu, err
}

// cpuTime is the user plus system CPU time that process pid and its descendants (nginx's
// workers are children of its master) have used so far.
func cpuTime(pid int) (time.Duration, error) {
	stats, err := allStats()
	if err != nil {
		return 0, err
	}
	tree := map[int]bool{pid: true}
	// Parents have lower pids only usually, so repeat until no process joins the tree.
	for grown := true; grown; {
		grown = false
		for p, s := range stats {
			if !tree[p] && tree[s.ppid] {
				tree[p], grown = true, true
			}
		}
	}
	var total time.Duration
	for p := range tree {
		total += stats[p].cpu
	}
	return total, nil
}

type procStat struct {
	ppid int
	cpu  time.Duration
}

// allStats reads the parent and CPU time of every process.
func allStats() (map[int]procStat, error) {
	paths, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	out := map[int]procStat{}
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the process ended
		}
		pid, s, err := parseStat(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out[pid] = s
	}
	return out, nil
}

// parseStat reads pid, ppid (field 4), utime and stime (fields 14 and 15) of a stat line; the
// command name (field 2) is in parentheses and may hold spaces, so fields count after its ")".
func parseStat(line string) (int, procStat, error) {
	open, end := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 1 || end < open {
		return 0, procStat{}, fmt.Errorf("malformed stat line")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line[:open]))
	if err != nil {
		return 0, procStat{}, err
	}
	f := strings.Fields(line[end+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, procStat{}, fmt.Errorf("%d fields after the command", len(f))
	}
	var n [3]int64
	for i, idx := range []int{1, 11, 12} { // ppid, utime, stime
		if n[i], err = strconv.ParseInt(f[idx], 10, 64); err != nil {
			return 0, procStat{}, err
		}
	}
	return pid, procStat{ppid: int(n[0]), cpu: time.Duration(n[1]+n[2]) * clockTick}, nil
}
