#!/usr/bin/env bash
# The local lab, first form: a real control plane (etcd, kube-apiserver, kube-controller-manager
# v1.37.2) on loopback, the Plexus CRDs and RBAC, the operator running under its own identity, the
# sample ClusterNetwork and a few Node objects; then the status a user would look at.
# (Real kubelets in network namespaces arrive with the full lab.)
#
#   hack/lab.sh up | down | status
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/plexus
cp_dir=$cache/controlplane/v1.37.2
lab=${PLEXUS_LAB_DIR:-$cache/lab}
kubeconfig=$lab/kubeconfig
etcd_port=${PLEXUS_LAB_ETCD_PORT:-23790}
api_port=${PLEXUS_LAB_API_PORT:-36443}
nodes=${PLEXUS_LAB_NODES:-3}

step() { printf '==> [lab] %s\n' "$*"; }
kubectl() { "$cp_dir/kubectl" --kubeconfig "$kubeconfig" "$@"; }

running() { [ -f "$lab/$1.pid" ] && kill -0 "$(cat "$lab/$1.pid")" 2>/dev/null; }

start_bg() { # name, command...
  local name=$1; shift
  if running "$name"; then step "$name already running (pid $(cat "$lab/$name.pid"))"; return; fi
  "$@" >"$lab/$name.log" 2>&1 &
  echo $! >"$lab/$name.pid"
  step "$name started (pid $!, log $lab/$name.log)"
}

wait_for() { # process, seconds, command... — fails at once, with its log, if the process died
  local name=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 10))); do
    "$@" >/dev/null 2>&1 && return 0
    if ! running "$name"; then
      echo "lab: $name exited; the end of $lab/$name.log:" >&2; tail -5 "$lab/$name.log" >&2; return 1
    fi
    sleep 0.1
  done
  echo "lab: $name not ready after ${secs}s (log: $lab/$name.log)" >&2; return 1
}

service_range() { # from the sample ClusterNetwork, comma-separated
  sed -n '/serviceNetwork:/,/cidrs:/p' "$here/config/samples/plexus_v1alpha1_clusternetwork.yaml" |
    sed -n 's/.*cidrs: *\[\(.*\)\].*/\1/p' | tr -d ' "'
}

credentials() {
  mkdir -p "$lab/certs"
  [ -f "$lab/sa.key" ] || openssl genrsa -out "$lab/sa.key" 2048 2>/dev/null
  [ -f "$lab/sa.pub" ] || openssl rsa -in "$lab/sa.key" -pubout -out "$lab/sa.pub" 2>/dev/null
  if [ ! -f "$lab/tokens.csv" ]; then
    # token,user,uid,"groups": an admin for people, and the operator's own identity bound only to
    # the ClusterRole the project ships, so the lab proves that RBAC is sufficient.
    printf '%s,lab-admin,lab-admin,"system:masters"\n' "$(openssl rand -hex 16)" >"$lab/tokens.csv"
    printf '%s,system:serviceaccount:plexus-system:plexus-operator,plexus-operator,"system:serviceaccounts"\n' "$(openssl rand -hex 16)" >>"$lab/tokens.csv"
    chmod 600 "$lab/tokens.csv"
  fi
}

write_kubeconfig() { # file, user-line-number
  local token; token=$(sed -n "${2}p" "$lab/tokens.csv" | cut -d, -f1)
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: plexus-lab
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $lab/certs/apiserver.crt
contexts:
- name: plexus-lab
  context: {cluster: plexus-lab, user: user}
current-context: plexus-lab
users:
- name: user
  user: {token: $token}
KC
  chmod 600 "$1"
}

node_yaml() { # name, ip
  cat <<NODE
apiVersion: v1
kind: Node
metadata:
  name: $1
  labels: {kubernetes.io/os: linux, kubernetes.io/hostname: $1}
status:
  addresses:
  - {type: InternalIP, address: "$2"}
  - {type: Hostname, address: $1}
NODE
}

