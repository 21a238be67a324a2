package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// stream is test2json output shaped like the suite's: a passing test with subtests, a failing one
// (testify's Error: block, after other logs), a skipped one, parallel output interleaved.
const stream = `{"Action":"start","Package":"gateway-conformance"}
{"Action":"run","Test":"TestConformance"}
{"Action":"output","Test":"TestConformance","Output":"    conformance.go:101: Running conformance tests with:\n"}
{"Action":"run","Test":"TestConformance/HTTPRouteSimpleSameNamespace"}
{"Action":"output","Test":"TestConformance/HTTPRouteSimpleSameNamespace","Output":"    conformance.go:77: 2026-12-05T01:00:00Z: Running HTTPRouteSimpleSameNamespace, relying on the following features: Gateway-STANDARD, HTTPRoute-STANDARD\n"}
{"Action":"run","Test":"TestConformance/HTTPRouteMethodMatching"}
{"Action":"output","Test":"TestConformance/HTTPRouteMethodMatching","Output":"    conformance.go:77: Running HTTPRouteMethodMatching, relying on the following features: Gateway-STANDARD, HTTPRoute-STANDARD, HTTPRouteMethodMatching-STANDARD\n"}
{"Action":"run","Test":"TestConformance/HTTPRouteSimpleSameNamespace/0_request"}
{"Action":"pass","Test":"TestConformance/HTTPRouteSimpleSameNamespace/0_request","Elapsed":0.5}
{"Action":"pass","Test":"TestConformance/HTTPRouteSimpleSameNamespace","Elapsed":2.25}
{"Action":"output","Test":"TestConformance/HTTPRouteMethodMatching/1_request","Output":"    http.go:230: Request passed\n"}
{"Action":"output","Test":"TestConformance/HTTPRouteMethodMatching/2_request","Output":"    Error Trace:\t/x/http.go:240\n"}
{"Action":"output","Test":"TestConformance/HTTPRouteMethodMatching/2_request","Output":"    \tError:      \texpected status code to be 404, got 200\n"}
{"Action":"fail","Test":"TestConformance/HTTPRouteMethodMatching/2_request","Elapsed":1}
{"Action":"fail","Test":"TestConformance/HTTPRouteMethodMatching","Elapsed":61}
{"Action":"run","Test":"TestConformance/GatewayStaticAddresses"}
{"Action":"output","Test":"TestConformance/GatewayStaticAddresses","Output":"    conformance.go:56: Skipping GatewayStaticAddresses: suite does not support GatewayStaticAddresses\n"}
{"Action":"output","Test":"TestConformance/GatewayStaticAddresses","Output":"--- SKIP: TestConformance/GatewayStaticAddresses (0.00s)\n"}
{"Action":"skip","Test":"TestConformance/GatewayStaticAddresses","Elapsed":0}
{"Action":"fail","Test":"TestConformance","Elapsed":70}
`

