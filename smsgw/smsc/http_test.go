package smsc

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
)

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

func TestHTTPConfig(t *testing.T) {
	srv, _ := newTestServer(t, Config{ReceiptDelay: time.Second})
	hs := httptest.NewServer(srv.HTTPHandler())
	defer hs.Close()

	var c configView
	getJSON(t, hs.URL+"/config", &c)
	if c.Outcome != OutcomeDelivered || c.ReceiptDelay != "1s" || c.ReceiptMode != ReceiptText || c.IDFormat != IDHex ||
		!strings.Contains(c.Summary, "DELIVRD after 1s") {
		t.Errorf("GET /config: %+v", c)
	}

	resp, err := http.Post(hs.URL+"/config", "application/json", strings.NewReader(`{"outcome":"failed","receipt_delay":"10s"}`))
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&c)
	resp.Body.Close()
	if resp.StatusCode != 200 || c.Outcome != OutcomeFailed || c.ReceiptDelay != "10s" || !strings.Contains(c.Summary, "UNDELIV after 10s") {
		t.Errorf("POST /config: %d %+v", resp.StatusCode, c)
	}
	if got := srv.Config(); got.Outcome != OutcomeFailed || got.ReceiptDelay != 10*time.Second {
		t.Errorf("after POST /config: %+v", got)
	}

	// A form changes only the fields it has; the page's form is redirected back.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.PostForm(hs.URL+"/config", url.Values{"outcome": {"none"}, "page": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("POST /config from the page: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := srv.Config(); got.Outcome != OutcomeNone || got.ReceiptDelay != 10*time.Second {
		t.Errorf("after form: %+v", got)
	}

	resp, err = http.Post(hs.URL+"/config", "application/json", strings.NewReader(`{"outcome":"lost","receipt_delay":"soon"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "outcome") || !strings.Contains(string(body), "receipt_delay") {
		t.Errorf("bad POST /config: %d %q", resp.StatusCode, body)
	}
	if got := srv.Config(); got.Outcome != OutcomeNone {
		t.Errorf("a bad POST /config changed the outcome to %q", got.Outcome)
	}

	// What would change nothing is refused, naming why: a misspelt field
	// (JSON or form), and JSON sent as a form (curl -d without a type).
	for _, tc := range []struct {
		ctype, body string
		want        []string
	}{
		{"application/json", `{"outcom":"failed"}`, []string{`unknown field "outcom"`, "the fields are outcome, receipt_delay"}},
		{"application/x-www-form-urlencoded", `outcom=failed`, []string{`unknown field "outcom"`, "the fields are outcome, receipt_delay"}},
		{"application/x-www-form-urlencoded", `{"outcome":"failed"}`, []string{"send it with Content-Type: application/json"}},
	} {
		resp, err := http.Post(hs.URL+"/config", tc.ctype, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range tc.want {
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), want) {
				t.Errorf("POST /config %s %s: %d %q; want 400 saying %q", tc.ctype, tc.body, resp.StatusCode, body, want)
			}
		}
	}
	if got := srv.Config(); got.Outcome != OutcomeNone {
		t.Errorf("a refused POST /config changed the outcome to %q", got.Outcome)
	}
}

func TestHTTPPhones(t *testing.T) {
	srv, addr := newTestServer(t, Config{})
	hs := httptest.NewServer(srv.HTTPHandler())
	defer hs.Close()
	c := bound(t, addr, pdu.NewBindTransmitter)
	rx := bound(t, addr, pdu.NewBindReceiver)

	submit := func(s sub) {
		t.Helper()
		s.src = "12015550100"
		c.submit(s)
		c.expect(pdu.SubmitSMRespID)
	}
	submit(sub{dst: "12015550123", rd: 1, sm: []byte("<script>alert(1)</script>")})
	submit(sub{dst: "12015550123", esm: 0x40, sm: append([]byte{5, 0, 3, 9, 2, 2}, "World"...)})
	submit(sub{dst: "12015550123", esm: 0x40, sm: append([]byte{5, 0, 3, 9, 2, 1}, "Hello "...)})
	submit(sub{dst: "12015550124", esm: 0x40, sm: append([]byte{5, 0, 3, 10, 3, 2}, "middle"...)})
	srv.SetConfig(func(c *Config) { c.Outcome = OutcomeFailed; c.ReceiptDelay = time.Hour })
	submit(sub{dst: "12015550124", rd: 1, sm: []byte("later")})
	srv.SetConfig(func(c *Config) { c.Outcome = OutcomeRejected; c.ReceiptDelay = 0 })
	submit(sub{dst: "12015550124", rd: 1, sm: []byte("refused")})

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		readMO(t, rx, 3) // two receipts and the MO
	}()
	resp, err := http.PostForm(hs.URL+"/mo", url.Values{"from": {"+12015550123"}, "to": {"+12015550100"}, "text": {"<i>reply</i>"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("POST /mo: %s", resp.Status)
	}
	wg.Wait()

	var v pageView
	getJSON(t, hs.URL+"/phones", &v)
	if v.Bound != 2 || v.Config.Outcome != OutcomeRejected || v.Gateway != "+12015550100" || len(v.Phones) != 2 {
		t.Fatalf("GET /phones: %+v", v)
	}
	type row struct{ dir, peer, text, state, noReceipt string }
	want := map[string][]row{
		"+12015550123": {
			{"in", "+12015550100", "<script>alert(1)</script>", "DELIVRD", ""},
			{"in", "+12015550100", "Hello World", "DELIVRD", "no receipt requested"},
			{"out", "+12015550100", "<i>reply</i>", "sent", ""},
		},
		"+12015550124": {
			{"in", "+12015550100", "…middle…", "DELIVRD", "no receipt requested"},
			{"in", "+12015550100", "later", "pending", ""},
			{"in", "+12015550100", "refused", "REJECTD", ""},
		},
	}
	for _, p := range v.Phones {
		var got []row
		for _, m := range p.Messages {
			got = append(got, row{m.Dir, m.Peer, m.Text, m.State, m.NoReceipt})
		}
		if w := want[p.Number]; p.Count != len(w) || !equalRows(got, w) {
			t.Errorf("phone %s (%d): %q, want %q", p.Number, p.Count, got, w)
		}
	}
	if hw := v.Phones[0].Messages[1]; hw.Parts != 2 || hw.Total != 2 || len(hw.IDs) != 2 {
		t.Errorf("concatenated: %+v", hw)
	}
	if part := v.Phones[1].Messages[0]; part.Parts != 1 || part.Total != 3 {
		t.Errorf("incomplete: %+v", part)
	}

	resp, err = http.Get(hs.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("page CSP %q", csp)
	}
	for _, s := range []string{
		"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;i&gt;reply&lt;/i&gt;",
		`data-number="&#43;12015550124"`, `class="badge wait">pending`, `class="badge bad">REJECTD`,
		`value="rejected" checked`, `value="0s" checked`, `<template id="card-tmpl">`,
	} {
		if !strings.Contains(string(page), s) {
			t.Errorf("page lacks %s", s)
		}
	}
	if strings.Contains(string(page), "<script>alert") || strings.Contains(string(page), "<i>reply") {
		t.Error("page has message text unescaped")
	}
}

func equalRows[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestHTTPAssets(t *testing.T) {
	srv := NewServer(Config{})
	defer srv.Close()
	hs := httptest.NewServer(srv.HTTPHandler())
	defer hs.Close()
	for path, ct := range map[string]string{"/assets/style.css": "text/css", "/assets/app.js": "text/javascript"} {
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ct) {
			t.Errorf("GET %s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	resp, err := http.Get(hs.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `id="empty" class="empty">`) {
		t.Errorf("empty page without its hint:\n%s", page)
	}
}

// TestHTTPForeignRequests: a page of another site may not text as a phone
// (a cross-site POST), and a name that is not the simulator's (DNS
// rebinding: the attacker's name resolving to the simulator) may not read
// what phones received or change the carrier's behaviour. curl and the
// page itself still may.
func TestHTTPForeignRequests(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	hs := httptest.NewServer(srv.HTTPHandler("sim.example.net"))
	defer hs.Close()

	do := func(method, path, host string, header map[string]string) int {
		t.Helper()
		req, err := http.NewRequest(method, hs.URL+path, strings.NewReader(`{"outcome":"failed"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if host != "" {
			req.Host = host
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	checked := false
	for _, c := range []struct {
		name, method, path, host string
		header                   map[string]string
		want                     int
	}{
		{"rebound name reads messages", "GET", "/messages", "evil.example.com:8025", nil, http.StatusMisdirectedRequest},
		{"rebound name changes config", "POST", "/config", "evil.example.com", nil, http.StatusMisdirectedRequest},
		{"cross-site POST", "POST", "/config", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"cross-origin POST, old browser", "POST", "/config", "", map[string]string{"Origin": "https://evil.example.com"}, http.StatusForbidden},
		{"same-origin POST", "POST", "/config", "", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		{"curl POST", "POST", "/config", "", nil, http.StatusOK},
		{"localhost", "GET", "/messages", "localhost:8025", nil, http.StatusOK},
		{"name under .localhost", "GET", "/messages", "sim.localhost", nil, http.StatusOK},
		{"IPv6 literal", "GET", "/messages", "[::1]:8025", nil, http.StatusOK},
		{"name given to the handler", "GET", "/messages", "SIM.example.net.:8025", nil, http.StatusOK},
	} {
		// The refused cases come first: none of them changed anything.
		if c.want == http.StatusOK && !checked {
			if got := srv.Config().Outcome; got != OutcomeDelivered {
				t.Fatalf("a refused POST changed the outcome to %q", got)
			}
			checked = true
		}
		if got := do(c.method, c.path, c.host, c.header); got != c.want {
			t.Errorf("%s: %s %s (Host %q): %d, want %d", c.name, c.method, c.path, c.host, got, c.want)
		}
	}
	if got := srv.Config().Outcome; got != OutcomeFailed {
		t.Errorf("outcome %q after the allowed POSTs", got)
	}
}