status() {
  echo
  kubectl get clusternetwork -o wide
  echo
  kubectl get nodenetworks
  echo
  echo "Conditions of ClusterNetwork default:"
  kubectl get clusternetwork default -o jsonpath='{range .status.conditions[*]}  {.type}={.status} ({.reason}): {.message}{"\n"}{end}'
  echo
  echo "kubeconfig: $kubeconfig"
  echo "  $cp_dir/kubectl --kubeconfig $kubeconfig get clusternetwork,nodenetworks,nodes"
}

up() {
  mkdir -p "$lab"
  step "control plane binaries"
  "$here/hack/controlplane/build.sh" etcd kube-apiserver kube-controller-manager kubectl >/dev/null
  step "operator binary"
  (cd "$here" && go build -o "$lab/plexus-operator" ./cmd/plexus-operator)
  credentials
  start_bg etcd "$cp_dir/etcd" --data-dir "$lab/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$((etcd_port + 10))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((etcd_port + 10))" --initial-cluster "default=http://127.0.0.1:$((etcd_port + 10))" \
    --unsafe-no-fsync
  wait_for etcd 30 curl -sf "http://127.0.0.1:$etcd_port/health"
  start_bg kube-apiserver "$cp_dir/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" --cert-dir "$lab/certs" \
    --service-cluster-ip-range "$(service_range)" --authorization-mode RBAC --token-auth-file "$lab/tokens.csv" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local --service-account-key-file "$lab/sa.pub" \
    --service-account-signing-key-file "$lab/sa.key" --allow-privileged \
    --endpoint-reconciler-type none
  wait_for kube-apiserver 60 test -f "$lab/certs/apiserver.crt"
  write_kubeconfig "$kubeconfig" 1
  write_kubeconfig "$lab/operator.kubeconfig" 2
  wait_for kube-apiserver 60 kubectl get --raw /readyz
  step "kube-apiserver ready: $(kubectl version -o json | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | tail -1)"
  start_bg kube-controller-manager "$cp_dir/kube-controller-manager" --kubeconfig "$kubeconfig" \
    --controllers '*,-nodeipam' --service-account-private-key-file "$lab/sa.key" --use-service-account-credentials=false \
    --bind-address 127.0.0.1 --secure-port 0
  step "installing CRDs and RBAC (config/crd, config/rbac)"
  kubectl apply --server-side -k "$here/config/crd" >/dev/null
  kubectl create namespace plexus-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl apply --server-side -k "$here/config/rbac" >/dev/null
  kubectl wait --for condition=established --timeout 60s crd/clusternetworks.plexus.dev crd/nodenetworks.plexus.dev >/dev/null
  start_bg plexus-operator env KUBECONFIG="$lab/operator.kubeconfig" "$lab/plexus-operator" \
    --metrics-bind-address 127.0.0.1:9460 --health-probe-bind-address 127.0.0.1:9461
  wait_for plexus-operator 30 curl -sf http://127.0.0.1:9461/readyz
  step "applying config/samples and $nodes Node objects"
  kubectl apply --server-side -k "$here/config/samples" >/dev/null
  for i in $(seq 1 "$nodes"); do node_yaml "lab-node-$i" "10.99.0.$((10 + i))"; echo "---"; done | kubectl apply --server-side -f - >/dev/null
  wait_for plexus-operator 60 bash -c "[ \"\$('$cp_dir/kubectl' --kubeconfig '$kubeconfig' get clusternetwork default -o jsonpath='{.status.nodes.allocated}')\" = '$nodes' ]"
  status
}

down() {
  for name in plexus-operator kube-controller-manager kube-apiserver etcd; do
    if running "$name"; then
      kill "$(cat "$lab/$name.pid")" && step "stopped $name"
      for _ in $(seq 1 100); do kill -0 "$(cat "$lab/$name.pid")" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$lab/$name.pid"
  done
  rm -rf "$lab"
  step "lab removed ($lab)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
