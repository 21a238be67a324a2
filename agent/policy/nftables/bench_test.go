package nftables

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/policy"
	pt "github.com/plexus-net/plexus/agent/policy/policytest"
	"github.com/plexus-net/plexus/internal/testnet"
)

// Benchmarks at 1k and 10k pods, all on this node (the worst case for the
// node's table), with 1k policies of mixed shapes (policytest.NewScale);
// BenchmarkPlanShare puts 1% of 10k pods on this node (a node's share of
// a larger cluster).
// Each op of the incremental benchmarks is a full Compile plus a Sync that
// writes the difference; the Kernel variants write into a real nftables
// table in a throwaway network namespace. Figures: `make bench` or
//
//	go test ./agent/policy/nftables/ -run '^$' -bench . -benchtime 20x
var benchSizes = []int{1000, 10000}

const benchPolicies = 1000

func scaleInput(s *pt.Scale) policy.Input {
	return policy.Input{NodeName: pt.NodeName, NodeIPs: pt.NodeIPs(), Pods: s.Pods, Namespaces: s.Namespaces, Policies: s.Policies}
}

func BenchmarkCompile(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("pods=%d", n), func(b *testing.B) {
			in := scaleInput(pt.NewScale(n, benchPolicies))
			for b.Loop() {
				policy.Compile(in)
			}
		})
	}
}

// BenchmarkCompilerIncremental is one incremental compile after each
// change (policy.Compiler), the model alone.
func BenchmarkCompilerIncremental(b *testing.B) {
	for _, n := range benchSizes {
		for _, name := range []string{"podAdded", "podRelabelled", "policyChanged"} {
			b.Run(fmt.Sprintf("%s/pods=%d", name, n), func(b *testing.B) {
				s := pt.NewScale(n, benchPolicies)
				c := policy.NewCompiler()
				c.Compile(scaleInput(s))
				i := 0
				cpu0 := processCPU()
				for b.Loop() {
					changes[name](s, i)
					i++
					c.Compile(scaleInput(s))
				}
				reportCPU(b, processCPU()-cpu0)
			})
		}
	}
}

// change is one incremental step: it mutates the scale for op i.
type change func(s *pt.Scale, i int)

var changes = map[string]change{
	// Add pod n on even ops, remove it on odd ones.
	"podAdded": func(s *pt.Scale, i int) {
		if i%2 == 0 {
			s.Pods = append(s.Pods, pt.ScalePod(len(s.Pods), "app1"))
		} else {
			s.Pods = s.Pods[:len(s.Pods)-1]
		}
	},
	// Move pod 7 between app7 and app8 (other policies select it, other
	// policies' peers hold it).
	"podRelabelled": func(s *pt.Scale, i int) {
		p := s.Pods[7].DeepCopy()
		p.Labels = map[string]string{"app": fmt.Sprintf("app%d", 7+i%2)}
		s.Pods[7] = p
	},
	// Change policy 0's port between 80 and 81.
	"policyChanged": func(s *pt.Scale, i int) {
		s.Policies[0] = pt.ScalePolicy(0, 80+(i+1)%2)
	},
}

// BenchmarkPlan is the agent's CPU cost of a sync without the kernel
// write: Compile, the desired state, and the transaction that turns the
// previous state into it (knftables' fake is too slow at this scale to
// stand for the kernel: it deep-copies and compares with reflection).
func BenchmarkPlan(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("cold/pods=%d", n), func(b *testing.B) {
			in := scaleInput(pt.NewScale(n, benchPolicies))
			var next *state
			var ops int
			for b.Loop() {
				next = desired(policy.Compile(in))
				tx := knftables.NewFake(TableFamily, TableName).NewTransaction()
				writeFull(tx, next)
				ops = tx.NumOperations()
			}
			objs, rules, elems := next.counts()
			reportCounts(b, policy.SyncResult{Objects: objs, Rules: rules, Elements: elems})
			b.ReportMetric(float64(ops), "tx-ops")
		})
		for _, name := range []string{"podAdded", "podRelabelled", "policyChanged"} {
			for _, scratch := range []bool{false, true} {
				title := fmt.Sprintf("%s/pods=%d", name, n)
				if scratch {
					// What every sync did before the Compiler and the
					// builder: the comparison under the same load.
					title += "/from-scratch"
				}
				b.Run(title, func(b *testing.B) { benchPlanChange(b, n, name, scratch) })
			}
		}
	}
}

