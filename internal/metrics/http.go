package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// pingTimeout bounds the store check of /readyz.
const pingTimeout = 2 * time.Second

// Handler serves
//
//	GET /metrics  the metrics gathered from g (the registry New registered with)
//	GET /healthz  200 "ok" while the process serves at all
//	GET /readyz   200 "ok" when the XMPP session is up, an SMPP bind is up
//	              and the store answers; else 503 listing, one a line, what is down
//
// Failures while gathering (the store does not answer the queue count) are
// logged to log and leave those series out of the scrape.
func (m *Metrics) Handler(g prometheus.Gatherer, log zerolog.Logger) http.Handler {
	log = log.With().Str("component", "metrics").Logger()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      promLogger{log},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		plain(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		down := m.Ready(r.Context())
		if len(down) == 0 {
			plain(w, http.StatusOK, "ok\n")
			return
		}
		plain(w, http.StatusServiceUnavailable, strings.Join(down, "\n")+"\n")
	})
	return mux
}

func plain(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// Ready checks what SetXMPP, AddSMPP and SetStore gave it: the XMPP
// session is up, at least one SMPP bind is up, the store answers a ping.
// It returns what is down, one line each, naming it first ("xmpp: …",
// "smpp: …", "store: …"); nil means ready.
func (m *Metrics) Ready(ctx context.Context) []string {
	m.mu.Lock()
	binds, x, s := m.binds, m.xmpp, m.store
	m.mu.Unlock()
	var down []string
	if x != nil && !x.Connected() {
		down = append(down, "xmpp: not connected to the XMPP server")
	}
	if len(binds) > 0 {
		up := false
		for _, b := range binds {
			up = up || b.c.Bound()
		}
		if !up {
			down = append(down, "smpp: not bound to the SMSC")
		}
	}
	if s != nil {
		if err := m.ping(ctx, s); err != nil {
			down = append(down, "store: "+err.Error())
		}
	}
	return down
}

// ping pings the store, waiting at most pingTimeout. The ping runs on its
// own, one at a time: a store that does not answer (a hung server, whose
// driver may not give up when the context ends) makes /readyz say so in
// time instead of hanging, and probes do not pile up behind it.
func (m *Metrics) ping(ctx context.Context, s Store) error {
	if !m.pinging.CompareAndSwap(false, true) {
		return errors.New("the store has not answered the last ping yet")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pingTimeout)
	errc := make(chan error, 1)
	go func() {
		err := s.Ping(ctx)
		cancel()
		m.pinging.Store(false) // before the answer: the next probe may ping
		errc <- err
	}()
	select {
	case err := <-errc:
		return err
	case <-time.After(pingTimeout):
		return fmt.Errorf("no answer to a ping within %v", pingTimeout)
	}
}

// Serve serves h on addr (host:port) until ctx ends, then shuts down,
// letting requests in progress finish for a few seconds. It returns an error
// when addr cannot be listened on or the server fails; nil when ctx ends.
func Serve(ctx context.Context, addr string, h http.Handler, log zerolog.Logger) error {
	log = log.With().Str("component", "metrics").Logger()
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Info().Str("addr", ln.Addr().String()).Msg("serving /metrics, /healthz and /readyz")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// promLogger gives promhttp's errors to a zerolog.Logger.
type promLogger struct{ log zerolog.Logger }

func (l promLogger) Println(v ...any) { l.log.Warn().Msg(strings.TrimSpace(fmt.Sprintln(v...))) }
