#!/usr/bin/env bash
# Prints Plexus' benchmark figures next to their targets. Run through `make bench` (which builds
# the control plane and sets KUBEBUILDER_ASSETS). The real-kernel benchmarks need root.
set -euo pipefail
cd "$(dirname "$0")/.."

run() { # title, go test arguments...
  local title=$1; shift
  printf '\n==> [bench] %s\n' "$title"
  go test -run '^$' "$@" 2>&1 | grep -E '^(Benchmark|ok|FAIL|---|\s+\S+\.go:[0-9]+:)' || true
}

run "IPAM in memory: 5,000 nodes, /24 each (target ≤ 50 ms; a /12 holds 4,096 /24s, so 5,000 come from a /11)" \
  -bench . -benchtime 20x ./controllers/ipam/
run "IPAM against the real API server: 1,000 Nodes created at once until all have NodeNetworks (target ≤ 30 s)" \
  -bench NodeJoin1000 -benchtime 1x -timeout 15m ./test/bench/
run "Service model: full build of 10k services, one incremental update at 10k (model alone; with the agent's Feed and Manager around a backend)" \
  -bench 'Build10k|OneChange10k' -benchmem ./agent/proxy/ ./agent/services/
# policy_bench runs the NetworkPolicy benchmarks (real kernel, throwaway network namespaces) and
# prints their figures as a table beside the targets of issue 10, after the raw benchmark lines.
policy_bench() {
  local title="NetworkPolicy, nftables: 1k and 10k pods x 1k policies on one node (sync = incremental compile + desired state + diff + kernel write; wall p50/p99 and CPU per op, CPU counts nft too; own thread CPU from CLOCK_THREAD_CPUTIME_ID)"
  local raw
  raw=$(mktemp)
  printf '\n==> [bench] %s\n' "$title"
  {
    go test -run '^$' -bench 'BenchmarkSyncKernel/cold' -benchtime 5x -timeout 20m ./agent/policy/nftables/
    # 200 ops each: with 50 the p99 is the single slowest op.
    go test -run '^$' -bench 'BenchmarkSyncKernel/(podAdded|podRelabelled|policyChanged)' -benchtime 200x -benchmem -timeout 20m ./agent/policy/nftables/
    go test -run '^$' -bench 'BenchmarkKeptMemory' -benchtime 1x ./agent/policy/nftables/
    go test -run '^$' -bench 'BenchmarkKernelFirstPacket' -benchtime 2000x -timeout 20m ./agent/policy/nftables/
  } 2>&1 | grep -E '^(Benchmark|ok|FAIL|---|\s+\S+\.go:[0-9]+:)' | tee "$raw" || true
  awk '
    /^Benchmark/ {
      name = $1; sub(/-[0-9]+$/, "", name)
      for (i = 3; i < NF; i += 2) v[name, $(i + 1)] = $i
    }
    function f(name, unit) { return ((name, unit) in v) ? sprintf("%.1f", v[name, unit]) : "-" }
    function row(label, a, b, target) { printf "  %-46s %-27s %-27s %s\n", label, a, b, target }
    function sync(kind, n) {
      k = "BenchmarkSyncKernel/" kind "/pods=" n
      return f(k, "p50-ms") " / " f(k, "p99-ms") " (" f(k, "cpu-ms/op") ")"
    }
    function own(kind, n) {
      k = "BenchmarkSyncKernel/" kind "/pods=" n
      return f(k, "own-cpu-p50-ms") " / " f(k, "own-cpu-p99-ms")
    }
    function mb(kind, n) {
      k = "BenchmarkSyncKernel/" kind "/pods=" n
      return ((k, "B/op") in v) ? sprintf("%.2f", v[k, "B/op"] / 1e6) : "-"
    }
    END {
      print ""
      row("figure", "pods=1000", "pods=10000", "target")
      row("cold programming, ms: p50 / p99 (cpu)", sync("cold", 1000), sync("cold", 10000), "<= 1000 at 10k pods")
      row("one pod added, ms: p50 / p99 (cpu)", sync("podAdded", 1000), sync("podAdded", 10000), "p99 <= 20")
      row("one pod relabelled, ms: p50 / p99 (cpu)", sync("podRelabelled", 1000), sync("podRelabelled", 10000), "p99 <= 20")
      row("one policy changed, ms: p50 / p99 (cpu)", sync("policyChanged", 1000), sync("policyChanged", 10000), "p99 <= 20")
      row("  own thread CPU, ms: pod added p50 / p99", own("podAdded", 1000), own("podAdded", 10000), "(no wait for a CPU)")
      row("  own thread CPU, ms: pod relabelled", own("podRelabelled", 1000), own("podRelabelled", 10000), "")
      row("  own thread CPU, ms: policy changed", own("policyChanged", 1000), own("policyChanged", 10000), "")
      row("  allocated per op, MB: pod added", mb("podAdded", 1000), mb("podAdded", 10000), "(sets how often the GC runs)")
      row("  allocated per op, MB: pod relabelled", mb("podRelabelled", 1000), mb("podRelabelled", 10000), "")
      row("  allocated per op, MB: policy changed", mb("policyChanged", 1000), mb("policyChanged", 10000), "")
      row("kernel objects (chains, sets, maps, counters)", f("BenchmarkSyncKernel/cold/pods=1000", "kernel-objects"), f("BenchmarkSyncKernel/cold/pods=10000", "kernel-objects"), "independent of pods x policies")
      row("agent memory: policy engine, MiB", f("BenchmarkKeptMemory/pods=1000", "engine-MiB"), f("BenchmarkKeptMemory/pods=10000", "engine-MiB"), "growth <= 50 MiB")
      row("  (informer-like objects, untrimmed, MiB)", f("BenchmarkKeptMemory/pods=1000", "objects-MiB"), f("BenchmarkKeptMemory/pods=10000", "objects-MiB"), "")
      fp = "BenchmarkKernelFirstPacket/policies="
      row("first packet (TCP connect), median us", "0 policies: " f(fp "0/selecting=0", "median-µs/connect"), "1k policies: " f(fp "1000/selecting=10", "median-µs/connect"), "")
      row("  added (paired with an unselected pod), us", "10 select dst: " f(fp "1000/selecting=10", "added-µs"), "all 1k select dst: " f(fp "1000/selecting=1000", "added-µs"), "<= 10")
      row("  the pairing's zero: 0 policies, us", f(fp "0/selecting=0", "added-µs"), "", "")
    }' "$raw"
  rm -f "$raw"
}

