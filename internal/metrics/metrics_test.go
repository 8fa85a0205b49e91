package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"switchboard/internal/metrics"
	"switchboard/store"
	"switchboard/store/storetest"
)

// bind and session stand for an SMPP client and the XMPP component.
type bind struct {
	up       atomic.Bool
	inFlight atomic.Int64
}

func (b *bind) Bound() bool   { return b.up.Load() }
func (b *bind) InFlight() int { return int(b.inFlight.Load()) }

type session struct{ up atomic.Bool }

func (s *session) Connected() bool { return s.up.Load() }

func accept(t *testing.T, s *store.Store, n int) {
	t.Helper()
	for range n {
		m := &store.Outbound{SenderJID: "alice@example.com/phone", SenderNumber: "+12015550100", Dest: "+12015550199",
			Body: "hello", Parts: 1, ExpiresAt: time.Now().Add(time.Hour)}
		if err := s.AcceptOutbound(context.Background(), []*store.Outbound{m}); err != nil {
			t.Fatal(err)
		}
	}
}

// counterZero is the counters' exposition before any event: every series
// they can have, at 0.
const counterZero = `
# HELP switchboard_messages_total Messages by direction (out: from XMPP users, in: from phones), route (sms, xmpp) and outcome (accepted, delivered, failed, fallback, refused, duplicate, unconfirmed).
# TYPE switchboard_messages_total counter
switchboard_messages_total{direction="in",outcome="accepted",route="sms"} 0
switchboard_messages_total{direction="in",outcome="delivered",route="sms"} 0
switchboard_messages_total{direction="in",outcome="duplicate",route="sms"} 0
switchboard_messages_total{direction="in",outcome="refused",route="sms"} 0
switchboard_messages_total{direction="out",outcome="accepted",route="sms"} 0
switchboard_messages_total{direction="out",outcome="accepted",route="xmpp"} 0
switchboard_messages_total{direction="out",outcome="delivered",route="sms"} 0
switchboard_messages_total{direction="out",outcome="delivered",route="xmpp"} 0
switchboard_messages_total{direction="out",outcome="failed",route="sms"} 0
switchboard_messages_total{direction="out",outcome="failed",route="xmpp"} 0
switchboard_messages_total{direction="out",outcome="fallback",route="xmpp"} 0
switchboard_messages_total{direction="out",outcome="refused",route="sms"} 0
switchboard_messages_total{direction="out",outcome="refused",route="xmpp"} 0
switchboard_messages_total{direction="out",outcome="unconfirmed",route="sms"} 0
# HELP switchboard_refused_total Messages from users refused before they were stored, by reason (country, prefix, quota_global, quota_user_minute, quota_user_day, too_long, short_code, relay_limit, unregistered, internal).
# TYPE switchboard_refused_total counter
switchboard_refused_total{reason="country"} 0
switchboard_refused_total{reason="internal"} 0
switchboard_refused_total{reason="prefix"} 0
switchboard_refused_total{reason="quota_global"} 0
switchboard_refused_total{reason="quota_user_day"} 0
switchboard_refused_total{reason="quota_user_minute"} 0
switchboard_refused_total{reason="relay_limit"} 0
switchboard_refused_total{reason="short_code"} 0
switchboard_refused_total{reason="too_long"} 0
switchboard_refused_total{reason="unregistered"} 0
# HELP switchboard_sms_parts_submitted_total submit_sm sent, by the SMSC's answer (ok, temporary, permanent, unknown: no response, error).
# TYPE switchboard_sms_parts_submitted_total counter
switchboard_sms_parts_submitted_total{status="error"} 0
switchboard_sms_parts_submitted_total{status="ok"} 0
switchboard_sms_parts_submitted_total{status="permanent"} 0
switchboard_sms_parts_submitted_total{status="temporary"} 0
switchboard_sms_parts_submitted_total{status="unknown"} 0
`

