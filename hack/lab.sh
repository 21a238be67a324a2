#!/usr/bin/env bash
# The local lab (make lab): a real multi-node cluster on this machine with Plexus installed as its
# only CNI and service proxy. A thin wrapper around `plexusctl lab` (internal/lab does the work).
#
#   hack/lab.sh up [-nodes N] | down | status      (each also takes -name N -slot S: another lab beside)
#   hack/lab.sh verify-down     # up, abort it midway, down: checks that nothing is left behind
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/plexus
ctl=$cache/bin/plexusctl

# plexusctl is built outside the checkout: lab up starts it again as the API forwarder.
(cd "$here" && CGO_ENABLED=0 go build -o "$ctl" ./cmd/plexusctl)

# snapshot prints what the lab may touch on the machine, to compare before and after.
snapshot() {
  # Other suites' throwaway namespaces (plx*, e.g. testnet's plxt-*) come and go on their own.
  echo "## netns"; { ip netns list | grep -v '^plx' || true; } | sort
  echo "## links"; ip -o link show | awk -F': ' '{print $2}' | sort
  echo "## addresses"; ip -o addr show | awk '{print $2, $4}' | sort
  echo "## routes"; { ip route show table all; ip -6 route show table all; } | sort
  echo "## nft"; nft list tables | sort
  echo "## mounts"; { awk '{print $2, $3}' /proc/self/mounts | grep -v '/run/netns/plx' || true; } | sort
  echo "## cgroups"; ls -d /sys/fs/cgroup/*/plexus-lab 2>/dev/null || true
  # Lab processes are in the plexus-lab cgroups; node programs by name (other suites run their own
  # etcd and kube-apiserver, never these).
  echo "## processes"
  { grep -l ":/plexus-lab/" /proc/[0-9]*/cgroup 2>/dev/null || true; } | wc -l
  ps -eo comm= | grep -E '^(containerd|containerd-shim|kubelet|pause|plexus-agent|plexus-operator|plexusctl)' | sort | uniq -c || true
  echo "## dirs"; ls -d /run/netns /run/containerd /run/plexus /var/lib/containerd /var/lib/kubelet /var/lib/cni \
    /var/log/pods /var/log/containers /etc/containerd /etc/cni /opt/cni /opt/containerd /run/nri /var/run/nri "$cache/lab" 2>/dev/null || true
  echo "## sysctl"; sysctl vm.overcommit_memory kernel.panic kernel.panic_on_oops
}

verify_down() {
  local before after abort=${1:-25}
  before=$(mktemp); after=$(mktemp)
  trap 'rm -f "$before" "$after"' RETURN
  "$ctl" lab down >/dev/null
  snapshot >"$before"
  echo "==> [lab] verify-down: starting lab up and aborting it after ${abort}s"
  timeout -s KILL "$abort" "$ctl" lab up || true
  echo "==> [lab] verify-down: lab down after the aborted up"
  "$ctl" lab down
  snapshot >"$after"
  if diff -u "$before" "$after"; then
    echo "==> [lab] verify-down: OK, the machine is as before"
  else
    echo "==> [lab] verify-down: FAILED, the machine differs (above)" >&2
    return 1
  fi
}

case "${1:-}" in
  up|down|status) cmd=$1; shift; exec "$ctl" lab "$cmd" -repo "$here" "$@" ;;
  verify-down) shift; verify_down "$@" ;;
  snapshot) snapshot ;;
  *) echo "usage: $0 up [-nodes N] | down | status | verify-down [abort-seconds]" >&2; exit 2 ;;
esac
