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
