package proxy

import (
	"fmt"
	"os"
	"slices"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/plexus-net/plexus/ingress/translate"
)

// Why a log core of our own: Caddy's reverse_proxy calls logger.With(request, upstream,
// duration) on every proxied request, before it checks whether its debug entry is enabled. On
// Caddy's own core (zapcore.NewCore) With encodes those fields to JSON at once, headers and all,
// so every request paid for a log line that was never written: 5 % of plexus-ingress's CPU
// under load. LogCore keeps With's fields as they are and encodes them only for an entry it
// writes; what it writes is what Caddy's default log writes to a non-terminal stderr.

// LogCore is the Caddy log core plexus_log (translate.LogCoreModule): JSON lines to stderr
// at Level and above, with the fields of With encoded only when an entry is written.
type LogCore struct {
	// Level is the lowest level written (DEBUG, INFO, WARN, ERROR); empty is INFO.
	Level string `json:"level,omitempty"`
	lazyCore
}

// CaddyModule registers the core.
func (*LogCore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.cores." + translate.LogCoreModule,
		New: func() caddy.Module { return new(LogCore) },
	}
}

// Provision builds the JSON core behind the lazy one.
func (c *LogCore) Provision(caddy.Context) error {
	level := zapcore.InfoLevel
	if c.Level != "" {
		var err error
		if level, err = zapcore.ParseLevel(c.Level); err != nil {
			return fmt.Errorf("%s: level %q: %w", translate.LogCoreModule, c.Level, err)
		}
	}
	c.inner = zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.Lock(os.Stderr), level)
	return nil
}

// lazyCore is a zapcore.Core whose With only remembers its fields; Write hands them to inner
// ahead of the entry's own, which is where an eagerly encoding core would have put them.
type lazyCore struct {
	inner  zapcore.Core
	fields []zapcore.Field
}

func (c *lazyCore) Enabled(l zapcore.Level) bool { return c.inner.Enabled(l) }

// With keeps fs as zap's own WithLazy does: a field is encoded as its value is when an entry is
// written.
func (c *lazyCore) With(fs []zapcore.Field) zapcore.Core {
	if len(fs) == 0 {
		return c
	}
	return &lazyCore{inner: c.inner, fields: append(slices.Clip(c.fields), fs...)}
}

func (c *lazyCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.inner.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *lazyCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	if len(c.fields) > 0 {
		fs = append(slices.Clip(c.fields), fs...)
	}
	return c.inner.Write(e, fs)
}

func (c *lazyCore) Sync() error { return c.inner.Sync() }

func init() {
	caddy.RegisterModule(new(LogCore))
}

var (
	_ zapcore.Core      = (*LogCore)(nil)
	_ caddy.Provisioner = (*LogCore)(nil)
)
