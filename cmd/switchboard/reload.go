package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"

	"github.com/rs/zerolog"
)

// reloadOnHangup re-reads the configuration at path whenever the process
// gets SIGHUP (`systemctl reload`, `kill -HUP`), until ctx ends. log.level
// takes effect at once; every other key the file changed is named in the
// log as waiting for a restart, and a file that no longer loads is
// reported with its problems while the running configuration stays. The
// logger must have been made by newServeLogger.
//
// Without it SIGHUP ended the gateway, as it ends any Go program that does
// not ask for it. The returned stop ends it and waits for it.
func reloadOnHangup(ctx context.Context, path string, running *Config, log zerolog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			cfg, err := loadConfig(path, os.Environ())
			if err != nil {
				log.Error().Err(err).Str("config", path).Msg("SIGHUP: configuration not reloaded; the running one stays")
				continue
			}
			level, _ := zerolog.ParseLevel(cfg.Log.Level) // validated by loadConfig
			zerolog.SetGlobalLevel(level)
			// Whatever the level now: the operator asked for it and looks
			// for the answer (at warn, an info line would not show).
			log.Log().Str("level", zerolog.InfoLevel.String()).Str("config", path).Str("log_level", cfg.Log.Level).
				Msg("SIGHUP: configuration reloaded")
			if keys := changedKeys(running, cfg); len(keys) > 0 {
				log.Warn().Strs("keys", keys).Msg("SIGHUP: changed keys take effect only at the next start")
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// newServeLogger is newLogger whose level SIGHUP can change: the logger
// passes everything and zerolog's global level, set here, filters.
func newServeLogger(c LogConfig, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		level = zerolog.InfoLevel
	}
	zerolog.SetGlobalLevel(level)
	return newLogger(c, w).Level(zerolog.TraceLevel)
}

// changedKeys names, as the file writes them ("smpp.window", "smsc"), the
// keys whose values differ between a and b, other than log.level.
func changedKeys(a, b *Config) []string {
	var keys []string
	var walk func(prefix string, x, y reflect.Value)
	walk = func(prefix string, x, y reflect.Value) {
		t := x.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				continue
			}
			key := prefix + name
			if key == "log.level" {
				continue
			}
			fx, fy := x.Field(i), y.Field(i)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[Duration]() {
				walk(key+".", fx, fy)
				continue
			}
			if !reflect.DeepEqual(fx.Interface(), fy.Interface()) {
				keys = append(keys, key)
			}
		}
	}
	walk("", reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem())
	return keys
}
