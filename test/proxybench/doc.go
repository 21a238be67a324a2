// Package proxybench compares the Plexus service proxy (nftables backend) with upstream
// kube-proxy v1.37.2 in nftables mode, both fed by a real kube-apiserver through informers, at
// 1k, 5k and 10k Services × 10 endpoints. Everything runs inside one throwaway network namespace
// (etcd and the API server on its loopback, each proxy in turn), so no rule touches the
// machine's own namespace. Root only; run it through `make bench` or
//
//	go test ./test/proxybench/ -run '^$' -bench BenchmarkProxyComparison -benchtime 1x -timeout 30m
//
// (`-bench BenchmarkProxyComparison/10k` runs one size). The benchmark code is in the _test.go
// files; the Plexus side runs as a child process of the test binary (see agent_test.go) so that
// its memory is measured like kube-proxy's: the RSS of a process holding informer caches, the
// model and the proxier.
package proxybench