// withValues is exposition with the given series' values set.
func withValues(exposition string, values map[string]int) string {
	for series, v := range values {
		exposition = strings.Replace(exposition, "\n"+series+" 0\n", "\n"+series+" "+strconv.Itoa(v)+"\n", 1)
	}
	return exposition
}

func TestMetricsHooks(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	m.Message("out", "sms", metrics.Accepted)
	m.Message("out", "sms", metrics.Accepted)
	m.Message("out", "sms", metrics.Delivered)
	m.Message("out", "xmpp", metrics.Fallback)
	m.Message("in", "sms", metrics.Refused)
	m.Refusal("quota_user_day")
	m.Refusal("country")
	m.Refusal("country")
	m.PartSubmitted("ok")
	m.PartSubmitted("ok")
	m.PartSubmitted("temporary")
	m.ReceiptLatency(3 * time.Second)
	m.ReceiptLatency(-time.Second) // clocks of two instances: counted as 0

	want := withValues(counterZero, map[string]int{
		`switchboard_messages_total{direction="in",outcome="refused",route="sms"}`:    1,
		`switchboard_messages_total{direction="out",outcome="accepted",route="sms"}`:  2,
		`switchboard_messages_total{direction="out",outcome="delivered",route="sms"}`: 1,
		`switchboard_messages_total{direction="out",outcome="fallback",route="xmpp"}`: 1,
		`switchboard_refused_total{reason="country"}`:                                 2,
		`switchboard_refused_total{reason="quota_user_day"}`:                          1,
		`switchboard_sms_parts_submitted_total{status="ok"}`:                          2,
		`switchboard_sms_parts_submitted_total{status="temporary"}`:                   1,
	})
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"switchboard_messages_total", "switchboard_refused_total", "switchboard_sms_parts_submitted_total"); err != nil {
		t.Error(err)
	}
	got, err := testutil.GatherAndCount(reg, "switchboard_receipt_latency_seconds")
	if err != nil || got != 1 {
		t.Errorf("histogram series = %d, %v", got, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "switchboard_receipt_latency_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 2 || h.GetSampleSum() != 3 {
			t.Errorf("histogram count %d sum %v, want 2 and 3", h.GetSampleCount(), h.GetSampleSum())
		}
		for _, b := range h.GetBucket() {
			if b.GetUpperBound() == 2.5 && b.GetCumulativeCount() != 1 {
				t.Errorf("le=2.5 bucket = %d, want 1", b.GetCumulativeCount())
			}
		}
	}
}

// TestMetricsZero scrapes a fresh registry: every series the counters can
// have is there at 0, so a rate() or an alert on one shows 0 before the
// first event instead of no data.
func TestMetricsZero(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	srv := httptest.NewServer(m.Handler(reg, zerolog.New(zerolog.NewTestWriter(t))))
	defer srv.Close()
	want := counterZero
	if err := testutil.ScrapeAndCompare(srv.URL+"/metrics", strings.NewReader(want),
		"switchboard_messages_total", "switchboard_refused_total", "switchboard_sms_parts_submitted_total"); err != nil {
		t.Error(err)
	}
}

