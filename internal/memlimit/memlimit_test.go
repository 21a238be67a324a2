package memlimit

import "testing"

func TestMemoryLimitFlag(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"", 0, false},
		{"0", 0, false},
		{"536870912", 512 << 20, false},
		{"512Mi", 512 << 20, false},
		{"1Gi", 1 << 30, false},
		{"-1Mi", 0, true},
		{"lots", 0, true},
	} {
		var f Flag
		err := f.Set(tc.in)
		if (err != nil) != tc.wantErr || (err == nil && f.Bytes != tc.want) {
			t.Errorf("--memory-limit=%q: %d, %v; want %d (error %v)", tc.in, f.Bytes, err, tc.want, tc.wantErr)
		}
	}
}

func TestSoftMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name       string
		container  int64
		goMemLimit string
		want       int64
		set        bool
	}{
		{"no container limit", 0, "", 0, false},
		{"90% of the container limit", 512 << 20, "", 483183820, true},
		{"GOMEMLIMIT wins", 512 << 20, "300MiB", 0, false},
	} {
		got, set := Soft(tc.container, tc.goMemLimit)
		if got != tc.want || set != tc.set {
			t.Errorf("%s: %d, %v; want %d, %v", tc.name, got, set, tc.want, tc.set)
		}
	}
}
