#!/usr/bin/env bash
# Prepares what the IPVS test VM boots: Debian's cloud kernel (resolved
# through the meta package, so a security update changes nothing here), its
# modules with a depmod-ed tree, the module load order for IPVS and the test
# topology, and a static busybox. Everything is cached under
#   ${XDG_CACHE_HOME:-$HOME/.cache}/plexus/ipvsvm/<kernel version>
# and a complete cache is reused without touching the network.
#
# Usage: hack/ipvsvm/prepare.sh
# Prints one "==> [ipvsvm]" line per step on stderr and, on stdout, the cache
# directory as its only line. The directory holds:
#   vmlinuz          the kernel
#   busybox          a static busybox
#   modules/         lib/modules/<kver> with the modules to load and modules.dep
#   modules.load     the .ko paths (relative to modules/) in load order
#   kernel.release   the kernel version
#   .complete        stamp written last: the module list it was made for
set -euo pipefail

readonly META_PACKAGE=linux-image-cloud-amd64
readonly BUSYBOX_PACKAGE=busybox-static
# Modules the VM loads: IPVS with the schedulers Plexus offers, veth for the
# test topology, dummy for the virtual-IP interface, nftables with NAT for the
# masquerade rules of the IPVS mode. nf_conntrack comes in as a dependency of
# ip_vs; it is named so a kernel that changes that still works. The list is
# written into the cache's stamp: changing it re-prepares the cache.
readonly MODULES=(ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sh nf_conntrack veth dummy
  nf_nat nf_tables nft_chain_nat nft_masq nft_ct)
# Host tools the preparation and the runner need, with their Debian package.
readonly -A TOOLS=([depmod]=kmod [modprobe]=kmod [modinfo]=kmod [dpkg-deb]=dpkg [qemu-system-x86_64]=qemu-system-x86)

say() { printf '==> [ipvsvm] %s\n' "$*" >&2; }
die() { printf '==> [ipvsvm] error: %s\n' "$*" >&2; exit 1; }

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/plexus/ipvsvm"
work=""

ensure_tools() {
  local missing=() tool
  for tool in "${!TOOLS[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${TOOLS[$tool]}")
  done
  [ ${#missing[@]} -eq 0 ] && { say "host tools present"; return; }
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${missing[*]}; run as root or install them (make deps)"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# resolve_kernel_package prints the versioned kernel package the meta
# package depends on today (e.g. linux-image-6.1.0-56-cloud-amd64).
resolve_kernel_package() {
  local pkg
  pkg=$(apt-cache depends "$META_PACKAGE" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  if [ -z "$pkg" ]; then
    # apt-cache knows nothing before the first apt-get update.
    [ "$(id -u)" -eq 0 ] || die "apt-cache does not know $META_PACKAGE; run apt-get update as root"
    apt-get update -qq >&2
    pkg=$(apt-cache depends "$META_PACKAGE" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  fi
  [ -n "$pkg" ] || die "cannot resolve $META_PACKAGE to a kernel package"
  printf '%s\n' "$pkg"
}

main() {
  ensure_tools
  local kpkg kver dir
  kpkg=$(resolve_kernel_package)
  # Package linux-image-<kver>[-unsigned] holds /boot/vmlinuz-<kver>.
  kver=${kpkg#linux-image-}
  kver=${kver%-unsigned}
  dir="$cache_root/$kver"
  say "kernel $kver (from $META_PACKAGE)"
  if [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "${MODULES[*]}" ]; then
    say "cached in $dir"
    printf '%s\n' "$dir"
    return
  fi

  mkdir -p "$cache_root"
  work=$(mktemp -d "$cache_root/.work.XXXXXX")
  trap '[ -z "$work" ] || rm -rf "$work"' EXIT
  say "downloading $kpkg and $BUSYBOX_PACKAGE"
  local apt_opts=()
  # As root apt fetches as the _apt user, who cannot write into root's cache.
  [ "$(id -u)" -ne 0 ] || apt_opts=(-o APT::Sandbox::User=root)
  (cd "$work" && apt-get download -qq "${apt_opts[@]}" "$kpkg" "$BUSYBOX_PACKAGE" >&2) || die "apt-get download $kpkg $BUSYBOX_PACKAGE failed"

  say "unpacking"
  mkdir -p "$work/kernel" "$work/busybox"
  dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"
  dpkg-deb -x "$work"/busybox-static_*.deb "$work/busybox"
  [ -f "$work/kernel/boot/vmlinuz-$kver" ] || die "no /boot/vmlinuz-$kver in $kpkg"
  [ -x "$work/busybox/bin/busybox" ] || die "no /bin/busybox in $BUSYBOX_PACKAGE"

  # The package ships no modules.dep: modprobe and busybox's modprobe need it.
  say "depmod"
  depmod -b "$work/kernel" "$kver"

  # -C /dev/null keeps the host's modprobe.d (blacklists, softdeps) out; the
  # output lists soft and hard dependencies first, in an order insmod accepts.
  say "module load order for ${MODULES[*]}"
  local order=()
  mapfile -t order < <(modprobe -C /dev/null -d "$work/kernel" -S "$kver" --show-depends -a "${MODULES[@]}" |
    awk '$1 == "insmod" {print $2}' | awk '!seen[$0]++')
  [ ${#order[@]} -gt 0 ] || die "modprobe --show-depends listed no module"

  say "vermagic check of ${#order[@]} modules"
  local stage="$work/stage" ko rel magic
  mkdir -p "$stage/modules"
  : >"$stage/modules.load"
  for ko in "${order[@]}"; do
    magic=$(modinfo -F vermagic "$ko")
    # vermagic starts with the kernel release the module was built for; a
    # mismatch makes insmod fail with "Invalid module format" inside the VM.
    [ "${magic%% *}" = "$kver" ] || die "$ko: vermagic '$magic' is not for $kver"
    rel=${ko#"$work/kernel/"}
    mkdir -p "$stage/modules/$(dirname "$rel")"
    cp "$ko" "$stage/modules/$rel"
    printf '%s\n' "$rel" >>"$stage/modules.load"
  done
  # The trimmed tree gets its own modules.dep, for moby/ipvs' `modprobe ip_vs`.
  cp "$work/kernel/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$stage/modules/lib/modules/$kver/" 2>/dev/null || true
  depmod -b "$stage/modules" "$kver"

  cp "$work/kernel/boot/vmlinuz-$kver" "$stage/vmlinuz"
  cp "$work/busybox/bin/busybox" "$stage/busybox"
  printf '%s\n' "$kver" >"$stage/kernel.release"
  printf '%s\n' "${MODULES[*]}" >"$stage/.complete"
  rm -rf "$dir"
  mv "$stage" "$dir"
  say "prepared $dir ($(du -sh "$dir" | cut -f1))"
  printf '%s\n' "$dir"
}

main "$@"
