package modules

import (
	"context"
	"log/slog"
	"maps"
	"slices"

	"go.uber.org/fx"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Slog is for an app that logs with [log/slog]: drainfx's lines (the plan,
// the drain, the shutdown report and its summary) go to l's handler, with
// no zap logger of the app's own, and [Web] logs fx's events through
// [go.uber.org/fx/fxevent.SlogLogger] over l. Use it beside Web:
//
//	fx.New(modules.Web(cfg), modules.Slog(slog.Default()), ...)
//
// It supplies l and a [*zap.Logger] whose core writes every entry to l's
// handler as one [slog.Record]: same level (zap's DPanic and above are
// slog's Error), message and time; zap's fields become attributes, an
// object field (the report) a group. An app that supplies a *zap.Logger of
// its own does not need it.
func Slog(l *slog.Logger) fx.Option {
	return fx.Options(
		fx.Supply(l),
		fx.Supply(zap.New(slogCore{h: l.Handler()})),
	)
}

// slogCore is a [zapcore.Core] that writes to a [slog.Handler]. No
// well-kept library does this direction (zap's own zapslog is the other
// one: a slog.Handler over a zap core).
type slogCore struct {
	h slog.Handler
}

func (c slogCore) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), slogLevel(l))
}

func (c slogCore) With(fields []zapcore.Field) zapcore.Core {
	return slogCore{h: c.h.WithAttrs(slogAttrs(fields))}
}

func (c slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	r := slog.NewRecord(e.Time, slogLevel(e.Level), e.Message, 0)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	r.AddAttrs(slogAttrs(fields)...)
	return c.h.Handle(context.Background(), r)
}

func (slogCore) Sync() error { return nil }

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// slogAttrs turns zap fields into attributes, through zap's own map
// encoder: an object becomes a group, in key order.
func slogAttrs(fields []zapcore.Field) []slog.Attr {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	return attrsOf(enc.Fields)
}

func attrsOf(m map[string]any) []slog.Attr {
	attrs := make([]slog.Attr, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if sub, ok := m[k].(map[string]any); ok {
			attrs = append(attrs, slog.Attr{Key: k, Value: slog.GroupValue(attrsOf(sub)...)})
			continue
		}
		attrs = append(attrs, slog.Any(k, m[k]))
	}
	return attrs
}
