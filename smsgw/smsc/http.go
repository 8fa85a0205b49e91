package smsc

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// HTTPHandler serves the simulator to people and tests:
//
//	GET  /               the page: virtual phones with their messages and delivery
//	                     states, the carrier's behaviour, forms to text as a phone
//	GET  /phones         JSON: the page's data (phones, config, bound sessions)
//	GET  /config         JSON {"outcome","receipt_delay","receipt_mode","id_format","summary"}
//	POST /config         form or JSON {"outcome","receipt_delay"} (a Go duration, "10s"):
//	                     SetConfig on the fields given, for messages submitted from then on;
//	                     answers as GET /config, or 400 naming each bad field
//	POST /mo             form or JSON {"from","to","text"}: SendMO; 200 "sent", else 4xx/5xx with the reason
//	GET  /messages       JSON array of the kept submits (Message)
//	GET  /inbox/{phone}  JSON array of the phone's complete messages (InboxMessage)
//	GET  /assets/…       the page's stylesheet and script
//
// The page and /phones show the messages sent from phones through this
// handler's POST /mo; each handler keeps its own list of them.
//
// The simulator shows what gateways send to phones, verification codes
// included, and texts as any phone; a web page the operator visits must not
// do either. So a request must name the simulator by an IP address,
// localhost (or a name under .localhost), or one of hosts: a name of the
// attacker's that resolves to the simulator's address (DNS rebinding) gets
// 421 Misdirected Request. And a POST a browser sends from another site
// (Sec-Fetch-Site, Origin) is refused with 403 (http.CrossOriginProtection).
func (s *Server) HTTPHandler(hosts ...string) http.Handler {
	return hostGuard(hosts, http.NewCrossOriginProtection().Handler(s.httpMux()))
}

// hostGuard passes on to h the requests whose Host is an IP address,
// localhost, a name under .localhost, or one of hosts (case-insensitive,
// without a port).
func hostGuard(hosts []string, h http.Handler) http.Handler {
	allowed := make(map[string]bool, len(hosts))
	for _, n := range hosts {
		allowed[strings.ToLower(strings.TrimSuffix(n, "."))] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.Host
		if h, _, err := net.SplitHostPort(name); err == nil {
			name = h
		}
		name = strings.ToLower(strings.TrimSuffix(strings.Trim(name, "[]"), "."))
		if net.ParseIP(name) == nil && name != "localhost" && !strings.HasSuffix(name, ".localhost") && !allowed[name] {
			http.Error(w, fmt.Sprintf("this simulator is not served as %q: use its IP address or localhost, or start it with -http-host %s", name, name),
				http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) httpMux() http.Handler {
	ui := &webUI{srv: s}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mo", ui.serveMO)
	mux.HandleFunc("GET /messages", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.Messages())
	})
	mux.HandleFunc("GET /inbox/{phone}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.Inbox(r.PathValue("phone")))
	})
	mux.HandleFunc("GET /phones", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, ui.view())
	})
	mux.HandleFunc("GET /config", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, newConfigView(s.Config()))
	})
	mux.HandleFunc("POST /config", ui.serveConfig)
	assets, _ := fs.Sub(webFiles, "web")
	files := http.StripPrefix("/assets/", http.FileServerFS(assets))
	mux.Handle("GET /assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /{$}", ui.servePage)
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// webUI is the state behind one HTTPHandler: the MOs sent through it.
type webUI struct {
	srv *Server

	mu  sync.Mutex
	mos []sentMO // oldest first, at most maxSentMOs
}

type sentMO struct {
	from, to, text string
	at             time.Time
}

const (
	maxSentMOs = 1000
	maxThread  = 50 // messages per phone on the page and in /phones
)

