#!/usr/bin/env bash
# Prints the ingress proxy's benchmark figures next to issue 12's targets. Run through `make bench`.
# The comparison with nginx needs root (it runs in network namespaces) and Debian's nginx.
set -euo pipefail
cd "$(dirname "$0")/.."

printf '\n==> [bench] Ingress config apply: translate + encode + load at 100 / 1,000 / 5,000 paths (ns/op; target <= 100 ms at 1,000), live heap per 1,000 paths\n'
go test -run '^$' -bench BenchmarkTranslateAndLoad -benchtime 10x ./ingress/proxy/ 2>&1 |
  grep -E '^(Benchmark|FAIL|---)' |
  awk '{
    name = $1; sub(/-[0-9]+$/, "", name); sub(/.*paths=/, "", name)
    for (i = 3; i < NF; i += 2) v[$(i + 1)] = $i
    printf "  paths=%-5s apply %7.1f ms (translate %5.1f ms, load %6.1f ms)  heap %.2f MiB per 1,000 paths\n",
      name, v["ns/op"] / 1e6, v["translate-ms/op"], v["load-ms/op"], v["heap-MiB-per-1000-routes"]
  }'

# side_by_side formats a comparison benchmark's output (go test -v lines of file $1, the benchmark
# line starting with $2): the rounds, then a table and the targets.
side_by_side() {
  grep -E "^(Benchmark|FAIL|---)|$1" | sed "s/ *$1:[0-9]*: /  /" |
    awk -v bench="$2" '
      index($0, bench) == 1 { for (i = 3; i < NF; i += 2) v[$(i + 1)] = $i; next }
      { print }
      END {
        if (!("plexus-rps" in v)) exit
        printf "  %-14s %12s %10s %10s %16s\n", "", "requests/s", "p50 ms", "p99 ms", "CPU µs/request"
        printf "  %-14s %12.0f %10.2f %10.2f %16.1f\n", "plexus-ingress", v["plexus-rps"], v["plexus-p50-ms"], v["plexus-p99-ms"], v["plexus-cpu-us/req"]
        printf "  %-14s %12.0f %10.2f %10.2f %16.1f\n", "nginx", v["nginx-rps"], v["nginx-p50-ms"], v["nginx-p99-ms"], v["nginx-cpu-us/req"]
        printf "  plexus-ingress: %.0f %% of nginx requests/s (target >= 80; median of the same-round ratios: %.0f %%), p99 %.2fx nginx (target <= 1.5)\n", v["rps-%-of-nginx"], v["rps-%-of-nginx-same-round"], v["p99-x-nginx"]
        printf "  CPU per request: plexus-ingress %.1fx nginx\n", v["plexus-cpu-us/req"] / v["nginx-cpu-us/req"]
      }'
}

# Both need root and Debian's nginx (installed here when missing, as `make bench` installs its
# other baselines); both proxies get the same connections and the same generator.
if [ "$(id -u)" -eq 0 ] && ! command -v nginx >/dev/null && command -v apt-get >/dev/null; then
  printf '\n==> [bench] installing Debian'"'"'s nginx-light (the baseline of the ingress comparison; its service is not started)\n'
  # A policy-rc.d that answers 101 keeps the package's service from starting (the benchmarks run
  # their own nginx); one the machine already has is left as it is.
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  (apt-get install -y -qq nginx-light >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null; }) ||
    printf '  could not install nginx-light\n'
  if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
if [ "$(id -u)" -eq 0 ] && command -v nginx >/dev/null; then
  printf '\n==> [bench] Ingress proxy vs nginx on the lab (starts its own 3-node lab): plexus-ingress as the operator deploys it (1 replica) and nginx in the same pod network namespace and CPU cgroups, behind one LoadBalancer Service, both to the lab echo pods; 64 keep-alive connections from outside the cluster, 3 alternating rounds of 5 s (medians) (targets: >= 80 %% of nginx requests/s, p99 <= 1.5x nginx)\n'
  printf '  load before: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  go test -run '^$' -bench BenchmarkIngressVsNginx -benchtime 1x -timeout 20m -v ./test/labbench/ 2>&1 |
    side_by_side ingress_test.go BenchmarkIngressVsNginx
  printf '\n==> [bench] Ingress proxy vs nginx, in network namespaces (no lab: the proxy binary beside nginx, one Go backend), same 64 keep-alive connections, 3 alternating rounds of 5 s each (medians)\n'
  printf '  load before: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  go test -run '^$' -bench BenchmarkVsNginx -benchtime 1x -timeout 10m ./ingress/bench/ 2>&1 |
    side_by_side nginx_bench_test.go BenchmarkVsNginx
else
  printf '\n==> [bench] ingress proxy vs nginx skipped: needs root (network namespaces, the lab) and nginx (apt-get install nginx-light)\n'
fi
