// Package metrics exposes Switchboard's Prometheus metrics (with
// github.com/prometheus/client_golang, in the text exposition format) and
// its health endpoints, /healthz and /readyz.
//
// The subsystems know nothing of Prometheus: they call plain hooks in their
// configs (router.Config.OnMessage, smsgw.Config.OnSubmit, …), which
// cmd/switchboard points at the methods of a Metrics. Gauges are read at
// scrape time through the small interfaces declared here.
package metrics

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The label values the hooks take. Anything else is counted as is, so
// callers keep to these to keep the number of series small.
const (
	// Outcomes of a message, for Message.
	Accepted  = "accepted"  // stored (out) or stored for the user (in)
	Delivered = "delivered" // receipt from the carrier or the XMPP recipient (out), handed to the XMPP server (in)
	Failed    = "failed"    // the carrier or the recipient's server refused it
	Fallback  = "fallback"  // relayed over XMPP, no receipt: sent as SMS
	Refused   = "refused"   // refused at once, with a stanza error (out) or an SMPP error (in)
	Duplicate = "duplicate" // (in) sent again by the SMSC after a new bind: acknowledged, not delivered twice
	// Unconfirmed: (out, sms) no receipt came within sms.receipt_wait: ended as sent.
	Unconfirmed = "unconfirmed"
)

// The series the counters are created with, at 0: every combination of
// labels the hooks are called with. A series that appears only with its
// first event leaves rate() and alerts on it with no data until then.
var (
	messageSeries = [][3]string{ // direction, route, outcome
		{"out", "sms", Accepted}, {"out", "sms", Delivered}, {"out", "sms", Failed}, {"out", "sms", Refused}, {"out", "sms", Unconfirmed},
		{"out", "xmpp", Accepted}, {"out", "xmpp", Delivered}, {"out", "xmpp", Failed}, {"out", "xmpp", Fallback}, {"out", "xmpp", Refused},
		{"in", "sms", Accepted}, {"in", "sms", Delivered}, {"in", "sms", Refused}, {"in", "sms", Duplicate},
	}
	refusalReasons = []string{"country", "prefix", "quota_global", "quota_user_minute", "quota_user_day", "too_long", "short_code", "relay_limit", "unregistered", "internal"}
	partStatuses   = []string{"ok", "temporary", "permanent", "unknown", "error"}
)

// Names of the metrics.
const (
	nameMessages       = "switchboard_messages_total"
	nameRefused        = "switchboard_refused_total"
	nameParts          = "switchboard_sms_parts_submitted_total"
	nameReceiptLatency = "switchboard_receipt_latency_seconds"
	nameSMPPResponse   = "switchboard_smpp_response_seconds"
	nameCommit         = "switchboard_store_commit_seconds"
	NameCommitWrites   = "switchboard_store_commit_writes" // read by the bench
	nameXMPPConnected  = "switchboard_xmpp_connected"
	nameBindsUp        = "switchboard_smpp_binds_up"
	nameWindow         = "switchboard_smpp_window_in_use"
	nameQueueDepth     = "switchboard_queue_depth"
)

// SMPP is a bind to an SMSC. *smpp.Client satisfies it.
type SMPP interface {
	Bound() bool
	// InFlight is the number of requests waiting for their response.
	InFlight() int
}

// XMPP is the component's session. *component.Component satisfies it.
type XMPP interface {
	Connected() bool
}

// Store is the database. *store.Store satisfies it.
type Store interface {
	Ping(ctx context.Context) error
	// QueueDepths counts the messages still on their way, by state.
	QueueDepths(ctx context.Context) (map[string]int, error)
}

