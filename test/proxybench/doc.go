// Package proxybench compares the Plexus service proxy (nftables backend) with upstream
// kube-proxy v1.37.2 in nftables mode, both fed by a real kube-apiserver through informers, at
// 1k, 5k and 10k Services × 10 endpoints. Everything runs inside one throwaway network namespace
// (etcd and the API server on its loopback, each proxy in turn), so no rule touches the
// machine's own namespace. Root only; run it through `make bench` or
//
//	go test ./test/proxybench/ -run '^$' -bench BenchmarkProxyComparison -benchtime 1x -timeout 30m
//
// (`-bench BenchmarkProxyComparison/10k` runs one size). Environment variables narrow or
// instrument a run:
//
//   - PROXYBENCH_ONLY=plexus (or kube-proxy) measures one side only; the other's figures are 0.
//   - PROXYBENCH_HEAP_PROFILE=FILE makes the Plexus process write its heap profile to FILE
//     where the benchmark reads its Go heap (`go tool pprof -sample_index=inuse_space FILE`),
//     and to FILE.first after its first sync (as of the last GC, near the process's peak).
//   - PROXYBENCH_LOG_DIR=DIR keeps the processes' logs in DIR (default: the temporary
//     directory, removed at the end).
//   - PROXYBENCH_AGENT_GOGC, PROXYBENCH_AGENT_GOMEMLIMIT and PROXYBENCH_AGENT_GODEBUG become
//     the Plexus process's GOGC, GOMEMLIMIT and GODEBUG (e.g. gctrace=1, with
//     PROXYBENCH_LOG_DIR); plexus-agent --memory-limit=L sets the soft limit to 90% of L.
//
// For example, the Plexus side at 10k alone:
//
//	PROXYBENCH_ONLY=plexus go test ./test/proxybench/ -run '^$' -bench 'BenchmarkProxyComparison/10k' -benchtime 1x -timeout 30m
//
// The Plexus process caches Services and EndpointSlices through the agent's own informer
// transforms (cachetrim.Service, cachetrim.EndpointSlice); PROXYBENCH_AGENT_UNTRIMMED=1 turns
// them off to measure what they save. The benchmark code is in the _test.go
// files; the Plexus side runs as a child process of the test binary (see agent_test.go) so that
// its memory is measured like kube-proxy's: the RSS of a process holding informer caches, the
// model and the proxier.
package proxybench
