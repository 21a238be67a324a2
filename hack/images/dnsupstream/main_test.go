package main

import "testing"

func TestParseZone(t *testing.T) {
	z, err := parseZone("lab.plexus.test.", "me", []string{"echo=10.99.0.80,fd10:99::80", "@=10.99.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if z.Identity != "me" || len(z.Hosts["echo"]) != 2 || z.Hosts["@"][0].String() != "10.99.0.1" {
		t.Fatalf("zone = %+v", z)
	}
	for _, bad := range []string{"echo", "=10.0.0.1", "echo=not-an-ip"} {
		if _, err := parseZone("z.", "", []string{bad}); err == nil {
			t.Errorf("-host %q accepted", bad)
		}
	}
}
