# Plexus — the two commands a newcomer needs are `make lab` and `make test`; the rest are steps.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

GO ?= go
BIN := $(CURDIR)/bin
CONTROLLER_TOOLS_VERSION := v0.23.0
CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
K8S_VERSION := v1.37.2
CACHE_HOME := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)
CONTROLPLANE_DIR := $(CACHE_HOME)/plexus/controlplane/$(K8S_VERSION)
HELM_VERSION := v4.3.2
# The helm CLI the chart tests run, built from its own module (hack/tools/helm) so Helm's
# dependencies never enter go.mod; the tests find it through PLEXUS_HELM.
HELM := $(CACHE_HOME)/plexus/tools/helm-$(HELM_VERSION)/helm
export PLEXUS_HELM := $(HELM)
TEST_TIMEOUT ?= 45m
CONFORMANCE_DIR := $(CACHE_HOME)/plexus/conformance/$(K8S_VERSION)
# The conformance lab (slot 5) is one per machine: runs queue on this lock.
CONFORMANCE_LOCK ?= /tmp/plx/conf.lock
GATEWAY_CONFORMANCE_DIR := $(CACHE_HOME)/plexus/gateway-conformance/v1.6.3
# The Gateway API run's lab slot (10.99.6.0/24) and lock: by default it queues behind make conformance.
GATEWAY_CONFORMANCE_SLOT ?= 6
GATEWAY_CONFORMANCE_LOCK ?= $(CONFORMANCE_LOCK)
CONFORMANCE_ARGS ?=

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-14s %s\n",$$1,$$2}'

##@ The two commands

.PHONY: lab
lab: deps build ## A real multi-node cluster on this machine with Plexus installed (plexusctl lab up).
	@hack/lab.sh up

.PHONY: test
test: require-root deps verify-bundle generate manifests verify-no-test-code controlplane coredns helm ## Run every test: unit, real API server, real kernel (as root).
	@echo "==> [test] go vet"
	@$(GO) vet ./...
	@echo "==> [test] gofmt"
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed: $$bad"; exit 1; fi
	@echo "==> [test] go test ./... (uncached: the real-kernel tests depend on the machine, not only the code)"
	PLEXUS_REQUIRE_IPVS_VM=1 PLEXUS_REQUIRE_HELM=1 KUBEBUILDER_ASSETS=$(CONTROLPLANE_DIR) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) $$($(GO) list ./... | grep -v -e '/test/e2e$$' -e '/internal/lab$$')
	@echo "==> [test] the lab's own tests and the e2e suite, one at a time (each starts a lab of its own, beside a running make lab)"
	PLEXUS_REQUIRE_LAB=1 KUBEBUILDER_ASSETS=$(CONTROLPLANE_DIR) $(GO) test -count=1 -p 1 -timeout $(TEST_TIMEOUT) ./internal/lab/ ./test/e2e/
	@echo "==> [test] the upstream [sig-network] [Conformance] specs (make conformance)"
	@$(MAKE) --no-print-directory conformance

##@ Steps

.PHONY: conformance
conformance: require-root deps ## Upstream e2e v1.37.2 [sig-network] [Conformance] specs on a lab of their own; prints the pass list.
	@hack/conformance/build.sh >/dev/null
	@$(GO) build -o $(CONFORMANCE_DIR)/bin/conformance ./hack/conformance
	@mkdir -p $(dir $(CONFORMANCE_LOCK))
	@flock $(CONFORMANCE_LOCK) $(CONFORMANCE_DIR)/bin/conformance -repo $(CURDIR) $(CONFORMANCE_ARGS)

.PHONY: gateway-conformance
gateway-conformance: require-root deps ## Upstream Gateway API v1.6.3 conformance (GATEWAY-HTTP) on a lab of its own; writes docs/gateway-conformance-report.yaml.
	@hack/gateway-conformance/build.sh >/dev/null
	@$(GO) build -o $(GATEWAY_CONFORMANCE_DIR)/bin/run ./hack/gateway-conformance/run
	@mkdir -p $(dir $(GATEWAY_CONFORMANCE_LOCK))
	@flock $(GATEWAY_CONFORMANCE_LOCK) $(GATEWAY_CONFORMANCE_DIR)/bin/run -repo $(CURDIR) -slot $(GATEWAY_CONFORMANCE_SLOT) $(GATEWAY_CONFORMANCE_ARGS)

.PHONY: deps
deps: ## Install the Debian packages tests need (nftables, iproute2, ...), if missing.
	@hack/deps.sh

.PHONY: controlplane
controlplane: ## Build (or reuse) etcd, kube-apiserver and kube-controller-manager v1.37.2 in the cache.
	@hack/controlplane/build.sh etcd kube-apiserver kube-controller-manager kubectl

