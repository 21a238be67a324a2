package nftables

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/policy"
	pt "github.com/plexus-net/plexus/agent/policy/policytest"
)

func testModel(t testing.TB, policies ...*networkingv1.NetworkPolicy) *policy.Model {
	t.Helper()
	m := policy.Compile(policy.Input{NodeName: pt.NodeName, NodeIPs: pt.NodeIPs(), Policies: policies, Pods: pt.Pods(), Namespaces: pt.Namespaces()})
	if len(m.Errors) > 0 {
		t.Fatalf("compile: %v", m.Errors)
	}
	return m
}

func newFake() (*knftables.Fake, *Enforcer) {
	fake := knftables.NewFake(TableFamily, TableName)
	return fake, New(fake)
}

func mustSync(t testing.TB, e *Enforcer, m *policy.Model, full bool) policy.SyncResult {
	t.Helper()
	res, err := e.Sync(context.Background(), m, full)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// dumpLines returns the fake's dump, one object per line, sorted, without
// the static part (table, base chains, their rules, the static maps and
// sets without elements).
func dumpLines(fake *knftables.Fake) []string {
	static := map[string]bool{}
	tmp := knftables.NewFake(TableFamily, TableName)
	tx := tmp.NewTransaction()
	for _, o := range staticObjects() {
		tx.Add(o)
	}
	if err := tmp.Run(context.Background(), tx); err != nil {
		panic(err)
	}
	for _, l := range strings.Split(tmp.Dump(), "\n") {
		static[l] = true
	}
	var out []string
	for _, l := range strings.Split(fake.Dump(), "\n") {
		if l != "" && !static[l] && !isStampLine(l) {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// expectDump compares the fake's non-static lines with want (sorted
// before comparing; blank lines and indentation ignored).
func expectDump(t *testing.T, fake *knftables.Fake, want string) {
	t.Helper()
	var w []string
	for _, l := range strings.Split(want, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			w = append(w, l)
		}
	}
	sort.Strings(w)
	got := normalizeNames(dumpLines(fake))
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(w, "\n") {
		t.Errorf("table differs:\n%s", lineDiff(w, got))
	}
}

// lineDiff lists lines only in want (-) and only in got (+).
func lineDiff(want, got []string) string {
	in := func(xs []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range xs {
			m[x] = true
		}
		return m
	}
	wm, gm := in(want), in(got)
	var b strings.Builder
	for _, l := range want {
		if !gm[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range got {
		if !wm[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// isStampLine tells the lines of the stamp set (a digest: TestStamp
// covers it) so exact tests compare semantics only.
func isStampLine(l string) bool { return strings.Contains(l, " "+setStamp+" ") }

// withoutStamp drops the stamp's lines from a transaction's text.
func withoutStamp(tx string) string {
	var out []string
	for _, l := range strings.Split(tx, "\n") {
		if !isStampLine(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// hashedName matches the names of policy-set chains, their counters and
// merged sets, which end in a hash of what they are for.
var hashedName = regexp.MustCompile(`\b(ingress-set|egress-set|any-pods|ports-pods|any|ports)/[0-9a-f]{16}`)

// normalizeNames replaces each hashed name by its kind and the order of
// its first appearance in lines (ingress-set/#1, ports/#2, …): expected
// dumps then show which objects are one and the same without spelling
// hashes. Which pods share a chain and which chains share a set is still
// compared exactly.
func normalizeNames(lines []string) []string {
	seen := map[string]string{}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = hashedName.ReplaceAllStringFunc(l, func(m string) string {
			if n, ok := seen[m]; ok {
				return n
			}
			kind, _, _ := strings.Cut(m, "/")
			n := fmt.Sprintf("%s/#%d", kind, len(seen)+1)
			seen[m] = n
			return n
		})
	}
	return out
}
