// Package bench compares plexus-ingress with Debian's nginx as plain reverse proxies to the same
// backend, under the same load, in throwaway network namespaces (see BenchmarkVsNginx; it needs
// root and an nginx binary). Its load generator (load.go) holds a fixed set of keep-alive
// connections, so both proxies see the same connections and the same request stream.
package bench