.PHONY: coredns
coredns: ## Build (or reuse) CoreDNS v1.15.0 in the cache (the cluster DNS tests and the lab run it).
	@hack/coredns/build.sh >/dev/null

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code.
	@echo "==> [generate] deepcopy"
	@$(CONTROLLER_GEN) object paths=./api/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRDs and the operator's RBAC, then the OLM bundle, the Helm chart and dist/install.yaml from config/.
	@echo "==> [manifests] CRDs and RBAC"
	@$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	@$(CONTROLLER_GEN) rbac:roleName=plexus-operator paths=./controllers/... output:rbac:artifacts:config=config/rbac
	@echo "==> [manifests] OLM bundle, Helm chart and dist/install.yaml from config/ (hack/gen-install)"
	@$(GO) run ./hack/gen-install

.PHONY: bundle
bundle: manifests ## Write the OLM bundle (bundle/) and the Helm chart's generated files from config/.

# The OLM bundle image, built from bundle/ without Docker (go-containerregistry): an image tarball.
BUNDLE_IMAGE ?= $(CACHE_HOME)/plexus/bundle/plexus-bundle.tar

.PHONY: bundle-image
bundle-image: ## Build the OLM bundle image (plexus/plexus-bundle:v<version>) without Docker into $(BUNDLE_IMAGE).
	@$(GO) run ./hack/gen-install -bundle-image $(BUNDLE_IMAGE)

.PHONY: verify-bundle
verify-bundle: ## Fail when the committed OLM bundle or Helm chart is out of date with config/ (run before manifests).
	@$(GO) run ./hack/gen-install -verify

.PHONY: helm
helm: $(HELM) ## Build (or reuse) the helm CLI $(HELM_VERSION) in the tools cache.

$(HELM): hack/tools/helm/go.mod
	@echo "==> [tools] helm $(HELM_VERSION): building from the Go module into $(dir $(HELM)) (a few minutes the first time)"
	@mkdir -p $(dir $(HELM))
	@cd hack/tools/helm && $(GO) build -o $(HELM).tmp -ldflags "-X helm.sh/helm/v4/internal/version.version=$(HELM_VERSION)" helm.sh/helm/v4/cmd/helm
	@mv -f $(HELM).tmp $(HELM)

.PHONY: require-root
require-root: ## Fail, saying why, unless running as root (make test's real-kernel tests and labs need it).
	@echo "==> [test] running as root (real-kernel tests and labs make namespaces, mounts and cgroups)"
	@if [ "$$(id -u)" != 0 ]; then echo "make test must run as root: its real-kernel tests and labs would be skipped, not run, and it would report ok for them"; exit 1; fi

.PHONY: verify-no-test-code
verify-no-test-code: ## Fail when a binary under cmd/ links test code (testing, testing/..., internal/testnet).
	@echo "==> [test] no test code in the binaries (go list -deps ./cmd/... has no testing, testing/..., internal/testnet)"
	@deps=$$($(GO) list -deps ./cmd/...); mod=$$($(GO) list -m); \
	  bad=$$(grep -E -x -e 'testing(/.*)?' -e "$$mod/internal/testnet(/.*)?" <<<"$$deps" || true); \
	  if [ -n "$$bad" ]; then echo "binaries under cmd/ link test code:" $$bad; \
	    echo "find the importer: go list -deps -f '{{.ImportPath}} {{.Imports}}' ./cmd/... | grep -w -e testing -e testnet"; exit 1; fi

.PHONY: build
build: generate ## Build every binary into ./bin.
	@echo "==> [build] go build ./cmd/..."
	@$(GO) build -o $(BIN)/ ./cmd/...

.PHONY: bench
bench: deps controlplane ## Print the benchmark figures, with upstream kube-proxy v1.37.2 and kube-network-policies v0.8.0 as baselines.
	@hack/controlplane/build.sh kube-proxy >/dev/null
	@KUBEBUILDER_ASSETS=$(CONTROLPLANE_DIR) hack/bench.sh
	@KUBEBUILDER_ASSETS=$(CONTROLPLANE_DIR) hack/knp/bench.sh
	@hack/ingress-bench.sh # ingress apply time; the nginx comparison needs root (network namespaces)

.PHONY: fmt
fmt: ## gofmt every Go file.
	@gofmt -w $$(git ls-files '*.go')

$(CONTROLLER_GEN):
	@echo "==> [tools] controller-gen $(CONTROLLER_TOOLS_VERSION)"
	@mkdir -p $(BIN)
	@GOBIN=$(BIN) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	@mv -f $(BIN)/controller-gen $(CONTROLLER_GEN)