// Metrics holds Switchboard's collectors. Create it with New; its methods
// are the hooks the subsystems call, and are safe for concurrent use.
type Metrics struct {
	messages *prometheus.CounterVec
	refused  *prometheus.CounterVec
	parts    *prometheus.CounterVec
	receipt  prometheus.Histogram
	smppResp *prometheus.HistogramVec
	commit   prometheus.Histogram
	writes   prometheus.Histogram

	mu    sync.Mutex // guards binds, xmpp, store
	binds []bind
	xmpp  XMPP
	store Store
	// queues caches QueueDepths for queueTTL, so scrapes by several
	// Prometheus servers cost one query.
	qmu       sync.Mutex
	queues    map[string]int
	queuesErr error
	queuesAt  time.Time
	queueTTL  time.Duration
	qpending  chan struct{} // closed when the query in flight ends; nil: none
	now       func() time.Time

	// pinging is set while a readiness ping of the store is in flight.
	pinging atomic.Bool
}

type bind struct {
	smsc string
	c    SMPP
}

// New creates the collectors and registers them with reg. The counters
// start with every series they can have, at 0. The gauges read what
// AddSMPP, SetXMPP and SetStore give them; until then they are absent.
// Runtime and process collectors are the caller's to register.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: nameMessages,
			Help: "Messages by direction (out: from XMPP users, in: from phones), route (sms, xmpp) and outcome (accepted, delivered, failed, fallback, refused, duplicate, unconfirmed).",
		}, []string{"direction", "route", "outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: nameRefused,
			Help: "Messages from users refused before they were stored, by reason (country, prefix, quota_global, quota_user_minute, quota_user_day, too_long, short_code, relay_limit, unregistered, internal).",
		}, []string{"reason"}),
		parts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: nameParts,
			Help: "submit_sm sent, by the SMSC's answer (ok, temporary, permanent, unknown: no response, error).",
		}, []string{"status"}),
		receipt: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    nameReceiptLatency,
			Help:    "Time from recording a part's submit_sm_resp to the carrier's final delivery receipt for it.",
			Buckets: []float64{0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600},
		}),
		smppResp: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    nameSMPPResponse,
			Help:    "Time a submit_sm waited for its submit_sm_resp (any status), by SMSC.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"smsc"}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    nameCommit,
			Help:    "Time of a group commit in the store (its statements and the commit), the writes waiting on it included.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}),
		writes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    NameCommitWrites,
			Help:    "Writes (accepts, SMSC ids, receipts, notices done, ...) that shared one group commit.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
		queueTTL: 5 * time.Second,
		now:      time.Now,
	}
	for _, l := range messageSeries {
		m.messages.WithLabelValues(l[0], l[1], l[2])
	}
	for _, r := range refusalReasons {
		m.refused.WithLabelValues(r)
	}
	for _, st := range partStatuses {
		m.parts.WithLabelValues(st)
	}
	reg.MustRegister(m.messages, m.refused, m.parts, m.receipt, m.smppResp, m.commit, m.writes, gauges{m})
	return m
}

// Message counts a message's outcome. direction is "out" or "in", route
// "sms" or "xmpp", outcome one of the constants above.
func (m *Metrics) Message(direction, route, outcome string) {
	m.messages.WithLabelValues(direction, route, outcome).Inc()
}

// Refusal counts a message refused for reason, a short label such as
// "country" or "quota_user_day".
func (m *Metrics) Refusal(reason string) { m.refused.WithLabelValues(reason).Inc() }

// PartSubmitted counts one submit_sm by its outcome: "ok", "temporary",
// "permanent", "unknown" or "error".
func (m *Metrics) PartSubmitted(status string) { m.parts.WithLabelValues(status).Inc() }

// ReceiptLatency records how long a part waited for its final receipt.
func (m *Metrics) ReceiptLatency(d time.Duration) { m.receipt.Observe(max(d, 0).Seconds()) }

// SMPPResponse returns the hook that observes how long a submit_sm to smsc
// ("default" for the unnamed one) waited for its response.
func (m *Metrics) SMPPResponse(smsc string) func(time.Duration) {
	o := m.smppResp.WithLabelValues(cmp.Or(smsc, "default"))
	return func(d time.Duration) { o.Observe(d.Seconds()) }
}

// StoreCommit observes one group commit: the writes it held, its time.
func (m *Metrics) StoreCommit(writes int, d time.Duration) {
	m.writes.Observe(float64(writes))
	m.commit.Observe(d.Seconds())
}

