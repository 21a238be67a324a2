package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plexus-net/plexus/internal/lab"
)

const (
	// deniedAfter is how long a probe waits for an answer before it counts the cell as denied.
	deniedAfter = time.Second
	// convergeWithin bounds how long a step's matrix may take to match: policies, labels and
	// Services reach every node's enforcer within it.
	convergeWithin = 10 * time.Second
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
// node an extra probes from), every source at once, every target of a source at once.
func (w *truthWorld) probeRound(extras []extraProbe) (observation, error) {
	targets := map[string][]string{}
	for _, from := range w.pods {
		for _, k := range w.kinds {
			for _, to := range w.pods {
				targets[from.id()] = append(targets[from.id()], target(k.proto, to.ip(k.v6), k.port))
			}
		}
	}
	for _, e := range extras {
		targets[e.from] = append(targets[e.from], e.target)
	}
	type answer struct {
		ok  map[string]bool
		err map[string]string
	}
	answers := map[string]answer{}
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
			a := answer{ok: map[string]bool{}, err: map[string]string{}}
			for _, r := range line.Results {
				a.ok[r.Target] = r.OK
				a.err[r.Target] = r.Error
			}
			answers[from] = a
		})
	}
	wg.Wait()
	if firstErr != nil {
		return observation{}, firstErr
	}
	obs := observation{cells: matrix{}, errs: map[string]string{}}
	for _, k := range w.kinds {
		obs.cells[k] = make([][]bool, len(w.pods))
		for i, from := range w.pods {
			obs.cells[k][i] = make([]bool, len(w.pods))
			for j, to := range w.pods {
				obs.cells[k][i][j] = answers[from.id()].ok[target(k.proto, to.ip(k.v6), k.port)]
			}
		}
	}
	for _, e := range extras {
		obs.extras = append(obs.extras, answers[e.from].ok[e.target])
		obs.errs[e.from+" "+e.target] = answers[e.from].err[e.target]
	}
	return obs, nil
}

// execProbe runs `echo probe` in one source: `kubectl exec` into a pod's echo container, or the
// same program in a node's network namespace (a node is no pod: its processes are the host's).
func (w *truthWorld) execProbe(from string, targets []string) (probeLine, error) {
	args := append([]string{"probe", "-timeout", deniedAfter.String()}, targets...)
	var out string
	var err error
	if node, ok := strings.CutPrefix(from, "node"); ok {
		i, _ := strconv.Atoi(node)
		var b []byte
		b, err = exec.Command("ip", append([]string{"netns", "exec", labCfg.NodeAt(i).Netns,
			filepath.Join(labCfg.CacheDir, "bin", "echo")}, args...)...).Output()
		out = string(b)
	} else {
		p := w.pod(from)
		out, err = lab.Kubectl(labCfg, "", append([]string{"-n", truthNamespace(p.ns), "exec", p.name, "-c", "echo", "--", "/echo"}, args...)...)
	}
	if err != nil {
		return probeLine{}, fmt.Errorf("probe from %s: %w", from, err)
	}
	var line probeLine
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &line); err != nil {
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
		obs, err := w.probeRound(extras)
		if err == nil && mismatches(want, extras, obs) == 0 {
			return obs, rounds, nil
		}
		if time.Now().After(deadline) {
			return obs, rounds, err
		}
		if err != nil {
			time.Sleep(200 * time.Millisecond) // an exec that failed returns at once; do not spin
		}
	}
}