// benchPlanChange times one change's compile, desired state and diff,
// incrementally or (scratch) from scratch.
func benchPlanChange(b *testing.B, n int, name string, scratch bool) {
	s := pt.NewScale(n, benchPolicies)
	c, bld := policy.NewCompiler(), newBuilder()
	prev := bld.build(c.Compile(scaleInput(s)))
	i, ops := 0, 0
	cpu0 := processCPU()
	for b.Loop() {
		changes[name](s, i)
		i++
		if scratch {
			c, bld = policy.NewCompiler(), newBuilder()
		}
		next := bld.build(c.Compile(scaleInput(s)))
		tx := knftables.NewFake(TableFamily, TableName).NewTransaction()
		writeDiff(tx, prev, next)
		if ops = tx.NumOperations(); ops == 0 {
			b.Fatal("the change wrote nothing")
		}
		prev = next
	}
	reportCPU(b, processCPU()-cpu0)
	b.ReportMetric(float64(ops), "tx-ops")
}

func BenchmarkPlanShare(b *testing.B) {
	for _, name := range []string{"cold", "podAdded", "podRelabelled", "policyChanged"} {
		b.Run(name+"/pods=10000/local=100", func(b *testing.B) {
			s := pt.NewScaleLocal(10000, benchPolicies, 100)
			c, bld := policy.NewCompiler(), newBuilder()
			prev := bld.build(c.Compile(scaleInput(s)))
			i := 0
			for b.Loop() {
				if name != "cold" {
					changes[name](s, i)
					i++
				} else {
					c, bld = policy.NewCompiler(), newBuilder()
				}
				next := bld.build(c.Compile(scaleInput(s)))
				tx := knftables.NewFake(TableFamily, TableName).NewTransaction()
				if name == "cold" {
					writeFull(tx, next)
				} else {
					writeDiff(tx, prev, next)
				}
				prev = next
			}
			objs, rules, elems := prev.counts()
			reportCounts(b, policy.SyncResult{Objects: objs, Rules: rules, Elements: elems})
		})
	}
}

