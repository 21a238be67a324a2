package suiterun

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunWritesOutputAndReportsProgress(t *testing.T) {
	log := filepath.Join(t.TempDir(), "out.log")
	var ticks atomic.Int32
	err := Run(context.Background(), log, []string{"SUITERUN_WORD=hello"}, 50*time.Millisecond, time.Second,
		func(time.Duration) { ticks.Add(1) }, "sh", "-c", "echo $SUITERUN_WORD; sleep 0.3; echo oops >&2")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(log)
	if got := string(b); !strings.Contains(got, "hello") || !strings.Contains(got, "oops") {
		t.Errorf("log %q: want the child's stdout and stderr", got)
	}
	if ticks.Load() == 0 {
		t.Error("no progress reported during a 0.3 s run at a 50 ms interval")
	}
}

func TestRunInterruptsOnCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err := Run(ctx, filepath.Join(t.TempDir(), "out.log"), nil, time.Minute, time.Second,
		func(time.Duration) {}, "sleep", "30")
	if err == nil {
		t.Fatal("a cancelled run returned no error")
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("cancel took %s to stop the child", d)
	}
}

func TestRunReportsAMissingProgram(t *testing.T) {
	err := Run(context.Background(), filepath.Join(t.TempDir(), "out.log"), nil, time.Minute, time.Second,
		func(time.Duration) {}, "/nonexistent/suite")
	if err == nil || !strings.Contains(err.Error(), "start /nonexistent/suite") {
		t.Errorf("err = %v, want it to name the program", err)
	}
}