// The SMSC's response times by SMSC, and the store's commits: their time
// and how many writes each held.
func TestMetricsLatencies(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	def, eu := m.SMPPResponse(""), m.SMPPResponse("eu")
	def(3 * time.Millisecond)
	def(20 * time.Millisecond)
	eu(2 * time.Second)
	m.StoreCommit(1, 2*time.Millisecond)
	m.StoreCommit(100, 40*time.Millisecond)

	hist := func(name string, labels map[string]string) (count uint64, sum float64) {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		metric:
			for _, mt := range mf.GetMetric() {
				for _, lp := range mt.GetLabel() {
					if labels[lp.GetName()] != lp.GetValue() {
						continue metric
					}
				}
				return mt.GetHistogram().GetSampleCount(), mt.GetHistogram().GetSampleSum()
			}
		}
		t.Fatalf("no %s %v", name, labels)
		return 0, 0
	}
	near := func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
	if n, sum := hist("switchboard_smpp_response_seconds", map[string]string{"smsc": "default"}); n != 2 || !near(sum, 0.023) {
		t.Errorf("default SMSC: %d responses, %v s; want 2, 0.023", n, sum)
	}
	if n, sum := hist("switchboard_smpp_response_seconds", map[string]string{"smsc": "eu"}); n != 1 || !near(sum, 2) {
		t.Errorf("eu: %d responses, %v s; want 1, 2", n, sum)
	}
	if n, sum := hist("switchboard_store_commit_seconds", nil); n != 2 || !near(sum, 0.042) {
		t.Errorf("commits: %d, %v s; want 2, 0.042", n, sum)
	}
	if n, sum := hist("switchboard_store_commit_writes", nil); n != 2 || !near(sum, 101) {
		t.Errorf("writes per commit: %d commits, %v writes; want 2, 101", n, sum)
	}
}

func TestMetricsGauges(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	// Nothing watched yet: no gauges at all.
	if n, err := testutil.GatherAndCount(reg, "switchboard_xmpp_connected", "switchboard_smpp_binds_up", "switchboard_queue_depth"); err != nil || n != 0 {
		t.Fatalf("gauges before watching = %d, %v", n, err)
	}

	st := storetest.SQLite(t)
	accept(t, st, 2)
	now := time.Unix(1e9, 0)
	metrics.SetClock(m, func() time.Time { return now })
	var a1, a2, b1 bind
	a1.up.Store(true)
	a1.inFlight.Store(3)
	a2.inFlight.Store(1)
	b1.up.Store(true)
	var x session
	m.AddSMPP("", &a1)
	m.AddSMPP("", &a2)
	m.AddSMPP("backup", &b1)
	m.SetXMPP(&x)
	m.SetStore(st)

	want := func(xmpp, queued int) string {
		return strings.NewReplacer("{xmpp}", strconv.Itoa(xmpp), "{queued}", strconv.Itoa(queued)).Replace(`
# HELP switchboard_xmpp_connected 1 while the XMPP component session is up, else 0.
# TYPE switchboard_xmpp_connected gauge
switchboard_xmpp_connected {xmpp}
# HELP switchboard_smpp_binds_up SMPP binds that are up, by SMSC (default: the unnamed one).
# TYPE switchboard_smpp_binds_up gauge
switchboard_smpp_binds_up{smsc="backup"} 1
switchboard_smpp_binds_up{smsc="default"} 1
# HELP switchboard_smpp_window_in_use SMPP requests waiting for their response, summed over the SMSC's binds.
# TYPE switchboard_smpp_window_in_use gauge
switchboard_smpp_window_in_use{smsc="backup"} 0
switchboard_smpp_window_in_use{smsc="default"} 4
# HELP switchboard_queue_depth Messages on their way, by state: out queued, submitting, submitted, relayed; in received. Cached for a few seconds.
# TYPE switchboard_queue_depth gauge
switchboard_queue_depth{state="queued"} {queued}
switchboard_queue_depth{state="received"} 0
switchboard_queue_depth{state="relayed"} 0
switchboard_queue_depth{state="submitted"} 0
switchboard_queue_depth{state="submitting"} 0
`)
	}
	names := []string{"switchboard_xmpp_connected", "switchboard_smpp_binds_up", "switchboard_smpp_window_in_use", "switchboard_queue_depth"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want(0, 2)), names...); err != nil {
		t.Error(err)
	}
	// Connections are read at every scrape; queue depths are cached.
	x.up.Store(true)
	accept(t, st, 1)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want(1, 2)), names...); err != nil {
		t.Error(err)
	}
	now = now.Add(5 * time.Second)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want(1, 3)), names...); err != nil {
		t.Error(err)
	}
}