func TestReadEvents(t *testing.T) {
	res, err := readEvents(strings.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	want := results{
		passed:  []outcome{{name: "HTTPRouteSimpleSameNamespace", took: 2250 * time.Millisecond}},
		failed:  []outcome{{name: "HTTPRouteMethodMatching", took: 61 * time.Second, detail: "expected status code to be 404, got 200"}},
		skipped: []outcome{{name: "GatewayStaticAddresses", detail: "Skipping GatewayStaticAddresses: suite does not support GatewayStaticAddresses"}},
	}
	for _, c := range []struct {
		what      string
		got, want []outcome
	}{{"passed", res.passed, want.passed}, {"failed", res.failed, want.failed}, {"skipped", res.skipped, want.skipped}} {
		if len(c.got) != len(c.want) {
			t.Fatalf("%s: got %+v, want %+v", c.what, c.got, c.want)
		}
		for i := range c.got {
			if c.got[i] != c.want[i] {
				t.Errorf("%s[%d]: got %+v, want %+v", c.what, i, c.got[i], c.want[i])
			}
		}
	}
	if res.suiteFailed != "" {
		t.Errorf("suiteFailed = %q; a test failed, so the suite's failure is that test's", res.suiteFailed)
	}
	if got := strings.Join(res.features["HTTPRouteMethodMatching"], ","); got != "Gateway,HTTPRoute,HTTPRouteMethodMatching" {
		t.Errorf("features of HTTPRouteMethodMatching = %q", got)
	}
}

func TestReadEventsSuiteFailure(t *testing.T) {
	in := `{"Action":"output","Test":"TestConformance","Output":"    suite.go:300: \n"}
{"Action":"output","Test":"TestConformance","Output":"        \tError:      \tReceived unexpected error:\n"}
{"Action":"output","Test":"TestConformance","Output":"        \t            \tgateway same-namespace not Programmed\n"}
{"Action":"fail","Test":"TestConformance","Elapsed":300}
`
	res, err := readEvents(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if res.suiteFailed != "Received unexpected error: gateway same-namespace not Programmed" {
		t.Errorf("suiteFailed = %q", res.suiteFailed)
	}
}

const reportYAML = `apiVersion: gateway.networking.k8s.io/v1
kind: ConformanceReport
gatewayAPIVersion: v1.6.3
profiles:
- name: GATEWAY-HTTP
  summary: Core tests failed with 1 test failures. Extended tests failed with 1 test failures.
  core:
    result: failure
    statistics:
      Failed: 1
      Passed: 30
      Skipped: 2
    failedTests:
    - HTTPRouteSimpleSameNamespace
  extended:
    result: failure
    statistics:
      Failed: 1
      Passed: 9
      Skipped: 0
    failedTests:
    - HTTPRouteMethodMatching
    supportedFeatures:
    - HTTPRouteMethodMatching
    - HTTPRouteQueryParamMatching
    - HTTPRouteResponseHeaderModification
    unsupportedFeatures:
    - GatewayStaticAddresses
`

func TestSummaryLine(t *testing.T) {
	var r report
	if err := yaml.Unmarshal([]byte(reportYAML), &r); err != nil {
		t.Fatal(err)
	}
	p, ok := r.profileNamed("GATEWAY-HTTP")
	if !ok {
		t.Fatal("no GATEWAY-HTTP profile")
	}
	features := map[string][]string{"HTTPRouteMethodMatching": {"Gateway", "HTTPRoute", "HTTPRouteMethodMatching"}}
	got := summaryLine(p, features, 90*time.Second)
	want := "gateway-conformance: 30/33 core passed, 2 extended features (extended tests 9/10 passed) (1m30s)"
	if got != want {
		t.Errorf("summary line\n got %q\nwant %q", got, want)
	}
	var out bytes.Buffer
	res, _ := readEvents(strings.NewReader(stream))
	printResults(&out, res, p, features, 90*time.Second)
	for _, line := range []string{
		"  PASS HTTPRouteSimpleSameNamespace (2.3s)",
		"  FAIL HTTPRouteMethodMatching [extended] (1m1s): expected status code to be 404, got 200",
		"  SKIP GatewayStaticAddresses: Skipping GatewayStaticAddresses: suite does not support GatewayStaticAddresses",
		want,
	} {
		if !strings.Contains(out.String(), line+"\n") {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}

func TestSuiteImageRefs(t *testing.T) {
	p := filepath.Join(t.TempDir(), "images.txt")
	txt := "not built images.example.test/coredns/coredns:v1.12.2\nnot built images.example.test/gateway-api/echo-advanced:v1\n" +
		"built images.example.test/gateway-api/echo-basic:v1\nbuilt images.example.test/gateway-api/echo-basic:v2\n"
	if err := os.WriteFile(p, []byte(txt), 0o644); err != nil {
		t.Fatal(err)
	}
	echo, coredns, err := suiteImageRefs(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(echo, " ") != "images.example.test/gateway-api/echo-basic:v1 images.example.test/gateway-api/echo-basic:v2" {
		t.Errorf("echo images %v", echo)
	}
	if coredns != "images.example.test/coredns/coredns:v1.12.2" {
		t.Errorf("coredns image %q", coredns)
	}
}
