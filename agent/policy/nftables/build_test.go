package nftables

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-net/plexus/agent/policy"
	pt "github.com/plexus-net/plexus/agent/policy/policytest"
)

// TestBuilderMatchesScratch: a builder fed successive models of an
// incremental Compiler (pods added, removed, relabelled, readdressed onto
// another pod's address, policies changed) yields, every time, the state
// a build from scratch yields, stamp included.
func TestBuilderMatchesScratch(t *testing.T) {
	s := pt.NewScale(300, 60)
	c := policy.NewCompiler()
	b := newBuilder()
	steps := []struct {
		name string
		edit func(i int)
	}{
		{"pod added", func(i int) { s.Pods = append(s.Pods, pt.ScalePod(1000+i, "app1")) }},
		{"pod removed", func(i int) { s.Pods = slices.Delete(s.Pods, i%len(s.Pods), i%len(s.Pods)+1) }},
		{"pod relabelled", func(i int) {
			p := s.Pods[(7*i)%len(s.Pods)].DeepCopy()
			p.Labels = map[string]string{"app": fmt.Sprintf("app%d", i%20)}
			s.Pods[(7*i)%len(s.Pods)] = p
		}},
		{"pod takes another pod's addresses", func(i int) {
			j, k := i%len(s.Pods), (i+13)%len(s.Pods)
			p := s.Pods[j].DeepCopy()
			p.Status.PodIPs = s.Pods[k].Status.PodIPs
			s.Pods[j] = p
		}},
		{"pod addresses back to its own", func(i int) {
			for j, p := range s.Pods {
				var n int
				if _, err := fmt.Sscanf(p.Name, "pod%d", &n); err == nil && !sameIPs(p, pt.ScalePod(n, "")) {
					q := p.DeepCopy()
					q.Status.PodIPs = pt.ScalePod(n, "").Status.PodIPs
					s.Pods[j] = q
				}
			}
		}},
		{"policy changed", func(i int) { s.Policies[i%len(s.Policies)] = pt.ScalePolicy(i%len(s.Policies), 80+i%3) }},
		{"policy removed", func(i int) { s.Policies = slices.Delete(s.Policies, i%len(s.Policies), i%len(s.Policies)+1) }},
		{"policy added", func(i int) { s.Policies = append(s.Policies, pt.ScalePolicy(60+i, 90)) }},
	}
	var prev *state
	// What prev's sets held, copied: the builder changes the pod maps
	// in place (see set.lent).
	var held map[string]map[string]string
	check := func(what string) {
		t.Helper()
		m := c.Compile(scaleInput(s))
		held = map[string]map[string]string{}
		for name, x := range prev.sets {
			held[name] = maps.Clone(x.elements)
		}
		next := b.build(m)
		got, want := stateLines(next), stateLines(desired(m))
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("%s: incremental state differs from scratch (-scratch +incremental):\n%s", what, d)
		}
		// The changes the builder tracked are the changes there are.
		for name, n := range next.sets {
			p := prev.sets[name]
			if p == nil {
				continue
			}
			gone, come := setChanges(p, n)
			if d := cmp.Diff([][]string{changedKeys(held[name], n.elements), changedKeys(n.elements, held[name])}, [][]string{gone, come}); d != "" {
				t.Fatalf("%s: set %s: tracked changes differ (-compared +tracked):\n%s", what, name, d)
			}
		}
		prev = next
	}
	prev = newState()
	check("initial")
	for i := 0; i < 20; i++ {
		for _, st := range steps {
			st.edit(i)
			check(fmt.Sprintf("round %d, %s", i, st.name))
		}
	}
}

func sameIPs(a, b *corev1.Pod) bool {
	return slices.Equal(a.Status.PodIPs, b.Status.PodIPs)
}

// stateLines renders a state as sorted lines: sets with their elements,
// chains with their rules, counters.
func stateLines(s *state) []string {
	var out []string
	for name, x := range s.sets {
		out = append(out, fmt.Sprintf("set %s map=%v %s typeof=%v interval=%v", name, x.isMap, x.typ, x.typeOf, x.interval))
		for k, v := range x.elements {
			out = append(out, fmt.Sprintf("element %s %s %s", name, k, v))
		}
	}
	for name, rules := range s.chains {
		out = append(out, "chain "+name+": "+strings.Join(rules, "; "))
	}
	for name, id := range s.counters {
		out = append(out, fmt.Sprintf("counter %s %v", name, id))
	}
	slices.Sort(out)
	if len(s.order) != len(s.chains) {
		out = append(out, fmt.Sprintf("order lists %d chains, %d exist", len(s.order), len(s.chains)))
	}
	return out
}
