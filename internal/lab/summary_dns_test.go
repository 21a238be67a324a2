package lab

import (
	"strings"
	"testing"
)

func TestDNSQuestionsCoverBothFamiliesAndForwarding(t *testing.T) {
	c := NamedConfig(t.TempDir(), "unit", 7)
	m := matrix{clusterIPs: []string{"10.96.12.7", "fd00:10:96::c07"}}
	qs := c.dnsQuestions(m, []string{"10.96.0.10", "fd00:10:96::a"}, "cluster.local")
	var got []string
	for _, q := range qs {
		got = append(got, q.label+" "+q.family+" "+q.name+" -> "+strings.Join(q.want, ","))
	}
	want := []string{
		"kubernetes.default A @10.96.0.10 ip4 kubernetes.default.svc.cluster.local. -> " + KubernetesVIP,
		"echo.default A @10.96.0.10 ip4 echo.default.svc.cluster.local. -> 10.96.12.7",
		"echo.default AAAA @10.96.0.10 ip6 echo.default.svc.cluster.local. -> fd00:10:96::c07",
		"kubernetes.default A @fd00:10:96::a ip4 kubernetes.default.svc.cluster.local. -> " + KubernetesVIP,
		"echo.default A @fd00:10:96::a ip4 echo.default.svc.cluster.local. -> 10.96.12.7",
		"echo.default AAAA @fd00:10:96::a ip6 echo.default.svc.cluster.local. -> fd00:10:96::c07",
		"gateway.lab.plexus.test. A @10.96.0.10 (forwarded to the lab's upstream) ip4 gateway.lab.plexus.test. -> " + c.gatewayV4().String(),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("questions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