// AddSMPP adds a bind to SMSC smsc ("" is the default SMSC) to the SMPP
// gauges and to readiness.
func (m *Metrics) AddSMPP(smsc string, c SMPP) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.binds = append(m.binds, bind{smsc, c})
}

// SetXMPP sets the XMPP session for the connection gauge and readiness.
func (m *Metrics) SetXMPP(x XMPP) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.xmpp = x
}

// SetStore sets the store for the queue gauges and readiness.
func (m *Metrics) SetStore(s Store) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.store = s
}

// queueWait bounds how long a scrape waits for the store's queue counts.
const queueWait = 5 * time.Second

// queueDepths returns the cached counts, querying the store when they are
// older than queueTTL. A failure is cached as long. The query runs on its
// own, one at a time, and a scrape waits for it at most queueWait: a store
// that does not answer (a hung server, whose driver may not give up when
// the context ends) costs the queue gauges, not the whole scrape, and
// scrapes do not queue behind it.
func (m *Metrics) queueDepths(s Store) (map[string]int, error) {
	m.qmu.Lock()
	if m.qpending == nil && (m.queuesAt.IsZero() || m.now().Sub(m.queuesAt) >= m.queueTTL) {
		done := make(chan struct{})
		m.qpending = done
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), queueWait)
			q, err := s.QueueDepths(ctx)
			cancel()
			m.qmu.Lock()
			m.queues, m.queuesErr, m.queuesAt, m.qpending = q, err, m.now(), nil
			m.qmu.Unlock()
			close(done)
		}()
	}
	pending := m.qpending
	m.qmu.Unlock()
	if pending != nil {
		select {
		case <-pending:
		case <-time.After(queueWait):
			return nil, fmt.Errorf("the store did not answer within %v", queueWait)
		}
	}
	m.qmu.Lock()
	defer m.qmu.Unlock()
	return m.queues, m.queuesErr
}

// gauges reads the state of the connections and the queues at scrape time.
type gauges struct{ m *Metrics }

var (
	descXMPP = prometheus.NewDesc(nameXMPPConnected,
		"1 while the XMPP component session is up, else 0.", nil, nil)
	descBinds = prometheus.NewDesc(nameBindsUp,
		"SMPP binds that are up, by SMSC (default: the unnamed one).", []string{"smsc"}, nil)
	descWindow = prometheus.NewDesc(nameWindow,
		"SMPP requests waiting for their response, summed over the SMSC's binds.", []string{"smsc"}, nil)
	descQueue = prometheus.NewDesc(nameQueueDepth,
		"Messages on their way, by state: out queued, submitting, submitted, relayed; in received. Cached for a few seconds.", []string{"state"}, nil)
)

func (g gauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- descXMPP
	ch <- descBinds
	ch <- descWindow
	ch <- descQueue
}

func (g gauges) Collect(ch chan<- prometheus.Metric) {
	g.m.mu.Lock()
	binds, x, s := g.m.binds, g.m.xmpp, g.m.store
	g.m.mu.Unlock()
	if x != nil {
		ch <- prometheus.MustNewConstMetric(descXMPP, prometheus.GaugeValue, b2f(x.Connected()))
	}
	type sums struct{ up, window int }
	var order []string
	by := make(map[string]*sums)
	for _, b := range binds {
		name := b.smsc
		if name == "" {
			name = "default"
		}
		s := by[name]
		if s == nil {
			s = new(sums)
			by[name] = s
			order = append(order, name)
		}
		if b.c.Bound() {
			s.up++
		}
		s.window += b.c.InFlight()
	}
	for _, name := range order {
		ch <- prometheus.MustNewConstMetric(descBinds, prometheus.GaugeValue, float64(by[name].up), name)
		ch <- prometheus.MustNewConstMetric(descWindow, prometheus.GaugeValue, float64(by[name].window), name)
	}
	if s != nil {
		depths, err := g.m.queueDepths(s)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(descQueue, err)
			return
		}
		for st, n := range depths {
			ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(n), st)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
