package main

import "testing"

func TestGCPercent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limited bool
		goGC    string
		want    int
		set     bool
	}{
		{"no memory limit: the runtime's default", false, "", 0, false},
		{"a memory limit backs a higher GOGC", true, "", limitedGOGC, true},
		{"$GOGC wins", true, "150", 0, false},
	} {
		got, set := gcPercent(tc.limited, tc.goGC)
		if got != tc.want || set != tc.set {
			t.Errorf("%s: %d, %v; want %d, %v", tc.name, got, set, tc.want, tc.set)
		}
	}
}
