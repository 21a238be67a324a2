package wire

import (
	"bufio"
	"net/netip"
	"strings"
	"testing"
)

func TestRequestValidate(t *testing.T) {
	ip := []netip.Addr{netip.MustParseAddr("10.244.1.5")}
	for _, c := range []struct {
		req  Request
		want string
	}{
		{Request{Namespace: "prod", Name: "web", IPs: ip}, ""},
		{Request{Name: "web", IPs: ip}, `"namespace": missing`},
		{Request{Namespace: "prod", IPs: ip}, `"name": missing`},
		{Request{Namespace: "prod", Name: "web"}, `"ips": no address`},
		{Request{Namespace: "prod", Name: "web", IPs: []netip.Addr{{}}}, `"ips": empty address`},
	} {
		err := c.req.Validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", c.req, err, c.want)
		}
	}
}

func TestReadLine(t *testing.T) {
	var req Request
	in := `{"namespace":"prod","name":"web","ips":["10.244.1.5","fd10::5"]}` + "\n"
	if err := ReadLine(bufio.NewReaderSize(strings.NewReader(in), 16), &req); err != nil || req.Pod() != "prod/web" || len(req.IPs) != 2 {
		t.Fatalf("ReadLine = %+v, %v", req, err)
	}
	long := `{"name":"` + strings.Repeat("x", maxLine) + `"}` + "\n"
	if err := ReadLine(bufio.NewReader(strings.NewReader(long)), &req); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("a line over the limit: %v, want refused", err)
	}
}