// BenchmarkSyncKernel is BenchmarkSyncFake against the kernel.
func BenchmarkSyncKernel(b *testing.B) {
	testnet.RequireRoot(b)
	ns := testnet.NewNetns(b, "polbench")
	var nft knftables.Interface
	var nl *Netlink
	if err := ns.Do(func() (err error) {
		if nft, err = NewNFTables(); err != nil {
			return err
		}
		nl, err = NewNetlink()
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = nl.Close() })
	in := func(fn func() error) {
		if err := ns.Do(fn); err != nil {
			b.Fatal(err)
		}
	}
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("cold/pods=%d", n), func(b *testing.B) {
			in(func() error { return New(nft).Remove(context.Background()) })
			in0 := scaleInput(pt.NewScale(n, benchPolicies))
			var res policy.SyncResult
			var lat latencies
			for b.Loop() {
				// From no table (a fresh node): compile, build, write.
				b.StopTimer()
				in(func() error { return New(nft).Remove(context.Background()) })
				b.StartTimer()
				lat.start()
				in(func() (err error) {
					m := policy.NewCompiler().Compile(in0)
					res, err = New(nft, WithNetlink(nl)).Sync(context.Background(), m, false)
					return err
				})
				lat.stop()
				if !res.Wrote {
					b.Fatal("cold sync wrote nothing")
				}
			}
			lat.report(b)
			reportCounts(b, res)
			reportKernelObjects(b, ns, nft)
		})
		for _, name := range []string{"podAdded", "podRelabelled", "policyChanged"} {
			b.Run(fmt.Sprintf("%s/pods=%d", name, n), func(b *testing.B) {
				e := New(nft, WithNetlink(nl))
				var err error
				benchIncrementalIn(b, e, n, changes[name], func(fn func()) {
					err = ns.Do(func() error { fn(); return nil })
				})
				if err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// benchIncrementalIn programs the scale once, then times ops that apply
// ch, compile (policy.Compiler, as the agent does) and sync; run wraps
// each sync (to enter a namespace). It reports each op's wall time as
// p50/p99 and the process's CPU time per op (the machine may be shared:
// CPU time does not count waiting for it).
func benchIncrementalIn(b *testing.B, e *Enforcer, n int, ch change, run func(func())) {
	s := pt.NewScale(n, benchPolicies)
	c := policy.NewCompiler()
	var res policy.SyncResult
	var err error
	run(func() { res, err = e.Sync(context.Background(), c.Compile(scaleInput(s)), true) })
	if err != nil {
		b.Fatal(err)
	}
	var lat latencies
	i := 0
	for b.Loop() {
		ch(s, i)
		i++
		lat.start()
		run(func() {
			// The op runs on this (locked) thread: its CPU time here
			// is the op's own, without waiting for a CPU.
			t0 := threadCPU()
			res, err = e.Sync(context.Background(), c.Compile(scaleInput(s)), false)
			lat.own = append(lat.own, threadCPU()-t0)
		})
		lat.stop()
		if err != nil {
			b.Fatal(err)
		}
		if !res.Wrote {
			b.Fatal("the change wrote nothing")
		}
	}
	lat.report(b)
	reportCounts(b, res)
}

// latencies records the wall and CPU time of timed sections.
type latencies struct {
	wall []time.Duration
	// own is each section's CPU time on its own thread (when recorded).
	own  []time.Duration
	cpu  time.Duration
	t0   time.Time
	cpu0 time.Duration
}

func (l *latencies) start() { l.t0, l.cpu0 = time.Now(), processCPU() }

func (l *latencies) stop() {
	l.wall = append(l.wall, time.Since(l.t0))
	l.cpu += processCPU() - l.cpu0
}

// report adds p50-ms, p99-ms and cpu-ms/op, and own-cpu-p50-ms and
// own-cpu-p99-ms where each op's thread CPU time was recorded: on a
// shared machine a wall-clock p99 mostly measures waiting for a CPU, the
// op's own CPU time what it costs (the GC's background work on other
// threads is in cpu-ms/op only).
func (l *latencies) report(b *testing.B) {
	if len(l.wall) == 0 {
		return
	}
	b.ReportMetric(percentile(l.wall, 0.50), "p50-ms")
	b.ReportMetric(percentile(l.wall, 0.99), "p99-ms")
	b.ReportMetric(float64(l.cpu.Microseconds())/1000/float64(len(l.wall)), "cpu-ms/op")
	if len(l.own) > 0 {
		b.ReportMetric(percentile(l.own, 0.50), "own-cpu-p50-ms")
		b.ReportMetric(percentile(l.own, 0.99), "own-cpu-p99-ms")
	}
}

// percentile returns the p-th percentile of ds in milliseconds.
func percentile(ds []time.Duration, p float64) float64 {
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return float64(sorted[max(i, 0)].Microseconds()) / 1000
}

// threadCPU returns the calling thread's CPU time. CLOCK_THREAD_CPUTIME_ID
// counts the scheduler's exact run time; getrusage(RUSAGE_THREAD) splits
// it into user and system time by sampled ticks, and on this kernel its
// sum moved in steps of several ms, too coarse for one op.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// reportCPU adds cpu-ms/op for the CPU time the loop used.
func reportCPU(b *testing.B, cpu time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
	}
}

// processCPU returns the user and system time the process and its
// finished children (nft) have used.
func processCPU() time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}

// BenchmarkKeptMemory reports what the agent keeps between syncs: the
// informer-like objects (pods, namespaces, policies, as the scale builds
// them, untrimmed) and, on top of them, the policy engine: the Compiler
// with its last model, the last model kept for cutting connections, and
// the Enforcer's builder with the last programmed state. engine-MiB is
// the engine's growth of the agent's memory.
func BenchmarkKeptMemory(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("pods=%d", n), func(b *testing.B) {
			var objects, engine float64
			for b.Loop() {
				var s *pt.Scale
				objects = retainedMiB(func() any {
					s = pt.NewScale(n, benchPolicies)
					return s
				})
				engine = retainedMiB(func() any {
					c, bld := policy.NewCompiler(), newBuilder()
					m := c.Compile(scaleInput(s))
					st := bld.build(m)
					// One incremental step, so the kept state is a
					// steady one.
					changes["podRelabelled"](s, 0)
					m = c.Compile(scaleInput(s))
					st = bld.build(m)
					return []any{c, m, bld, st}
				})
				runtime.KeepAlive(s)
			}
			b.ReportMetric(objects, "objects-MiB")
			b.ReportMetric(engine, "engine-MiB")
		})
	}
}

// retainedMiB returns the heap that what build returns keeps alive: the
// memory the agent holds between syncs for the last programmed state.
func retainedMiB(build func() any) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	kept := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(kept)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20)
}

func reportCounts(b *testing.B, res policy.SyncResult) {
	b.ReportMetric(float64(res.Objects), "objects")
	b.ReportMetric(float64(res.Rules), "rules")
	b.ReportMetric(float64(res.Elements), "elements")
}

// reportKernelObjects counts what the kernel holds, to check the counts.
func reportKernelObjects(b *testing.B, ns *testnet.Netns, nft knftables.Interface) {
	total := 1 // the table
	err := ns.Do(func() error {
		for _, kind := range []string{"chains", "sets", "maps", "counters"} {
			names, err := nft.List(context.Background(), kind)
			if err != nil {
				return err
			}
			total += len(names)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(total), "kernel-objects")
}
