package proxy

import (
	"testing"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// marshalCounter counts how often it is encoded.
type marshalCounter struct{ n *int }

func (m marshalCounter) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	*m.n++
	enc.AddString("k", "v")
	return nil
}

func TestLazyCoreEncodesFieldsOnlyForWrittenEntries(t *testing.T) {
	inner, logs := observer.New(zapcore.ErrorLevel)
	log := zap.New(&lazyCore{inner: inner}).With(zap.String("a", "1"))
	encoded := 0
	child := log.With(zap.Object("request", marshalCounter{&encoded}))
	child.Debug("upstream roundtrip")
	if encoded != 0 {
		t.Errorf("a debug entry below ERROR encoded the With fields %d times, want 0", encoded)
	}
	child.Error("failed", zap.Int("status", 502))
	log.Error("parent")
	got := logs.All()
	if len(got) != 2 {
		t.Fatalf("%d entries written, want 2: %v", len(got), got)
	}
	if m := got[0].ContextMap(); m["a"] != "1" || m["status"] != int64(502) || m["request"] == nil {
		t.Errorf("child entry fields %v, want a, request and status", m)
	}
	if m := got[1].ContextMap(); len(m) != 1 || m["a"] != "1" {
		t.Errorf("parent entry fields %v, want only a: the child's fields must not leak into it", m)
	}
}

func TestLogCoreLevel(t *testing.T) {
	c := &LogCore{Level: "WARN"}
	if err := c.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	if c.Enabled(zapcore.InfoLevel) || !c.Enabled(zapcore.WarnLevel) {
		t.Errorf("level WARN: INFO enabled %v, WARN enabled %v", c.Enabled(zapcore.InfoLevel), c.Enabled(zapcore.WarnLevel))
	}
	if err := (&LogCore{Level: "LOUD"}).Provision(caddy.Context{}); err == nil {
		t.Error("level LOUD was accepted")
	}
}
