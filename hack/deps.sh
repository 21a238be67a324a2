#!/usr/bin/env bash
# Installs the Debian packages that Plexus' tests and lab need and a fresh machine lacks.
# Idempotent: prints one line per package and installs only what is missing.
set -euo pipefail

packages=(nftables iproute2 conntrack kmod openssl ca-certificates qemu-system-x86 runc)
missing=()
for p in "${packages[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    printf '==> [deps] %s: present\n' "$p"
  else
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "==> [deps] missing Debian packages: ${missing[*]}; run as root or install them" >&2
  exit 1
fi
printf '==> [deps] installing %s\n' "${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