// readRequest decodes a JSON body into v, or else parses a form; it reports
// whether the request came from the page's script-less form (field "page").
// A field v has no JSON name for, or a form field not among known, is an
// error naming it (a misspelt field changed nothing, answered 200), as is
// a JSON body sent as a form (curl -d without a Content-Type).
func readRequest(w http.ResponseWriter, r *http.Request, v any, known ...string) (form map[string][]string, fromPage bool, err error) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return nil, false, fmt.Errorf("bad JSON: %w (the fields are %s)", err, strings.Join(known, ", "))
		}
		return nil, false, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, false, fmt.Errorf("bad form: %w", err)
	}
	for k := range r.PostForm {
		switch {
		case k == "page" || slices.Contains(known, k):
		case strings.HasPrefix(strings.TrimSpace(k), "{"):
			return nil, false, errors.New("the body is JSON sent as a form: send it with Content-Type: application/json")
		default:
			return nil, false, fmt.Errorf("unknown field %q (the fields are %s)", k, strings.Join(known, ", "))
		}
	}
	return r.PostForm, r.PostForm.Get("page") != "", nil
}

type moRequest struct {
	From string `json:"from"`
	To   string `json:"to"`
	Text string `json:"text"`
}

func (ui *webUI) serveMO(w http.ResponseWriter, r *http.Request) {
	var req moRequest
	form, fromPage, err := readRequest(w, r, &req, "from", "to", "text")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if form != nil {
		req = moRequest{From: first(form["from"]), To: first(form["to"]), Text: first(form["text"])}
	}
	if strings.TrimSpace(req.From) == "" || strings.TrimSpace(req.To) == "" {
		http.Error(w, "from and to are required", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	err = ui.srv.SendMO(ctx, req.From, req.To, req.Text)
	var st Status
	switch {
	case err == nil:
	case errors.Is(err, ErrNoSession), errors.Is(err, ErrClosed):
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	case errors.Is(err, errTooManyParts):
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	case errors.As(err, &st):
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	case errors.Is(err, errRespTimeout), errors.Is(err, context.DeadlineExceeded):
		http.Error(w, err.Error(), http.StatusGatewayTimeout)
		return
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ui.mu.Lock()
	ui.mos = append(ui.mos, sentMO{from: req.From, to: req.To, text: req.Text, at: time.Now()})
	if len(ui.mos) > 2*maxSentMOs {
		ui.mos = append([]sentMO(nil), ui.mos[len(ui.mos)-maxSentMOs:]...)
	}
	ui.mu.Unlock()
	if fromPage {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("sent\n"))
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// configView is the JSON of GET /config.
type configView struct {
	Outcome      Outcome     `json:"outcome"`
	ReceiptDelay string      `json:"receipt_delay"` // a Go duration: "0s", "10s"
	ReceiptMode  ReceiptMode `json:"receipt_mode"`
	IDFormat     string      `json:"id_format"`
	Summary      string      `json:"summary"` // what happens to the next message, in words
}

func newConfigView(c Config) configView {
	v := configView{
		Outcome:      c.Outcome,
		ReceiptDelay: c.ReceiptDelay.String(),
		ReceiptMode:  c.ReceiptMode,
		IDFormat:     c.IDFormat,
	}
	when := "at once"
	if c.EarlyReceipt {
		when = "before submit_sm_resp"
	} else if c.ReceiptDelay > 0 {
		when = "after " + c.ReceiptDelay.String()
	}
	switch c.Outcome {
	case OutcomeNone:
		v.Summary = "Next messages reach the phone; no receipt is ever sent."
	case OutcomeDelivered:
		v.Summary = "Next messages reach the phone; receipt stat:DELIVRD " + when + "."
	default:
		v.Summary = fmt.Sprintf("Next messages do not reach the phone; receipt stat:%s %s.", stat(c.Outcome), when)
	}
	return v
}

// configRequest is the body of POST /config; absent fields stay as they are.
type configRequest struct {
	Outcome      *Outcome `json:"outcome"`
	ReceiptDelay *string  `json:"receipt_delay"`
}

func (ui *webUI) serveConfig(w http.ResponseWriter, r *http.Request) {
	var req configRequest
	form, fromPage, err := readRequest(w, r, &req, "outcome", "receipt_delay")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if form != nil {
		if v, ok := form["outcome"]; ok {
			o := Outcome(first(v))
			req.Outcome = &o
		}
		if v, ok := form["receipt_delay"]; ok {
			d := first(v)
			req.ReceiptDelay = &d
		}
	}
	var errs []error
	var delay time.Duration
	if req.ReceiptDelay != nil {
		if delay, err = time.ParseDuration(*req.ReceiptDelay); err != nil {
			errs = append(errs, fmt.Errorf("smsc: receipt_delay: %q is not a duration like \"10s\"", *req.ReceiptDelay))
		}
	}
	c := ui.srv.Config()
	apply := func(c *Config) {
		if req.Outcome != nil {
			c.Outcome = *req.Outcome
		}
		if req.ReceiptDelay != nil {
			c.ReceiptDelay = delay
		}
	}
	apply(&c)
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ui.srv.SetConfig(apply)
	if fromPage {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	writeJSON(w, newConfigView(ui.srv.Config()))
}

// pageView is the JSON of GET /phones and the data of the page.
type pageView struct {
	Bound  int        `json:"bound"`
	Config configView `json:"config"`
	Phones []phone    `json:"phones"` // by number
	// Gateway is the number the gateway sent from most recently: the page's default "to".
	Gateway string `json:"gateway"`
}

// phone is a virtual phone: a number that was sent a message, or sent one.
type phone struct {
	Number   string        `json:"number"` // as a person types it: "+12015550123"
	Peer     string        `json:"peer"`   // whom it exchanged its latest message with
	Count    int           `json:"count"`  // messages in all
	Messages []threadEntry `json:"messages"`
}

// threadEntry is one message of a phone's thread.
type threadEntry struct {
	// Dir is "in" for a message the gateway submitted to the phone, "out"
	// for one the phone sent (an MO).
	Dir  string `json:"dir"`
	Peer string `json:"peer"` // the other end: the sender of "in", the recipient of "out"
	// Text is the whole text; for a concatenated message still missing
	// parts, the parts so far in order, with "…" for each gap.
	Text  string    `json:"text"`
	IDs   []string  `json:"ids,omitempty"` // SMSC message ids, in part order
	Parts int       `json:"parts"`         // parts received
	Total int       `json:"total"`         // parts expected
	Time  time.Time `json:"time"`          // when the last part arrived or the MO was sent
	// State is DELIVRD, UNDELIV, REJECTD or EXPIRED once decided, "pending"
	// while a delayed receipt waits, and "sent" for an MO the ESME accepted.
	State string `json:"state"`
	// NoReceipt says why no receipt is sent for an "in" message, if none is.
	NoReceipt string `json:"no_receipt,omitempty"`
}

// Clock is the entry's time as the page shows it.
func (e threadEntry) Clock() string { return e.Time.Local().Format("15:04:05") }

// Tone is the badge colour class for State.
func (e threadEntry) Tone() string { return stateTone(e.State) }

func stateTone(state string) string {
	switch state {
	case "DELIVRD":
		return "ok"
	case "pending":
		return "wait"
	case "sent":
		return "sent"
	case "EXPIRED":
		return "warn"
	}
	return "bad"
}

// displayNumber renders a number as the page shows it: digit strings of
// 8 or more (international, see address) with a '+'.
func displayNumber(n string) string {
	n = normPhone(n)
	if len(n) < 8 {
		return n
	}
	for _, r := range n {
		if r < '0' || r > '9' {
			return n
		}
	}
	return "+" + n
}

type groupKey struct {
	systemID, source, dest string
	ref                    uint16
	total                  uint8
}

// view groups the kept submits by destination and the MOs by source into
// phones, reassembling concatenated messages.
func (ui *webUI) view() pageView {
	s := ui.srv
	msgs := s.Messages()
	ui.mu.Lock()
	mos := slices.Clone(ui.mos)
	ui.mu.Unlock()

	type built struct {
		e     threadEntry
		parts []*Message // by seq; nil where missing
	}
	threads := map[string][]*built{}
	open := map[groupKey]*built{}
	for _, m := range msgs {
		num := displayNumber(m.Dest)
		total := 1
		var k groupKey
		if c := m.Concat; c != nil && c.Total > 1 && c.Seq >= 1 && c.Seq <= c.Total {
			total = int(c.Total)
			k = groupKey{m.SystemID, m.Source, m.Dest, c.Ref, c.Total}
			if b := open[k]; b != nil {
				if b.parts[c.Seq-1] == nil {
					b.e.Parts++
				}
				b.parts[c.Seq-1] = m
				if b.e.Parts == total {
					delete(open, k)
				}
				continue
			}
		}
		b := &built{
			e:     threadEntry{Dir: "in", Peer: displayNumber(m.Source), Parts: 1, Total: total},
			parts: make([]*Message, total),
		}
		seq := 1
		if total > 1 {
			seq = int(m.Concat.Seq)
			open[k] = b
		}
		b.parts[seq-1] = m
		threads[num] = append(threads[num], b)
	}

	out := map[string][]threadEntry{}
	for num, bs := range threads {
		entries := make([]threadEntry, 0, len(bs))
		for _, b := range bs {
			e := b.e
			var text strings.Builder
			pending, state := false, ""
			var last *Message
			for _, p := range b.parts {
				if p == nil {
					text.WriteString("…")
					continue
				}
				text.WriteString(p.Text)
				e.IDs = append(e.IDs, p.ID)
				if last == nil || p.Received.After(last.Received) {
					last = p
				}
				switch {
				case p.State == "":
					pending = true
				case state == "" || state == "DELIVRD":
					state = p.State
				}
			}
			e.Text = text.String()
			if last.FullText != "" {
				e.Text = last.FullText
			}
			e.Time = last.Received
			e.State = state
			if pending {
				e.State = "pending"
			}
			e.NoReceipt = noReceipt(last)
			entries = append(entries, e)
		}
		out[num] = entries
	}
	for _, mo := range mos {
		num := displayNumber(mo.from)
		out[num] = append(out[num], threadEntry{
			Dir: "out", Peer: displayNumber(mo.to), Text: mo.text,
			Parts: 1, Total: 1, Time: mo.at, State: "sent",
		})
	}

	v := pageView{Bound: s.Bound(), Config: newConfigView(s.Config()), Gateway: "+12015550100", Phones: []phone{}}
	if len(msgs) > 0 {
		v.Gateway = displayNumber(msgs[len(msgs)-1].Source)
	}
	for num, entries := range out {
		slices.SortStableFunc(entries, func(a, b threadEntry) int { return a.Time.Compare(b.Time) })
		p := phone{Number: num, Count: len(entries), Peer: entries[len(entries)-1].Peer}
		p.Messages = entries[max(0, len(entries)-maxThread):]
		v.Phones = append(v.Phones, p)
	}
	slices.SortFunc(v.Phones, func(a, b phone) int { return cmp.Compare(a.Number, b.Number) })
	return v
}

// noReceipt says why m gets no delivery receipt, or "" when it gets one.
func noReceipt(m *Message) string {
	switch {
	case m.Outcome == OutcomeNone:
		return "no receipt: carrier sends none"
	case m.RegisteredDelivery&0x03 == 0:
		return "no receipt requested"
	case m.RegisteredDelivery&0x03 == 2 && m.Outcome == OutcomeDelivered:
		return "receipt on failure only"
	}
	return ""
}

//go:embed web
var webFiles embed.FS

var pageTmpl = template.Must(template.ParseFS(webFiles, "web/index.html"))

// Choices on the page; a current value that is not among them is added.
var (
	outcomeChoices = []choice{
		{string(OutcomeDelivered), "Delivered", "DELIVRD"},
		{string(OutcomeFailed), "Failed", "UNDELIV"},
		{string(OutcomeRejected), "Rejected", "REJECTD"},
		{string(OutcomeExpired), "Expired", "EXPIRED"},
		{string(OutcomeNone), "No receipt", "delivered, silently"},
	}
	delayChoices = []choice{
		{"0s", "At once", ""},
		{"1s", "After 1 s", ""},
		{"10s", "Slow: 10 s", ""},
	}
)

type choice struct{ Value, Label, Hint string }

func withCurrent(cs []choice, cur string) []choice {
	for _, c := range cs {
		if c.Value == cur {
			return cs
		}
	}
	return append(slices.Clone(cs), choice{cur, "After " + cur, ""})
}

func (ui *webUI) servePage(w http.ResponseWriter, r *http.Request) {
	v := ui.view()
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	if err := pageTmpl.Execute(w, struct {
		pageView
		Outcomes, Delays []choice
		Blank            phone // the card the script copies for a new phone
	}{v, outcomeChoices, withCurrent(delayChoices, v.Config.ReceiptDelay), phone{}}); err != nil {
		ui.srv.settings().log.Warn().Err(err).Msg("page")
	}
}