func TestHealth(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	st := storetest.SQLite(t)
	var smsc bind
	var x session
	m.AddSMPP("", &smsc)
	m.SetXMPP(&x)
	m.SetStore(st)
	srv := httptest.NewServer(m.Handler(reg, zerolog.New(zerolog.NewTestWriter(t))))
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}

	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	code, body := get("/readyz")
	if code != 503 || body != "xmpp: not connected to the XMPP server\nsmpp: not bound to the SMSC\n" {
		t.Errorf("/readyz with nothing up = %d %q", code, body)
	}
	x.up.Store(true)
	smsc.up.Store(true)
	if code, body := get("/readyz"); code != 200 || body != "ok\n" {
		t.Errorf("/readyz with everything up = %d %q", code, body)
	}
	code, body = get("/metrics")
	if code != 200 || !strings.Contains(body, "switchboard_smpp_binds_up{smsc=\"default\"} 1\n") ||
		!strings.Contains(body, "switchboard_queue_depth{state=\"queued\"} 0\n") {
		t.Errorf("/metrics = %d\n%s", code, body)
	}

	// The store goes away: not ready, and the scrape still works without
	// the queue depths.
	st.Close()
	m.SetStore(st)
	code, body = get("/readyz")
	if code != 503 || !strings.HasPrefix(body, "store: ") || strings.Count(body, "\n") != 1 {
		t.Errorf("/readyz with the store closed = %d %q", code, body)
	}
	metrics.SetClock(m, func() time.Time { return time.Now().Add(time.Hour) })
	code, body = get("/metrics")
	if code != 200 || strings.Contains(body, "switchboard_queue_depth{") || !strings.Contains(body, "switchboard_xmpp_connected 1\n") {
		t.Errorf("/metrics with the store closed = %d\n%s", code, body)
	}
	if code, _ := get("/nothing"); code != 404 {
		t.Errorf("/nothing = %d", code)
	}
}

// hungStore answers nothing until released, as a PostgreSQL server that
// keeps its connections but stopped (its driver does not give up when the
// context ends).
type hungStore struct{ release chan struct{} }

func (h hungStore) Ping(context.Context) error { <-h.release; return nil }
func (h hungStore) QueueDepths(context.Context) (map[string]int, error) {
	<-h.release
	return map[string]int{}, nil
}

// TestHungStore: a store that answers nothing makes /readyz say so in time
// and /metrics serve everything else, instead of both hanging; probes and
// scrapes do not pile up behind the unanswered call.
func TestHungStore(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	var x session
	x.up.Store(true)
	m.SetXMPP(&x)
	st := hungStore{release: make(chan struct{})}
	defer close(st.release)
	m.SetStore(st)
	srv := httptest.NewServer(m.Handler(reg, zerolog.New(zerolog.NewTestWriter(t))))
	defer srv.Close()
	client := &http.Client{Timeout: 20 * time.Second}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 503 || !strings.HasPrefix(body, "store: no answer to a ping within") {
		t.Errorf("/readyz, the store hung = %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 503 || !strings.HasPrefix(body, "store: the store has not answered the last ping yet") {
		t.Errorf("/readyz again = %d %q", code, body)
	}
	for range 2 {
		code, body := get("/metrics")
		if code != 200 || strings.Contains(body, "switchboard_queue_depth{") || !strings.Contains(body, "switchboard_xmpp_connected 1\n") {
			t.Errorf("/metrics, the store hung = %d\n%s", code, body)
		}
	}
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") })
	go func() { done <- metrics.Serve(ctx, "127.0.0.1:0", h, zerolog.New(zerolog.NewTestWriter(t))) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel = %v", err)
	}
	if err := metrics.Serve(context.Background(), "127.0.0.1:bad", h, zerolog.Nop()); err == nil {
		t.Error("Serve on a bad address succeeded")
	}
}