if [ "$(id -u)" -eq 0 ]; then
  run "Routes: 5,000 peer routes (target ≤ 100 ms), one change at 5,000 (target ≤ 5 ms), next to ip -batch" \
    -bench . -benchtime 5x ./agent/routing/
  run "CNI: ADD+DEL through libcni, as a runtime calls it" -bench . -benchtime 10x ./agent/cni/
  run "Service proxy, nftables: 1k/5k/10k services x 10 endpoints (targets: cold <= 300 ms at 1k and <= 2 s at 10k; incremental p99 <= 20 ms; no-op <= 500 ms with 0 writes; <= 200 MiB)" \
    -bench BenchmarkProxy -benchtime 1x -timeout 20m ./agent/proxy/nftables/
  run "Service proxy vs upstream kube-proxy v1.37.2 (nftables mode), both through a real API server: 1k/5k/10k services x 10 endpoints, end to end (kp/px = kube-proxy / Plexus)" \
    -bench BenchmarkProxyComparison -benchtime 1x -timeout 40m ./test/proxybench/
  policy_bench
  run "Lab, end to end (starts its own 3-node lab; skips if a lab runs): Service created -> reachable from every node, 100 Services (targets p50 <= 200 ms, p99 <= 1 s); node join: Node registered -> Ready and routed from every other node" \
    -bench 'ServiceProgramming|NodeJoin' -benchtime 1x -timeout 20m ./test/labbench/
  # Cluster DNS (its own lab run): one pod's lookups through the kube-dns Service next to the same
  # load sent to a CoreDNS pod directly, cached and uncached names.
  run "Cluster DNS in the lab (starts its own 3-node lab): lookups/s, p50 and p99 from one pod, through the kube-dns Service vs a CoreDNS pod by its IP (the Service path's cost); cached name vs new names forwarded to the lab's upstream" \
    -bench ClusterDNS -benchtime 1x -timeout 20m ./test/labbench/
else
  printf '\n==> [bench] real-kernel benchmarks skipped: they need root (network namespaces)\n'
fi
