// Package ipvsvm boots a static Go test binary in a small virtual machine
// whose kernel has IPVS, for real-kernel tests on hosts whose own kernel has
// none (and no dummy link type either).
//
// Prepare runs prepare.sh (embedded), which downloads and caches Debian's
// cloud kernel, its IPVS, veth and dummy modules in load order and a static
// busybox under ${XDG_CACHE_HOME:-$HOME/.cache}/plexus/ipvsvm/<kernel version>.
// Run packs an initramfs from that cache and the binary (busybox with its
// applets, the modules, an /init that loads them and runs the binary) and
// boots it with qemu-system-x86_64, TCG unless kvm_intel or kvm_amd is loaded.
// The console streams to the caller; the exit code comes from a marker line
// that /init prints after the binary returns.
//
// Typical use from a test that builds its own package statically:
//
//	vm, err := ipvsvm.Prepare(ctx, os.Stderr)
//	res, err := vm.Run(ctx, ipvsvm.RunOptions{Binary: bin, Args: []string{"-test.v"}, Console: w})
//	if res.ExitCode != 0 { t.Fatal(...) }
package ipvsvm
