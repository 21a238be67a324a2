package cni

import (
	"testing"
	"time"
)

// BenchmarkAddDel measures one pod's ADD plus DEL through libcni (two plugin processes, veth
// creation and deletion, allocation store writes) on a dual-stack node, as a runtime sees it.
//
//	go test -run '^$' -bench AddDel ./agent/cni/
func BenchmarkAddDel(b *testing.B) {
	node := newTestNode(b, dualStackState(0))
	pod := node.newPod("bench")
	start := time.Now()
	n := 0
	for b.Loop() {
		if _, err := node.add(pod, "ctr-bench"); err != nil {
			b.Fatalf("ADD: %v", err)
		}
		if err := node.del(pod.Path(), "ctr-bench"); err != nil {
			b.Fatalf("DEL: %v", err)
		}
		n++
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(n), "ms/op")
}
