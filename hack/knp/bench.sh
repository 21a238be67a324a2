#!/usr/bin/env bash
# Prints the figures of the upstream NetworkPolicy reference agent, kube-network-policies, in
# the rows of Plexus' policy benchmark (test/knpbench). Run through `make bench`, which builds
# the control plane and sets KUBEBUILDER_ASSETS. Needs root (network namespaces, nftables).
set -euo pipefail
cd "$(dirname "$0")/../.."

printf '\n==> [bench] NetworkPolicy vs upstream kube-network-policies v0.8.0, through a real API server: 1k/10k pods x 1k policies on one node (policy-knp rows line up with Plexus'"'"' policy rows)\n'
if [ "$(id -u)" -ne 0 ]; then
  printf '==> [bench] skipped: it needs root (network namespaces)\n'
  exit 0
fi
hack/knp/build.sh >/dev/null
go test -run '^$' -bench BenchmarkKNP -benchtime 1x -timeout 30m ./test/knpbench/ 2>&1 |
  grep -E '^(Benchmark|ok|FAIL|---|\s+\S+\.go:[0-9]+:)' || true
