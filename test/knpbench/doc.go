// Package knpbench measures the upstream NetworkPolicy reference agent,
// sigs.k8s.io/kube-network-policies (KNP) v0.8.0, built from the Go module proxy by
// hack/knp/build.sh, against a real kube-apiserver with the objects of Plexus' policy benchmarks
// (agent/policy/policytest.NewScale: 1k and 10k pods on one node, 1k NetworkPolicies over 100
// namespaces), so that its figures stand beside Plexus' in `make bench`.
//
// Everything runs inside one throwaway network namespace, the "node": etcd and the API server on
// its loopback, KNP as the node's agent, and two fake pods (their own namespaces, routed veths)
// whose addresses are those of two pods in the API. Root only; run it through `make bench` or
//
//	go test ./test/knpbench/ -run '^$' -bench BenchmarkKNP -benchtime 1x -timeout 30m
//
// KNP programs one nftables table whose rules send the first packet of every connection to or
// from a pod selected by a policy to an nfqueue; it decides in user space. The `queue` statement
// needs the kernel's nft_queue (CONFIG_NFT_QUEUE). Where the kernel lacks it (the CI machines:
// nfnetlink_queue is built in, nft_queue is not and no module can be loaded), KNP's nftables
// transaction is refused as a whole and nothing of its table exists; the benchmark then says so
// and measures what does run: KNP's syncs (from its log: start or API write → the sync that
// submits the change), its memory, and its user-space verdicts through the same nfqueue, with
// its queue rule mirrored by the benchmark through the xtables NFQUEUE target (nft_compat),
// which this kernel has. At 10k pods KNP's transaction fails before the kernel sees it: it sends
// its set of selected pod IPs in one netlink message, larger than the default socket send buffer
// (net.core.wmem_default), which sendmsg refuses ("message too long"). The benchmark code is in the _test.go files; KNPBENCH_LOG_DIR=DIR keeps
// the processes' logs.
package knpbench
