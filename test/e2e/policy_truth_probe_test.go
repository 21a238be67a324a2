package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

const (
	// deniedAfter is how long a probe waits for an answer before it counts the cell as denied.
	deniedAfter = time.Second
	// convergeWithin bounds how long a step's matrix may take to match: policies, labels and
	// Services reach every node's enforcer within it.
	convergeWithin = 10 * time.Second
	// secondChances is how often a round probes again the cells expected to reach that did not.
	secondChances = 2
	// minRounds is how many rounds a step gets however long they take.
	minRounds = 3
)

// probeLine is the JSON line `echo probe` prints (hack/images/echo/probe.go).
type probeLine struct {
	Results []struct {
		Target string `json:"target"`
		OK     bool   `json:"ok"`
		Error  string `json:"error"`
	} `json:"results"`
}

// target is how the probe names a cell: <proto>/<address>:<port>.
func target(proto string, ip netip.Addr, port int32) string {
	return proto + "/" + netip.AddrPortFrom(ip, uint16(port)).String()
}

// probeRound measures the whole matrix and the extras once: one exec per source (each pod, each
// node an extra probes from), every source at once, every target of a source at once. A cell
// expected to reach that did not gets up to secondChances more tries at once, in one more exec per
// source each: on this shared machine a probe is sometimes starved past its timeout (seen: a
// pod's loopback, which no policy can touch, timing out). A cell that reaches is never
// probed again (an answer that came back is proof), nor is one expected to be denied.
func (w *truthWorld) probeRound(want matrix, extras []extraProbe) (observation, error) {
	all := func(from *truthPod, to *truthPod, k probeKind) bool { return true }
	obs := observation{cells: matrix{}, errs: map[string]string{}, extras: make([]bool, len(extras))}
	for _, k := range w.kinds {
		obs.cells[k] = make([][]bool, len(w.pods))
		for i := range w.pods {
			obs.cells[k][i] = make([]bool, len(w.pods))
		}
	}
	if err := w.probeCells(&obs, extras, all, func(int) bool { return true }); err != nil {
		return obs, err
	}
	retryCell := func(from, to *truthPod, k probeKind) bool {
		i, j := w.index(from), w.index(to)
		return want[k][i][j] && !obs.cells[k][i][j]
	}
	retryExtra := func(i int) bool { return extras[i].want && !obs.extras[i] }
	for range secondChances {
		if mismatches(want, extras, obs) == 0 {
			break
		}
		if err := w.probeCells(&obs, extras, retryCell, retryExtra); err != nil {
			return obs, err
		}
	}
	return obs, nil
}

// probeCells probes the cells and extras chosen and records in obs those that answered (a cell
// already recorded as reaching stays so).
func (w *truthWorld) probeCells(obs *observation, extras []extraProbe, cell func(from, to *truthPod, k probeKind) bool, extra func(int) bool) error {
	type slot struct {
		k    probeKind
		i, j int
		e    int // index of an extra, -1 for a cell
	}
	targets, slots := map[string][]string{}, map[string][]slot{}
	for i, from := range w.pods {
		for _, k := range w.kinds {
			for j, to := range w.pods {
				if cell(from, to, k) {
					targets[from.id()] = append(targets[from.id()], target(k.proto, to.ip(k.v6), k.port))
					slots[from.id()] = append(slots[from.id()], slot{k: k, i: i, j: j, e: -1})
				}
			}
		}
	}
	for i, e := range extras {
		if extra(i) {
			targets[e.from] = append(targets[e.from], e.target)
			slots[e.from] = append(slots[e.from], slot{e: i})
		}
	}
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for from, ts := range targets {
		wg.Go(func() {
			line, err := w.execProbe(from, ts)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			for n, r := range line.Results {
				s := slots[from][n]
				if s.e >= 0 {
					obs.extras[s.e] = obs.extras[s.e] || r.OK
					if !r.OK {
						obs.errs[from+" "+r.Target] = r.Error
					}
					continue
				}
				obs.cells[s.k][s.i][s.j] = obs.cells[s.k][s.i][s.j] || r.OK
			}
		})
	}
	wg.Wait()
	return firstErr
}

// index is the pod's row and column in the matrices.
func (w *truthWorld) index(p *truthPod) int {
	for i, q := range w.pods {
		if q == p {
			return i
		}
	}
	return -1
}

// execProbe runs `echo probe` once in one source's network namespace: a pod's (that of its
// echo process, found when the world was set up) or a node's. The program is the lab's own build
// of hack/images/echo, the binary the image holds. Like the rest of test/e2e it enters the
// namespace from the host rather than going through `kubectl exec`: the packets are the pod's
// either way (same namespace, same address, same veth), and on this shared machine an exec
// through the API server, kubelet, containerd and runc took 5-25 s per source under load.
func (w *truthWorld) execProbe(from string, targets []string) (probeLine, error) {
	nsPath := w.netns[from]
	if nsPath == "" {
		return probeLine{}, fmt.Errorf("probe from %s: no network namespace known", from)
	}
	args := append([]string{"--net=" + nsPath, filepath.Join(labCfg.CacheDir, "bin", "echo"),
		"probe", "-timeout", deniedAfter.String()}, targets...)
	out, err := exec.Command("nsenter", args...).Output()
	if err != nil {
		return probeLine{}, fmt.Errorf("probe from %s: %w", from, err)
	}
	var line probeLine
	if err := json.Unmarshal(bytes.TrimSpace(out), &line); err != nil {
		return probeLine{}, fmt.Errorf("probe from %s printed %q: %w", from, out, err)
	}
	if len(line.Results) != len(targets) {
		return probeLine{}, fmt.Errorf("probe from %s answered %d of %d targets", from, len(line.Results), len(targets))
	}
	return line, nil
}

// converge probes until the observation matches the expectation or convergeWithin has passed;
// it returns the last observation, how many rounds it took and the last probe error.
func (w *truthWorld) converge(want matrix, extras []extraProbe) (observation, int, error) {
	deadline := time.Now().Add(convergeWithin)
	rounds := 0
	for {
		rounds++
		obs, err := w.probeRound(want, extras)
		if err == nil && mismatches(want, extras, obs) == 0 {
			return obs, rounds, nil
		}
		// At least minRounds: a machine under load may stretch one round past the bound.
		if time.Now().After(deadline) && rounds >= minRounds {
			return obs, rounds, err
		}
		if err != nil {
			time.Sleep(200 * time.Millisecond) // an exec that failed returns at once; do not spin
		}
	}
}
