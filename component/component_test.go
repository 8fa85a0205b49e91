package component

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/internal/testenv"
	"switchboard/router"
)

const (
	testDomain  = "sms.example.com"
	testSecret  = "s3cret"
	testVersion = "1.2.3-test"
	testNumber  = "+12015550123@sms.example.com"
	testAlice   = "alice@example.com/r"

	nsAccept  = "jabber:component:accept"
	nsStream  = "http://etherx.jabber.org/streams"
	nsStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"

	// waitFor bounds every wait on the component. It is a deadline for a hung
	// test, not a speed assertion.
	waitFor = 5 * time.Second
)

// fakeRouter records the messages it is handed and answers with fn.
type fakeRouter struct {
	mu    sync.Mutex
	calls []router.Message
	fn    func(router.Message) error
}

func (r *fakeRouter) Outbound(_ context.Context, m router.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, m)
	if r.fn != nil {
		return r.fn(m)
	}
	return nil
}

// script sets the answer for the next calls and forgets the recorded ones.
func (r *fakeRouter) script(fn func(router.Message) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = nil
	r.fn = fn
}

func (r *fakeRouter) taken() []router.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// fakeServer is the XMPP server's component listener on loopback. Tests take
// each accepted connection with accept and run the handshake themselves, so
// they decide when (and whether) a connection becomes a session.
type fakeServer struct {
	t        *testing.T
	ln       net.Listener
	accepted chan net.Conn
	done     chan struct{}

	mu    sync.Mutex
	conns []net.Conn
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, accepted: make(chan net.Conn), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		// Unblock an Accept goroutine waiting to hand over a connection.
		for drained := false; !drained; {
			select {
			case <-s.accepted:
			case <-s.done:
				drained = true
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			c.Close()
		}
	})
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

// accept waits for the component to dial.
func (s *fakeServer) accept() net.Conn {
	s.t.Helper()
	select {
	case c := <-s.accepted:
		return c
	case <-time.After(waitFor):
		s.t.Fatal("the component did not connect")
		return nil
	}
}

// session accepts a connection and completes the handshake.
func (s *fakeServer) session() *serverConn {
	s.t.Helper()
	sc, err := handshake(s.t, s.accept(), testSecret)
	if err != nil {
		s.t.Fatal(err)
	}
	return sc
}

// serverConn is the server end of one component stream.
type serverConn struct {
	t    *testing.T
	conn net.Conn
	dec  *xml.Decoder

	// polite makes the server answer the component's </stream:stream> with
	// its own and close the connection, as Prosody and ejabberd do.
	polite atomic.Bool

	stanzas   chan node     // top-level elements from the component
	lasts     chan node     // its XEP-0012 uptime queries, kept apart (see read)
	closed    chan struct{} // the component sent </stream:stream>
	readerEnd chan struct{} // the reader goroutine returned
	pings     atomic.Int64
}

// handshake is the server side of XEP-0114 over conn: read the stream header,
// answer with an id, check <handshake/> against secret.
func handshake(t *testing.T, conn net.Conn, secret string) (*serverConn, error) {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(waitFor))
	dec := xml.NewDecoder(conn)
	start, err := nextStart(dec)
	if err != nil {
		return nil, fmt.Errorf("reading the stream header: %w", err)
	}
	if start.Name.Space != nsStream || start.Name.Local != "stream" {
		return nil, fmt.Errorf("want stream:stream, got %v", start.Name)
	}
	if to := attrOf(start.Attr, "to"); to != testDomain {
		return nil, fmt.Errorf("stream header to=%q, want %q", to, testDomain)
	}
	var ns string
	for _, a := range start.Attr {
		if a.Name.Space == "" && a.Name.Local == "xmlns" {
			ns = a.Value
		}
	}
	if ns != nsAccept {
		return nil, fmt.Errorf("stream namespace %q, want %q", ns, nsAccept)
	}
	const id = "stream-id-1234"
	if _, err := io.WriteString(conn, `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' from='`+testDomain+`' id='`+id+`'>`); err != nil {
		return nil, err
	}
	hs, err := nextStart(dec)
	if err != nil {
		return nil, fmt.Errorf("reading the handshake: %w", err)
	}
	var digest string
	if err := dec.DecodeElement(&digest, &hs); err != nil {
		return nil, err
	}
	sum := sha1.Sum([]byte(id + secret))
	if hs.Name.Local != "handshake" || strings.TrimSpace(digest) != hex.EncodeToString(sum[:]) {
		_, _ = io.WriteString(conn, `<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`)
		conn.Close()
		return nil, errNotAuthorized
	}
	if _, err := io.WriteString(conn, `<handshake/>`); err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})

	sc := &serverConn{t: t, conn: conn, dec: dec,
		stanzas: make(chan node, 4096), lasts: make(chan node, 4), closed: make(chan struct{}), readerEnd: make(chan struct{})}
	sc.polite.Store(true)
	go sc.read()
	return sc, nil
}

var errNotAuthorized = errors.New("fake server: handshake refused")

func nextStart(dec *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := dec.Token()
		if err != nil {
			return xml.StartElement{}, err
		}
		if s, ok := tok.(xml.StartElement); ok {
			return s, nil
		}
	}
}

func (sc *serverConn) read() {
	defer close(sc.readerEnd)
	defer close(sc.stanzas)
	for {
		tok, err := sc.dec.Token()
		if err != nil {
			return
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			var n node
			if err := sc.dec.DecodeElement(&n, &tok); err != nil {
				return
			}
			if n.XMLName.Local == "iq" && n.attr("type") == "get" && len(n.children(nsLast, "query")) == 1 {
				// The uptime query the component sends as it connects
				// (serverRestarts): unanswered, unless a test answers it
				// from lasts, and out of the way of the others.
				select {
				case sc.lasts <- n:
				default:
				}
				continue
			}
			sc.stanzas <- n
		case xml.EndElement:
			close(sc.closed)
			if sc.polite.Load() {
				_, _ = io.WriteString(sc.conn, `</stream:stream>`)
				sc.conn.Close()
			}
			return
		}
	}
}

// send writes raw XML to the component.
func (sc *serverConn) send(raw string) {
	sc.t.Helper()
	if _, err := io.WriteString(sc.conn, raw); err != nil {
		sc.t.Fatalf("writing to the component: %v", err)
	}
}

// next returns the next stanza from the component.
func (sc *serverConn) next() node {
	sc.t.Helper()
	select {
	case n, ok := <-sc.stanzas:
		if !ok {
			sc.t.Fatal("the component's stream ended")
		}
		return n
	case <-time.After(waitFor):
		sc.t.Fatal("no stanza from the component")
		return node{}
	}
}

// nextWhere returns the next stanza from the component that match takes,
// skipping the others.
func (sc *serverConn) nextWhere(match func(node) bool) node {
	sc.t.Helper()
	for {
		if n := sc.next(); match(n) {
			return n
		}
	}
}

// isRosterGet tells a roster get (the component reading a user's roster).
func isRosterGet(n node) bool {
	return n.XMLName.Local == "iq" && n.attr("type") == "get" && len(n.children(nsRoster, "query")) == 1
}

// ping sends an XEP-0199 ping to the component domain and returns whatever
// the component sent before the answer. The component handles stanzas in
// order, so these are its answers to everything sent before the ping, and a
// pong proves the session survived them.
func (sc *serverConn) ping() []node {
	sc.t.Helper()
	id := fmt.Sprintf("ping-%d", sc.pings.Add(1))
	sc.send(`<iq type='get' id='` + id + `' from='example.com' to='` + testDomain + `'><ping xmlns='urn:xmpp:ping'/></iq>`)
	var before []node
	for {
		n := sc.next()
		if n.XMLName.Local == "iq" && n.attr("id") == id {
			if n.attr("type") != "result" || n.attr("from") != testDomain || n.attr("to") != "example.com" || len(n.Nodes) != 0 {
				sc.t.Fatalf("bad pong: %s", n)
			}
			return before
		}
		before = append(before, n)
	}
}

// node is any element read back from the component.
type node struct {
	XMLName xml.Name
	Attr    []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []node     `xml:",any"`
}

func attrOf(attrs []xml.Attr, local string) string {
	for _, a := range attrs {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

func (n node) attr(local string) string { return attrOf(n.Attr, local) }

func (n node) hasAttr(local string) bool {
	for _, a := range n.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return true
		}
	}
	return false
}

func (n node) children(space, local string) []node {
	var out []node
	for _, c := range n.Nodes {
		if c.XMLName.Space == space && c.XMLName.Local == local {
			out = append(out, c)
		}
	}
	return out
}

func (n node) String() string {
	n = n.withoutXMLNS()
	b, err := xml.Marshal(n)
	if err != nil {
		return fmt.Sprintf("%#v", n)
	}
	return string(b)
}

// withoutXMLNS drops namespace declarations, which Marshal writes again.
func (n node) withoutXMLNS() node {
	n.Attr = slices.DeleteFunc(slices.Clone(n.Attr), func(a xml.Attr) bool {
		return a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns")
	})
	n.Nodes = slices.Clone(n.Nodes)
	for i := range n.Nodes {
		n.Nodes[i] = n.Nodes[i].withoutXMLNS()
	}
	return n
}

// stanzaError returns the type, condition and text of n's <error/>.
func (n node) stanzaError() (typ, cond, text string, ok bool) {
	errs := n.children(nsAccept, "error")
	if len(errs) != 1 {
		return "", "", "", false
	}
	e := errs[0]
	for _, c := range e.Nodes {
		if c.XMLName.Space != nsStanzas {
			continue
		}
		if c.XMLName.Local == "text" {
			text = c.Text
		} else {
			cond = c.XMLName.Local
		}
	}
	return e.attr("type"), cond, text, true
}

// want describes one stanza the component must send.
type want struct {
	name string            // message or iq
	attr map[string]string // attributes that must have these values
	// For type='error' replies: the error type, condition and a part of the text.
	errType, errCond, errText string
	check                     func(t *testing.T, n node)
}

func (w want) match(t *testing.T, n node) {
	t.Helper()
	if n.XMLName.Space != nsAccept || n.XMLName.Local != w.name {
		t.Errorf("got %s, want a %s", n, w.name)
		return
	}
	for k, v := range w.attr {
		if got := n.attr(k); got != v {
			t.Errorf("%s=%q, want %q in %s", k, got, v, n)
		}
	}
	if w.errCond != "" {
		typ, cond, text, ok := n.stanzaError()
		switch {
		case !ok:
			t.Errorf("no <error/> in %s", n)
		case typ != w.errType || cond != w.errCond:
			t.Errorf("error %s/%s, want %s/%s in %s", typ, cond, w.errType, w.errCond, n)
		case !strings.Contains(text, w.errText) || text == "":
			t.Errorf("error text %q, want it to contain %q", text, w.errText)
		}
	}
	if w.check != nil {
		w.check(t, n)
	}
}

func msgError(from, to, id, typ, cond, text string) want {
	return want{name: "message", attr: map[string]string{"from": from, "to": to, "id": id, "type": "error"},
		errType: typ, errCond: cond, errText: text}
}

func iqError(from, to, id, typ, cond, text string) want {
	return want{name: "iq", attr: map[string]string{"from": from, "to": to, "id": id, "type": "error"},
		errType: typ, errCond: cond, errText: text}
}

func iqResult(from, to, id string, check func(t *testing.T, n node)) want {
	return want{name: "iq", attr: map[string]string{"from": from, "to": to, "id": id, "type": "result"}, check: check}
}

// harness is a component running against a fake server.
type harness struct {
	srv    *fakeServer
	comp   *Component
	router *fakeRouter
	conns  chan struct{} // one value per OnConnect call
	cancel context.CancelFunc
	done   chan error // Run's result
}

func start(t *testing.T, srv *fakeServer, modify func(*Config)) *harness {
	t.Helper()
	h := &harness{srv: srv, router: &fakeRouter{}, conns: make(chan struct{}, 16), done: make(chan error, 1)}
	cfg := Config{
		JID:          jid.MustParse(testDomain),
		Server:       srv.addr(),
		Secret:       testSecret,
		Version:      testVersion,
		ReconnectMin: 5 * time.Millisecond,
		ReconnectMax: 20 * time.Millisecond,
		KeepAlive:    time.Hour, // no pings of its own, but where a test asks for them
		OnConnect:    func() { h.conns <- struct{}{} },
		Logger:       zerolog.New(zerolog.NewTestWriter(t)),
	}
	if modify != nil {
		modify(&cfg)
	}
	h.comp = New(cfg, h.router)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.comp.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(waitFor):
			t.Error("Run did not return after its context ended")
		}
	})
	return h
}

func (h *harness) onConnect(t *testing.T) {
	t.Helper()
	select {
	case <-h.conns:
	case <-time.After(waitFor):
		t.Fatal("OnConnect was not called")
	}
}

func (h *harness) stop(t *testing.T) error {
	t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		h.done <- err // for the cleanup
		return err
	case <-time.After(waitFor):
		t.Fatal("Run did not return after its context ended")
		return nil
	}
}

// connected starts a component against a new fake server and returns it
// once its first session is up, with the server end of that session.
func connected(t *testing.T) (*harness, *serverConn) {
	t.Helper()
	h := start(t, newFakeServer(t), nil)
	sc := h.srv.session()
	h.onConnect(t)
	return h, sc
}

// waitClosed fails the test with failure unless the component sends
// </stream:stream> on sc within waitFor.
func waitClosed(t *testing.T, sc *serverConn, failure string) {
	t.Helper()
	select {
	case <-sc.closed:
	case <-time.After(waitFor):
		t.Error(failure)
	}
}

type transcript struct {
	name   string
	router func(router.Message) error // nil: accept everything
	in     string
	want   []want           // the component's answers, in order
	calls  []router.Message // what the router must be handed; nil: nothing
}

func msgCall(from, to, id, body string, receipt bool) router.Message {
	return router.Message{From: jid.MustParse(from), To: jid.MustParse(to), ID: id, Body: body, WantReceipt: receipt}
}

func hasQuery(ns, nodeAttr string, check func(t *testing.T, q node)) func(t *testing.T, n node) {
	return func(t *testing.T, n node) {
		t.Helper()
		qs := n.children(ns, "query")
		if len(qs) != 1 || len(n.Nodes) != 1 {
			t.Fatalf("want one %s query in %s", ns, n)
		}
		if got := qs[0].attr("node"); got != nodeAttr || qs[0].hasAttr("node") != (nodeAttr != "") {
			t.Errorf("query node=%q, want %q", got, nodeAttr)
		}
		if check != nil {
			check(t, qs[0])
		}
	}
}

func discoInfoCheck(category, typ string, feats ...string) func(t *testing.T, q node) {
	return func(t *testing.T, q node) {
		t.Helper()
		ids := q.children(nsDiscoInfo, "identity")
		if len(ids) != 1 || ids[0].attr("category") != category || ids[0].attr("type") != typ || ids[0].attr("name") == "" {
			t.Errorf("identities %v, want one %s/%s with a name", ids, category, typ)
		}
		var got []string
		for _, f := range q.children(nsDiscoInfo, "feature") {
			got = append(got, f.attr("var"))
		}
		for _, f := range feats {
			if !slices.Contains(got, f) {
				t.Errorf("features %q, want %q among them", got, f)
			}
		}
	}
}

func transcripts() []transcript {
	longLocal := strings.Repeat("9", 2000) + "@" + testDomain
	regRequired := stanza.Error{Type: stanza.Auth, Condition: stanza.RegistrationRequired,
		Text: map[string]string{"": "Register your number first."}}
	isRegRequired := func(router.Message) error { return regRequired }
	pong := func(t *testing.T, n node) {
		if len(n.Nodes) != 0 {
			t.Errorf("ping result with a payload: %s", n)
		}
	}
	allFeatures := []string{nsDiscoInfo, nsDiscoItems, nsPing, "jabber:iq:version", nsReceipts}

	return []transcript{
		// Messages.
		{
			name:  "message with receipt request",
			in:    `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='m1' type='chat'><body>Hello there</body><request xmlns='urn:xmpp:receipts'/></message>`,
			calls: []router.Message{msgCall(testAlice, testNumber, "m1", "Hello there", true)},
		},
		{
			name:  "message without receipt request nor type",
			in:    `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='m2'><body>No receipt</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`,
			calls: []router.Message{msgCall(testAlice, testNumber, "m2", "No receipt", false)},
		},
		{
			name:  "message with escaped and non-ASCII body",
			in:    `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='m3' type='chat'><body>a &amp; b &lt;3 &#x263A; 😀 "q" 'a'</body></message>`,
			calls: []router.Message{msgCall(testAlice, testNumber, "m3", `a & b <3 ☺ 😀 "q" 'a'`, false)},
		},
		{
			name:   "router refuses with a stanza error",
			router: isRegRequired,
			in:     `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='m4' type='chat'><body>hi</body></message>`,
			want:   []want{msgError(testNumber, testAlice, "m4", "auth", "registration-required", "Register your number first.")},
			calls:  []router.Message{msgCall(testAlice, testNumber, "m4", "hi", false)},
		},
		{
			name:   "router refuses with a wrapped stanza error",
			router: func(router.Message) error { return fmt.Errorf("router: %w", regRequired) },
			in:     `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='m5' type='chat'><body>hi</body></message>`,
			want:   []want{msgError(testNumber, testAlice, "m5", "auth", "registration-required", "Register your number first.")},
			calls:  []router.Message{msgCall(testAlice, testNumber, "m5", "hi", false)},
		},
		{
			name:   "router fails with a plain error",
			router: func(router.Message) error { return errors.New("store: disk on fire") },
			in:     `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='m6' type='chat'><body>hi</body></message>`,
			want:   []want{msgError(testNumber, testAlice, "m6", "wait", "internal-server-error", "again later")},
			calls:  []router.Message{msgCall(testAlice, testNumber, "m6", "hi", false)},
		},
		{
			name: "message to a malformed JID",
			in:   `<message from='alice@example.com/r' to='@@@' id='m7' type='chat'><body>hi</body></message>`,
			want: []want{msgError(testDomain, testAlice, "m7", "modify", "jid-malformed", `"@@@"`)},
		},
		{
			name: "message to a JID without domainpart",
			in:   `<message from='alice@example.com/r' to='+1@' id='m8' type='chat'><body>hi</body></message>`,
			want: []want{msgError(testDomain, testAlice, "m8", "modify", "jid-malformed", `"+1@"`)},
		},
		{
			name: "message to a 2000-byte localpart",
			in:   `<message from='alice@example.com/r' to='` + longLocal + `' id='m9' type='chat'><body>hi</body></message>`,
			want: []want{msgError(testDomain, testAlice, "m9", "modify", "jid-malformed", "not a valid address")},
		},
		{
			name: "message to a number in Arabic-Indic digits: told how to write it, from the address written to",
			in:   `<message from='alice@example.com/r' to='+١٢٠١٥٥٥٠١٢٣@sms.example.com' id='m9a' type='chat'><body>hi</body></message>`,
			want: []want{msgError("+١٢٠١٥٥٥٠١٢٣@sms.example.com", testAlice, "m9a", "modify", "jid-malformed", "with the digits 0 to 9")},
		},
		{
			name: "message without to",
			in:   `<message from='alice@example.com/r' id='m10' type='chat'><body>hi</body></message>`,
			want: []want{msgError(testDomain, testAlice, "m10", "modify", "jid-malformed", "not a valid address")},
		},
		{
			name: "message from a malformed JID",
			in:   `<message from='a@b@c' to='+12015550123@sms.example.com' id='m11' type='chat'><body>hi</body></message>`,
		},
		{
			name: "message without from",
			in:   `<message to='+12015550123@sms.example.com' id='m12' type='chat'><body>hi</body></message>`,
		},
		{
			name: "message from the component's own domain",
			in:   `<message from='sms.example.com' to='+12015550123@sms.example.com' id='m13'><body>loop</body></message>`,
		},
		{
			name: "message to the bare domain with body",
			in:   `<message from='alice@example.com/r' to='sms.example.com' id='m14' type='chat'><body>help</body></message>`,
			want: []want{msgError(testDomain, testAlice, "m14", "cancel", "service-unavailable", testNumber)},
		},
		{
			name: "message to the domain with a resource",
			in:   `<message from='alice@example.com/r' to='sms.example.com/bot' id='m15' type='chat'><body>help</body></message>`,
			want: []want{msgError(testDomain+"/bot", testAlice, "m15", "cancel", "service-unavailable", "SMS gateway")},
		},
		{
			name: "message to the bare domain without body",
			in:   `<message from='alice@example.com/r' to='sms.example.com' id='m16' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`,
		},
		{
			name: "message error",
			in:   `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='m17' type='error'><body>hi</body><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`,
		},
		{
			name: "message error to a malformed JID",
			in:   `<message from='alice@example.com/r' to='@@@' id='m18' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`,
		},
		{
			name: "groupchat message from a room (a domain not served)",
			in:   `<message from='room@forbidden.example/nick' to='+12015550123@sms.example.com' id='m19' type='groupchat'><body>hi all</body></message>`,
		},
		{
			name: "headline message",
			in:   `<message from='example.com' to='+12015550123@sms.example.com' id='m20' type='headline'><body>MOTD</body></message>`,
		},
		{
			name: "headline to a malformed JID",
			in:   `<message from='example.com' to='a@b@c' id='m21' type='headline'><body>MOTD</body></message>`,
		},
		{
			name:  "chat state only",
			in:    `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='m22' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`,
			calls: []router.Message{msgCall(testAlice, testNumber, "m22", "", false)},
		},
		{
			name:  "several bodies: the one without xml:lang wins",
			in:    `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='m23' type='chat'><body xml:lang='de'>Hallo</body><body>Hello</body><body xml:lang='fr'>Bonjour</body></message>`,
			calls: []router.Message{msgCall(testAlice, testNumber, "m23", "Hello", false)},
		},
		{
			name:  "several bodies all with xml:lang: the first wins",
			in:    `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='m24' type='chat'><body xml:lang='de'>Hallo</body><body xml:lang='fr'>Bonjour</body></message>`,
			calls: []router.Message{msgCall(testAlice, testNumber, "m24", "Hallo", false)},
		},
		{
			name:  "message without id",
			in:    `<message from='alice@example.com/r' to='+12015550123@sms.example.com' type='chat'><body>no id</body></message>`,
			calls: []router.Message{msgCall(testAlice, testNumber, "", "no id", false)},
		},

		// IQs.
		{
			name: "disco#info to the component",
			in:   `<iq type='get' id='i1' from='alice@example.com/r' to='sms.example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
			want: []want{iqResult(testDomain, testAlice, "i1", hasQuery(nsDiscoInfo, "", discoInfoCheck("gateway", "sms", allFeatures...)))},
		},
		{
			name: "disco#info for an unknown node of the component",
			in:   `<iq type='get' id='i2' from='alice@example.com/r' to='sms.example.com'><query xmlns='http://jabber.org/protocol/disco#info' node='http://example.com/caps#abc'/></iq>`,
			want: []want{iqError(testDomain, testAlice, "i2", "cancel", "item-not-found", "http://example.com/caps#abc")},
		},
		{
			name: "disco#info for a node of a number",
			in:   `<iq type='get' id='i2b' from='alice@example.com/r' to='+12015550123@sms.example.com'><query xmlns='http://jabber.org/protocol/disco#info' node='http://example.com/caps#abc'/></iq>`,
			want: []want{iqResult(testNumber, testAlice, "i2b", hasQuery(nsDiscoInfo, "http://example.com/caps#abc", discoInfoCheck("client", "sms", nsDiscoInfo, nsReceipts, nsReactions, nsCorrection, nsReply, nsOOB)))},
		},
		{
			name: "disco#info to a number",
			in:   `<iq type='get' id='i3' from='alice@example.com/r' to='+12015550123@sms.example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
			want: []want{iqResult(testNumber, testAlice, "i3", hasQuery(nsDiscoInfo, "", discoInfoCheck("client", "sms", nsDiscoInfo, nsReceipts, nsReactions, nsCorrection, nsReply, nsOOB)))},
		},
		{
			name: "disco#items",
			in:   `<iq type='get' id='i4' from='alice@example.com/r' to='sms.example.com'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`,
			want: []want{iqResult(testDomain, testAlice, "i4", hasQuery(nsDiscoItems, "", func(t *testing.T, q node) {
				if len(q.Nodes) != 0 {
					t.Errorf("disco#items not empty: %s", q)
				}
			}))},
		},
		{
			name: "disco#items with a node",
			in:   `<iq type='get' id='i5' from='alice@example.com/r' to='sms.example.com'><query xmlns='http://jabber.org/protocol/disco#items' node='commands'/></iq>`,
			want: []want{iqResult(testDomain, testAlice, "i5", hasQuery(nsDiscoItems, "commands", nil))},
		},
		{
			name: "ping",
			in:   `<iq type='get' id='i6' from='alice@example.com/r' to='sms.example.com'><ping xmlns='urn:xmpp:ping'/></iq>`,
			want: []want{iqResult(testDomain, testAlice, "i6", pong)},
		},
		{
			name: "ping a number",
			in:   `<iq type='get' id='i7' from='alice@example.com/r' to='+12015550123@sms.example.com'><ping xmlns='urn:xmpp:ping'/></iq>`,
			want: []want{iqResult(testNumber, testAlice, "i7", pong)},
		},
		{
			name: "version",
			in:   `<iq type='get' id='i8' from='alice@example.com/r' to='sms.example.com'><query xmlns='jabber:iq:version'/></iq>`,
			want: []want{iqResult(testDomain, testAlice, "i8", func(t *testing.T, n node) {
				qs := n.children("jabber:iq:version", "query")
				if len(qs) != 1 {
					t.Fatalf("no version query in %s", n)
				}
				name := qs[0].children("jabber:iq:version", "name")
				version := qs[0].children("jabber:iq:version", "version")
				if len(name) != 1 || name[0].Text != "Switchboard" || len(version) != 1 || version[0].Text != testVersion {
					t.Errorf("version answer %s, want Switchboard %s", qs[0], testVersion)
				}
			})},
		},
		{
			name: "version of a number",
			in:   `<iq type='get' id='i9' from='alice@example.com/r' to='+12015550123@sms.example.com'><query xmlns='jabber:iq:version'/></iq>`,
			want: []want{iqError(testNumber, testAlice, "i9", "cancel", "service-unavailable", "jabber:iq:version")},
		},
		{
			name: "unknown IQ get",
			in:   `<iq type='get' id='i10' from='alice@example.com/r' to='sms.example.com'><vCard xmlns='vcard-temp'/></iq>`,
			want: []want{iqError(testDomain, testAlice, "i10", "cancel", "service-unavailable", "vcard-temp")},
		},
		{
			name: "unknown IQ set",
			in:   `<iq type='set' id='i11' from='alice@example.com/r' to='sms.example.com'><pubsub xmlns='http://jabber.org/protocol/pubsub'/></iq>`,
			want: []want{iqError(testDomain, testAlice, "i11", "cancel", "service-unavailable", "set")},
		},
		{
			name: "disco#info set",
			in:   `<iq type='set' id='i12' from='alice@example.com/r' to='sms.example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
			want: []want{iqError(testDomain, testAlice, "i12", "cancel", "service-unavailable", "disco#info")},
		},
		{
			name: "IQ with two children",
			in:   `<iq type='get' id='i13' from='alice@example.com/r' to='sms.example.com'><ping xmlns='urn:xmpp:ping'/><query xmlns='jabber:iq:version'/></iq>`,
			want: []want{iqError(testDomain, testAlice, "i13", "modify", "bad-request", "exactly one child")},
		},
		{
			name: "IQ with a ping and a body",
			in:   `<iq type='get' id='i14' from='alice@example.com/r' to='sms.example.com'><ping xmlns='urn:xmpp:ping'/><body>x</body></iq>`,
			want: []want{iqError(testDomain, testAlice, "i14", "modify", "bad-request", "exactly one child")},
		},
		{
			name: "IQ with no child",
			in:   `<iq type='get' id='i15' from='alice@example.com/r' to='sms.example.com'/>`,
			want: []want{iqError(testDomain, testAlice, "i15", "modify", "bad-request", "exactly one child")},
		},
		{
			name: "IQ whose only child is a body",
			in:   `<iq type='get' id='i16' from='alice@example.com/r' to='sms.example.com'><body xmlns='urn:example:body'/></iq>`,
			want: []want{iqError(testDomain, testAlice, "i16", "cancel", "service-unavailable", "")},
		},
		{
			name: "IQ whose only child is a receipt request",
			in:   `<iq type='set' id='i17' from='alice@example.com/r' to='sms.example.com'><request xmlns='urn:xmpp:receipts'/></iq>`,
			want: []want{iqError(testDomain, testAlice, "i17", "cancel", "service-unavailable", "")},
		},
		{
			name: "IQ result",
			in:   `<iq type='result' id='i18' from='alice@example.com/r' to='sms.example.com'><query xmlns='jabber:iq:roster'/></iq>`,
		},
		{
			name: "IQ error",
			in:   `<iq type='error' id='i19' from='alice@example.com/r' to='sms.example.com'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`,
		},
		{
			name: "IQ with an unknown type",
			in:   `<iq type='bogus' id='i20' from='alice@example.com/r' to='sms.example.com'><ping xmlns='urn:xmpp:ping'/></iq>`,
		},
		{
			name: "IQ to a malformed JID",
			in:   `<iq type='get' id='i21' from='alice@example.com/r' to='@@@'><ping xmlns='urn:xmpp:ping'/></iq>`,
			want: []want{iqError(testDomain, testAlice, "i21", "modify", "jid-malformed", `"@@@"`)},
		},
		{
			name: "IQ to a 2000-byte localpart",
			in:   `<iq type='get' id='i22' from='alice@example.com/r' to='` + longLocal + `'><ping xmlns='urn:xmpp:ping'/></iq>`,
			want: []want{iqError(testDomain, testAlice, "i22", "modify", "jid-malformed", "not a valid address")},
		},
		{
			name: "IQ without to",
			in:   `<iq type='get' id='i23' from='alice@example.com/r'><ping xmlns='urn:xmpp:ping'/></iq>`,
			want: []want{iqError(testDomain, testAlice, "i23", "modify", "jid-malformed", "not a valid address")},
		},
		{
			name: "IQ from a malformed JID",
			in:   `<iq type='get' id='i24' from='a@b@c' to='sms.example.com'><ping xmlns='urn:xmpp:ping'/></iq>`,
			want: []want{iqError(testDomain, "a@b@c", "i24", "modify", "jid-malformed", "sender")},
		},
		{
			name: "IQ from the component's own domain",
			in:   `<iq type='get' id='i25' from='sms.example.com' to='sms.example.com'><ping xmlns='urn:xmpp:ping'/></iq>`,
			want: []want{{name: "iq", attr: map[string]string{"from": testDomain, "id": "i25", "type": "error"},
				errType: "modify", errCond: "jid-malformed", errText: "sender"}},
		},

		// Stanza attributes in another namespace are not the stanza's.
		{
			name:  "message with a namespaced from",
			in:    `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='n1' type='chat' xmlns:x='urn:example:x' x:from='victim@example.com/r' x:to='+12015550199@elsewhere.example' x:id='forged'><body>spoof</body></message>`,
			calls: []router.Message{msgCall(testAlice, testNumber, "n1", "spoof", false)},
		},
		{
			name:   "refused message with a namespaced to",
			router: isRegRequired,
			in:     `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='n2' type='chat' xmlns:x='urn:example:x' x:to='evil.example'><body>hi</body></message>`,
			want:   []want{msgError(testNumber, testAlice, "n2", "auth", "registration-required", "Register")},
			calls:  []router.Message{msgCall(testAlice, testNumber, "n2", "hi", false)},
		},
		{
			name: "IQ with namespaced to, id and type",
			in:   `<iq type='get' id='n3' from='alice@example.com/r' to='sms.example.com' xmlns:x='urn:example:x' x:to='evil.example' x:id='forged' x:type='result'><ping xmlns='urn:xmpp:ping'/></iq>`,
			want: []want{iqResult(testDomain, testAlice, "n3", pong)},
		},
		{
			name: "IQ with only a namespaced type",
			in:   `<iq xmlns:x='urn:example:x' x:type='get' id='n4' from='alice@example.com/r' to='sms.example.com'><ping xmlns='urn:xmpp:ping'/></iq>`,
		},
		{
			name: "message with a namespaced type error",
			in:   `<message from='alice@example.com/r' to='sms.example.com' id='n5' xmlns:x='urn:example:x' x:type='error'><body>help</body></message>`,
			want: []want{msgError(testDomain, testAlice, "n5", "cancel", "service-unavailable", testNumber)},
		},

		// Presence and other elements.
		{
			// Served users' presence is answered (see the address-book
			// integration tests); other domains' is ignored.
			name: "presence subscribe from a foreign domain",
			in:   `<presence from='mallory@forbidden.example' to='+12015550123@sms.example.com' type='subscribe' id='p1'/>`,
		},
		{
			name: "presence probe from a foreign domain",
			in:   `<presence from='forbidden.example' to='+12015550123@sms.example.com' type='probe'/>`,
		},
		{
			name: "presence unavailable",
			in:   `<presence from='alice@example.com/r' to='sms.example.com' type='unavailable'><status>bye</status></presence>`,
		},
		{
			name: "available presence with malformed JIDs",
			in:   `<presence from='a@b@c' to='@@@'><show>away</show><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>`,
		},
		{
			name: "unknown element in the accept namespace",
			in:   `<foo xmlns='jabber:component:accept' from='alice@example.com/r' to='sms.example.com' type='get' id='x1'><bar/></foo>`,
		},
		{
			name: "unknown element in another namespace",
			in:   `<foo xmlns='urn:example:foo'><iq type='get' id='x2'/></foo>`,
		},
		{
			name: "stray handshake",
			in:   `<handshake>00</handshake>`,
		},
		{
			name: "whitespace keepalive",
			in:   " \n\t ",
		},
		{
			name:  "message in another namespace prefix form",
			in:    `<c:message xmlns:c='jabber:component:accept' from='alice@example.com/r' to='+12015550123@sms.example.com' id='m30'><c:body>prefixed</c:body></c:message>`,
			calls: []router.Message{msgCall(testAlice, testNumber, "m30", "prefixed", false)},
		},

		// Added later, kept last so the fuzz seeds of the others keep their numbers.
		{
			name: "disco#info to a JID that is no number",
			in:   `<iq type='get' id='i3b' from='alice@example.com/r' to='abc@sms.example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
			want: []want{iqError("abc@sms.example.com", testAlice, "i3b", "modify", "jid-malformed", `"abc" is not a phone number`)},
		},
		{
			name: "disco#info for a node of a JID that is no number",
			in:   `<iq type='get' id='i3c' from='alice@example.com/r' to='+1@sms.example.com'><query xmlns='http://jabber.org/protocol/disco#info' node='http://example.com/caps#abc'/></iq>`,
			want: []want{iqError("+1@sms.example.com", testAlice, "i3c", "modify", "jid-malformed", `"+1" is not a phone number`)},
		},
		{
			name: "groupchat message from a user",
			in:   `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='m19b' type='groupchat'><body>hi all</body></message>`,
			want: []want{msgError(testNumber, testAlice, "m19b", "cancel", "service-unavailable", "not a group chat")},
		},
		{
			name: "OMEMO message (as Conversations sends it): its fallback body is not sent",
			in: `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='e1' type='chat'><encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='2'>AAAA</key><iv>BBBB</iv></header><payload>CCCC</payload></encrypted>` +
				`<encryption xmlns='urn:xmpp:eme:0' namespace='eu.siacs.conversations.axolotl'/><body>I sent you an OMEMO encrypted message but your client doesn't seem to support that.</body><request xmlns='urn:xmpp:receipts'/></message>`,
			want: []want{msgError(testNumber, testAlice, "e1", "modify", "not-acceptable", "cannot carry an end-to-end encrypted message")},
		},
		{
			name: "OMEMO 2 message",
			in:   `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='e2' type='chat'><encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'/><payload>CCCC</payload></encrypted><body>[This message is OMEMO encrypted]</body></message>`,
			want: []want{msgError(testNumber, testAlice, "e2", "modify", "not-acceptable", "turn encryption off")},
		},
		{
			name: "OpenPGP message (XEP-0373)",
			in:   `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='e3' type='chat'><openpgp xmlns='urn:xmpp:openpgp:0'>BASE64</openpgp><body>This message is encrypted.</body></message>`,
			want: []want{msgError(testNumber, testAlice, "e3", "modify", "not-acceptable", "end-to-end encrypted")},
		},
		{
			name: "legacy PGP message (XEP-0027)",
			in:   `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='e4' type='chat'><x xmlns='jabber:x:encrypted'>qANQR1DB</x><body>This message is encrypted.</body></message>`,
			want: []want{msgError(testNumber, testAlice, "e4", "modify", "not-acceptable", "end-to-end encrypted")},
		},
		{
			name: "a body with markup is refused",
			in:   `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='x1' type='chat'><body>hello <a href='x'>there</a></body></message>`,
			want: []want{msgError(testNumber, testAlice, "x1", "modify", "bad-request", "plain text, not elements")},
		},
		{
			name: "a body of markup alone is refused too, not dropped",
			in:   `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='x2' type='chat'><body><a></a></body><request xmlns='urn:xmpp:receipts'/></message>`,
			want: []want{msgError(testNumber, testAlice, "x2", "modify", "bad-request", "plain text, not elements")},
		},
		{
			name: "OMEMO key exchange without a body: nothing sent, no answer",
			in:   `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='e5' type='chat'><encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key prekey='true' rid='2'>AAAA</key><iv>BBBB</iv></header></encrypted></message>`,
		},
		{
			name: "retraction (XEP-0424 version 1)",
			in: `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='e6' type='chat'><retract id='m1' xmlns='urn:xmpp:message-retract:1'/>` +
				`<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/><body>This person attempted to retract a previous message, but it's unsupported by your client.</body></message>`,
			want: []want{msgError(testNumber, testAlice, "e6", "cancel", "feature-not-implemented", "cannot be taken back")},
		},
		{
			name: "retraction (version 0, applied through XEP-0422)",
			in: `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='e7' type='chat'><apply-to xmlns='urn:xmpp:fasten:0' id='m1'><retract xmlns='urn:xmpp:message-retract:0'/></apply-to>` +
				`<body>This person attempted to retract a previous message, but it's unsupported by your client.</body></message>`,
			want: []want{msgError(testNumber, testAlice, "e7", "cancel", "feature-not-implemented", "cannot be retracted")},
		},
		{
			name:  "another fastening (not a retraction) goes on",
			in:    `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='e8' type='chat'><apply-to xmlns='urn:xmpp:fasten:0' id='m1'><external xmlns='urn:xmpp:fasten:0' name='body'/></apply-to><body>thanks</body></message>`,
			calls: []router.Message{msgCall(testAlice, testNumber, "e8", "thanks", false)},
		},

		{
			name: "vcard of a national number (default region)",
			in:   `<iq type='get' id='v2' from='alice@example.com/r' to='2015550123@sms.example.com'><vCard xmlns='vcard-temp'/></iq>`,
			want: []want{iqResult("2015550123@sms.example.com", testAlice, "v2", func(t *testing.T, n node) {
				v := n.children("vcard-temp", "vCard")
				if len(v) != 1 || !strings.Contains(v[0].String(), "+12015550123") {
					t.Errorf("want a vCard of +12015550123 in %s", n)
				}
			})},
		},

		// Presence is answered from the address written to, whatever form
		// of the number it is (RFC 6121 §3.1.6: a subscribed from another
		// address is ignored); the state is the canonical number's.
		{
			name: "presence subscribe to a number written with dashes",
			in:   `<presence from='alice@example.com' to='+1-201-555-0123@sms.example.com' type='subscribe'/>`,
			want: []want{
				presenceWant("+1-201-555-0123@sms.example.com", "alice@example.com", "subscribed", ""),
				presenceWant("+1-201-555-0123@sms.example.com", "alice@example.com", "subscribe", ""),
				presenceWant("+1-201-555-0123@sms.example.com", "alice@example.com", "", "SMS"),
			},
		},
		{
			name: "presence probe to a number written with dots, from a full JID",
			in:   `<presence from='alice@example.com/r' to='+1.201.555.0123@sms.example.com' type='probe'/>`,
			want: []want{presenceWant("+1.201.555.0123@sms.example.com", "alice@example.com", "", "SMS")},
		},
		{
			name: "presence subscribe to a national number (default region)",
			in:   `<presence from='alice@example.com' to='2015550123@sms.example.com' type='subscribe'/>`,
			want: []want{
				presenceWant("2015550123@sms.example.com", "alice@example.com", "subscribed", ""),
				presenceWant("2015550123@sms.example.com", "alice@example.com", "subscribe", ""),
				presenceWant("2015550123@sms.example.com", "alice@example.com", "", "SMS"),
			},
		},
		{
			name: "presence probe to a national number with its trunk prefix",
			in:   `<presence from='alice@example.com' to='12015550123@sms.example.com' type='probe'/>`,
			want: []want{presenceWant("12015550123@sms.example.com", "alice@example.com", "", "SMS")},
		},
		{
			name: "presence subscribe to a short code",
			in:   `<presence from='alice@example.com' to='12345@sms.example.com' type='subscribe'/>`,
			want: []want{
				presenceWant("12345@sms.example.com", "alice@example.com", "subscribed", ""),
				presenceWant("12345@sms.example.com", "alice@example.com", "subscribe", ""),
				presenceWant("12345@sms.example.com", "alice@example.com", "", "SMS (short code)"),
			},
		},
		{
			name: "presence probe to a short code",
			in:   `<presence from='alice@example.com' to='12345@sms.example.com' type='probe'/>`,
			want: []want{presenceWant("12345@sms.example.com", "alice@example.com", "", "SMS (short code)")},
		},
		{
			// No such contact: RFC 6121 §8.5.1 (and §4.3.2 for the probe).
			name: "presence subscribe to a name that is no number",
			in:   `<presence from='alice@example.com' to='abc@sms.example.com' type='subscribe'/>`,
			want: []want{presenceWant("abc@sms.example.com", "alice@example.com", "unsubscribed", "")},
		},
		{
			name: "presence probe to a name that is no number",
			in:   `<presence from='alice@example.com' to='abc@sms.example.com' type='probe'/>`,
			want: []want{presenceWant("abc@sms.example.com", "alice@example.com", "unsubscribed", "")},
		},
		{
			name: "presence unsubscribe from a name that is no number",
			in:   `<presence from='alice@example.com' to='abc@sms.example.com' type='unsubscribe'/>`,
		},
		{
			// RFC 6121 §3.3.3: the contact sends unavailable, not unsubscribed.
			name: "presence unsubscribe from a number",
			in:   `<presence from='alice@example.com' to='+1-201-555-0123@sms.example.com' type='unsubscribe'/>`,
			want: []want{presenceWant("+1-201-555-0123@sms.example.com", "alice@example.com", "unavailable", "")},
		},
		{
			name: "presence subscribed to a number (approving its request)",
			in:   `<presence from='alice@example.com' to='+12015550123@sms.example.com' type='subscribed'/>`,
		},
		{
			// A client adding the gateway to its roster (XEP-0100 §4.1.1).
			name: "presence subscribe to the gateway",
			in:   `<presence from='alice@example.com' to='sms.example.com' type='subscribe'/>`,
			want: []want{
				presenceWant(testDomain, "alice@example.com", "subscribed", ""),
				presenceWant(testDomain, "alice@example.com", "", ""),
			},
		},
		{
			name: "presence probe to the gateway",
			in:   `<presence from='alice@example.com' to='sms.example.com' type='probe'/>`,
			want: []want{presenceWant(testDomain, "alice@example.com", "", "")},
		},
		{
			name: "presence unsubscribe from the gateway",
			in:   `<presence from='alice@example.com' to='sms.example.com' type='unsubscribe'/>`,
			want: []want{presenceWant(testDomain, "alice@example.com", "unavailable", "")},
		},
		{
			name: "presence subscribe to the gateway from a foreign domain",
			in:   `<presence from='mallory@forbidden.example' to='sms.example.com' type='subscribe'/>`,
		},
		{
			name: "disco#info to a short code",
			in:   `<iq type='get' id='i40' from='alice@example.com/r' to='12345@sms.example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
			want: []want{iqResult("12345@sms.example.com", testAlice, "i40", hasQuery(nsDiscoInfo, "", discoInfoCheck("client", "sms", nsDiscoInfo, nsReceipts, nsReactions, nsCorrection, nsReply, nsOOB)))},
		},
		{
			name: "disco#info to a name that is no number",
			in:   `<iq type='get' id='i41' from='alice@example.com/r' to='abc@sms.example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
			want: []want{iqError("abc@sms.example.com", testAlice, "i41", "modify", "jid-malformed", "not a phone number")},
		},
		{
			name: "OTR query (Off-the-Record has no element of its own)",
			in:   `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='e9' type='chat'><body>?OTRv23? alice has requested an Off-the-Record private conversation.</body></message>`,
			want: []want{msgError(testNumber, testAlice, "e9", "modify", "not-acceptable", "end-to-end encrypted")},
		},
		{
			name:  "headline from a user: an alert, sent",
			in:    `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='m40' type='headline'><body>Server down</body><request xmlns='urn:xmpp:receipts'/></message>`,
			calls: []router.Message{msgCall(testAlice, testNumber, "m40", "Server down", true)},
		},
		{
			name: "headline from a user without a body (an event)",
			in:   `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='m41' type='headline'><event xmlns='http://jabber.org/protocol/pubsub#event'/></message>`,
		},
		{
			name:  "several bodies: the one in the stanza's xml:lang wins",
			in:    `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='m43' type='chat' xml:lang='en'><body xml:lang='de'>Hallo</body><body xml:lang='en'>Hello</body></message>`,
			calls: []router.Message{msgCall(testAlice, testNumber, "m43", "Hello", false)},
		},
		{
			name: "markup inside a body",
			in:   `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='m44' type='chat'><body>a<b xmlns='urn:example'>hi</b>c</body><request xmlns='urn:xmpp:receipts'/></message>`,
			want: []want{msgError(testNumber, testAlice, "m44", "modify", "bad-request", "plain text")},
		},
		{
			name: "headline from a domain not served",
			in:   `<message from='bot@forbidden.example' to='+12015550123@sms.example.com' id='m42' type='headline'><body>news</body></message>`,
		},
		{
			name: "disco#items to a name that is no number",
			in:   `<iq type='get' id='i42' from='alice@example.com/r' to='abc@sms.example.com'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`,
			want: []want{iqError("abc@sms.example.com", testAlice, "i42", "modify", "jid-malformed", "not a phone number")},
		},
		{
			name: "vcard of a short code: named as it is",
			in:   `<iq type='get' id='v3' from='alice@example.com/r' to='72345@sms.example.com'><vCard xmlns='vcard-temp'/></iq>`,
			want: []want{iqResult("72345@sms.example.com", testAlice, "v3", func(t *testing.T, n node) {
				if v := n.children("vcard-temp", "vCard"); len(v) != 1 || !strings.Contains(v[0].String(), ">72345</FN>") {
					t.Errorf("want a vCard named 72345 in %s", n)
				}
			})},
		},
		{
			name: "vcard of a name that is no number",
			in:   `<iq type='get' id='v4' from='alice@example.com/r' to='MyBank@sms.example.com'><vCard xmlns='vcard-temp'/></iq>`,
			want: []want{iqResult("MyBank@sms.example.com", testAlice, "v4", func(t *testing.T, n node) {
				if v := n.children("vcard-temp", "vCard"); len(v) != 1 || !strings.Contains(strings.ToLower(v[0].String()), ">mybank</fn>") || strings.Contains(v[0].String(), "TEL") {
					t.Errorf("want a vCard named MyBank without a number in %s", n)
				}
			})},
		},
		{
			name: "disco#items to a number: no items",
			in:   `<iq type='get' id='i43' from='alice@example.com/r' to='+12015550123@sms.example.com'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`,
			want: []want{iqResult(testNumber, testAlice, "i43", hasQuery(nsDiscoItems, "", func(t *testing.T, q node) {
				if len(q.Nodes) != 0 {
					t.Errorf("items for a number: %s", q)
				}
			}))},
		},
	}
}

// presenceWant is presence the component must send: from, to, type (""
// for available) and status ("" for none).
func presenceWant(from, to, typ, status string) want {
	return want{name: "presence", attr: map[string]string{"from": from, "to": to, "type": typ}, check: func(t *testing.T, n node) {
		t.Helper()
		got := ""
		for _, c := range n.Nodes {
			if c.XMLName.Local == "status" {
				got = c.Text
			}
		}
		if got != status {
			t.Errorf("status %q, want %q in %s", got, status, n)
		}
	}}
}

func TestTranscripts(t *testing.T) {
	h := start(t, newFakeServer(t), func(c *Config) { c.DefaultRegion = "US" })
	sc := h.srv.session()
	h.onConnect(t)
	if !h.comp.Connected() {
		t.Fatal("Connected() is false after the handshake")
	}
	sc.ping()

	for _, tc := range transcripts() {
		t.Run(tc.name, func(t *testing.T) {
			sc.t = t
			h.router.script(tc.router)
			sc.send(tc.in)
			got := sc.ping()
			if len(got) != len(tc.want) {
				t.Errorf("got %d stanzas, want %d:", len(got), len(tc.want))
				for _, n := range got {
					t.Logf("  %s", n)
				}
			}
			for i := range min(len(got), len(tc.want)) {
				tc.want[i].match(t, got[i])
			}
			calls := h.router.taken()
			if !slices.EqualFunc(calls, tc.calls, sameMessage) {
				t.Errorf("router got %+v, want %+v", calls, tc.calls)
			}
		})
	}
	sc.t = t

	t.Run("burst of 1000 messages", func(t *testing.T) {
		sc.t = t
		h.router.script(nil)
		var b strings.Builder
		const n = 1000
		for i := range n {
			fmt.Fprintf(&b, `<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='b%d' type='chat'><body>message %d</body></message>`, i, i)
		}
		sc.send(b.String())
		if got := sc.ping(); len(got) != 0 {
			t.Errorf("unexpected answers: %v", got)
		}
		calls := h.router.taken()
		if len(calls) != n {
			t.Fatalf("router got %d messages, want %d", len(calls), n)
		}
		for i, m := range calls {
			if m.ID != fmt.Sprintf("b%d", i) || m.Body != fmt.Sprintf("message %d", i) {
				t.Fatalf("message %d is %q %q: out of order", i, m.ID, m.Body)
			}
		}
	})
	sc.t = t

	select {
	case <-h.conns:
		t.Error("the component reconnected during the transcripts")
	default:
	}
	if err := h.stop(t); err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
	waitClosed(t, sc, "the server did not see </stream:stream>")
}

func sameMessage(a, b router.Message) bool {
	return a.From.Equal(b.From) && a.To.Equal(b.To) && a.ID == b.ID && a.Body == b.Body && a.WantReceipt == b.WantReceipt
}

func TestSend(t *testing.T) {
	h, sc := connected(t)
	ctx := context.Background()
	number, alice := jid.MustParse(testNumber), jid.MustParse(testAlice)

	if err := h.comp.SendText(ctx, number, alice, "t1", "Reply <from> & phone", time.Time{}); err != nil {
		t.Fatal(err)
	}
	n := sc.next()
	want{name: "message", attr: map[string]string{"from": testNumber, "to": testAlice, "id": "t1", "type": "chat"}, check: func(t *testing.T, n node) {
		if b := n.children(nsAccept, "body"); len(b) != 1 || b[0].Text != "Reply <from> & phone" {
			t.Errorf("body %v", b)
		}
		if len(n.children(nsHints, "store")) != 1 {
			t.Errorf("no store hint in %s", n)
		}
		if d := n.children(nsDelay, "delay"); len(d) != 0 {
			t.Errorf("a message sent at once has a delay: %v", d)
		}
	}}.match(t, n)

	written := time.Date(2026, 11, 27, 9, 30, 15, 250e6, time.FixedZone("", 3600))
	if err := h.comp.SendText(ctx, number, alice, "t2", "waited", written); err != nil {
		t.Fatal(err)
	}
	want{name: "message", attr: map[string]string{"id": "t2"}, check: func(t *testing.T, n node) {
		d := n.children(nsDelay, "delay")
		if len(d) != 1 || d[0].attr("stamp") != "2026-11-27T08:30:15.250Z" || d[0].attr("from") != h.comp.cfg.JID.String() {
			t.Errorf("delay %v, want stamp 2026-11-27T08:30:15.250Z from the component", d)
		}
	}}.match(t, sc.next())

	if err := h.comp.SendReceipt(ctx, number, alice, "m1"); err != nil {
		t.Fatal(err)
	}
	n = sc.next()
	want{name: "message", attr: map[string]string{"from": testNumber, "to": testAlice, "type": "chat"}, check: func(t *testing.T, n node) {
		r := n.children(nsReceipts, "received")
		if len(r) != 1 || r[0].attr("id") != "m1" {
			t.Errorf("receipt %v, want <received id='m1'/>", r)
		}
		if h := n.children(nsHints, "store"); len(h) != 1 {
			t.Errorf("receipt with %d store hints, want one: %s", len(h), n)
		}
		if n.attr("id") == "" || n.attr("id") == "m1" {
			t.Errorf("receipt id %q: want its own id", n.attr("id"))
		}
		if len(n.children(nsAccept, "body")) != 0 {
			t.Errorf("receipt with a body: %s", n)
		}
	}}.match(t, n)

	e := stanza.Error{Type: stanza.Cancel, Condition: stanza.RemoteServerNotFound, Text: map[string]string{"": "The SMS could not be delivered."}}
	if err := h.comp.SendError(ctx, number, alice, "m2", e); err != nil {
		t.Fatal(err)
	}
	msgError(testNumber, testAlice, "m2", "cancel", "remote-server-not-found", "could not be delivered").match(t, sc.next())

	// Sends from other goroutines while stanzas are being handled.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if err := h.comp.SendText(ctx, number, alice, fmt.Sprintf("c%d", i), "x", time.Time{}); err != nil {
				t.Error(err)
			}
		})
	}
	sc.send(`<iq type='get' id='d1' from='alice@example.com/r' to='sms.example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
	wg.Wait()
	got := sc.ping()
	if len(got) != 21 {
		t.Errorf("got %d stanzas, want 20 messages and a disco result", len(got))
	}

	if err := h.stop(t); err != nil {
		t.Fatal(err)
	}
	checkSendsDisconnected(t, h.comp, "after Run", "t2", "late", e)
}

// checkSendsDisconnected checks that SendText, SendReceipt and SendError
// (with id, body and e) all fail with ErrDisconnected; when names the state.
func checkSendsDisconnected(t *testing.T, c *Component, when, id, body string, e stanza.Error) {
	t.Helper()
	ctx := context.Background()
	number, alice := jid.MustParse(testNumber), jid.MustParse(testAlice)
	if err := c.SendText(ctx, number, alice, id, body, time.Time{}); !errors.Is(err, ErrDisconnected) {
		t.Errorf("SendText %s: %v, want ErrDisconnected", when, err)
	}
	if err := c.SendReceipt(ctx, number, alice, id); !errors.Is(err, ErrDisconnected) {
		t.Errorf("SendReceipt %s: %v, want ErrDisconnected", when, err)
	}
	if err := c.SendError(ctx, number, alice, id, e); !errors.Is(err, ErrDisconnected) {
		t.Errorf("SendError %s: %v, want ErrDisconnected", when, err)
	}
}

// TestCallContext: the context handed to mellium ends with the caller's
// while the call runs and never once it has returned, so mellium's
// goroutine cannot interrupt a later write (see callContext).
func TestCallContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	callCtx, release := callContext(ctx)
	cancel()
	select {
	case <-callCtx.Done():
	case <-time.After(waitFor):
		t.Fatal("the call's context did not end with the caller's")
	}
	release()

	// Released, then the caller's context ends (as a handler's does when
	// it returns): the call's must not.
	ctx, cancel = context.WithCancel(context.Background())
	callCtx, release = callContext(ctx)
	release()
	cancel()
	select {
	case <-callCtx.Done():
		t.Fatal("the call's context ended after the call returned")
	case <-time.After(50 * time.Millisecond):
	}
}

func TestSendBeforeConnect(t *testing.T) {
	c := New(Config{JID: jid.MustParse(testDomain), Logger: zerolog.New(zerolog.NewTestWriter(t))}, &fakeRouter{})
	if c.Connected() {
		t.Error("Connected() before Run")
	}
	checkSendsDisconnected(t, c, "before Run", "1", "x", stanza.Error{Condition: stanza.BadRequest})
}

func TestReconnect(t *testing.T) {
	h, sc := connected(t)
	srv := h.srv
	number, alice := jid.MustParse(testNumber), jid.MustParse(testAlice)
	if !h.comp.Connected() {
		t.Fatal("not connected after the first handshake")
	}
	sc.ping()

	// The server drops the connection.
	sc.conn.Close()
	conn := srv.accept()
	// The component is dialling again but has no session.
	if h.comp.Connected() {
		t.Error("Connected() is true while the component is reconnecting")
	}
	if err := h.comp.SendText(context.Background(), number, alice, "r1", "x", time.Time{}); !errors.Is(err, ErrDisconnected) {
		t.Errorf("SendText while reconnecting: %v, want ErrDisconnected", err)
	}
	sc2, err := handshake(t, conn, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	h.onConnect(t)
	if !h.comp.Connected() {
		t.Error("Connected() is false after reconnecting")
	}
	sc2.ping()
	if err := h.comp.SendText(context.Background(), number, alice, "r2", "x", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n := sc2.next(); n.attr("id") != "r2" {
		t.Errorf("got %s, want message r2", n)
	}

	// The server ends the stream politely.
	sc2.send(`</stream:stream>`)
	waitClosed(t, sc2, "the component did not close its stream when the server closed its one")
	sc3 := srv.session()
	h.onConnect(t)
	sc3.ping()

	// A stream error from the server ends the session; the component comes back.
	sc3.send(`<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`)
	sc4 := srv.session()
	h.onConnect(t)
	sc4.ping()

	// An unknown element in the stream namespace is a stream error (RFC 6120
	// 4.9.3.22); mellium ends the session and the component comes back.
	sc4.send(`<stream:features/>`)
	waitClosed(t, sc4, "the component did not end the stream after an unknown stream element")
	sc5 := srv.session()
	h.onConnect(t)
	sc5.ping()
}

// TestHungServer: a server that takes the connection but answers no ping
// (its keepalive while idle, or a Sync) is taken as hung: the component
// ends the session, counts as disconnected, and connects again; one that
// answers keeps it.
func TestHungServer(t *testing.T) {
	srv := newFakeServer(t)
	h := start(t, srv, func(c *Config) {
		c.KeepAlive, c.PingTimeout = 50*time.Millisecond, 200*time.Millisecond
	})
	sc := srv.session()
	h.onConnect(t)
	// sc answers nothing: its keepalive ping times out.
	first := sc.next()
	if first.XMLName.Local != "iq" || first.attr("type") != "get" {
		t.Fatalf("first stanza %s, want the keepalive ping", first)
	}
	select {
	case <-sc.readerEnd: // the component closed the connection
	case <-time.After(waitFor):
		t.Fatal("the component kept a session whose server answered no ping")
	}
	sc2 := srv.session()
	h.onConnect(t)
	// This one answers: still connected after several keepalives.
	go func() {
		for n := range sc2.stanzas {
			if n.XMLName.Local == "iq" && n.attr("type") == "get" {
				_, _ = io.WriteString(sc2.conn, `<iq type='result' id='`+n.attr("id")+`' from='`+n.attr("to")+`' to='`+n.attr("from")+`'/>`)
			}
		}
	}()
	time.Sleep(600 * time.Millisecond)
	if !h.comp.Connected() {
		t.Fatal("disconnected from a server that answers its pings")
	}
	select {
	case <-srv.accepted:
		t.Fatal("connected again to a server that answers its pings")
	default:
	}
}

func TestHandshakeRefused(t *testing.T) {
	srv := newFakeServer(t)
	h := start(t, srv, func(c *Config) { c.Secret = "wrong" })

	for range 2 {
		if _, err := handshake(t, srv.accept(), testSecret); !errors.Is(err, errNotAuthorized) {
			t.Fatalf("handshake with the wrong secret: %v", err)
		}
		if h.comp.Connected() {
			t.Error("Connected() after a refused handshake")
		}
	}
	select {
	case <-h.conns:
		t.Error("OnConnect called after a refused handshake")
	default:
	}
	// The server's secret changes to the component's: the next retry works.
	sc, err := handshake(t, srv.accept(), "wrong")
	if err != nil {
		t.Fatal(err)
	}
	h.onConnect(t)
	sc.ping()
}

// TestNoServer: nothing listens; the component keeps dialling until its
// context ends, then Run returns nil.
func TestNoServer(t *testing.T) {
	srv := newFakeServer(t)
	srv.ln.Close()
	h := start(t, srv, nil)
	if err := h.stop(t); err != nil {
		t.Errorf("Run: %v", err)
	}
	if h.comp.Connected() {
		t.Error("Connected() without a server")
	}
}

// checkRetryIn checks that a line says when the next attempt is as a
// duration with its unit, such as "5ms".
func checkRetryIn(t *testing.T, line map[string]any) {
	t.Helper()
	s, ok := line["retry_in"].(string)
	if !ok {
		t.Errorf("retry_in is %#v, want a duration such as \"5ms\"", line["retry_in"])
		return
	}
	if d, err := time.ParseDuration(s); err != nil || d <= 0 || d > time.Second {
		t.Errorf("retry_in %q: %v, %v", s, d, err)
	}
}

const (
	logConnectFailed = "connecting to the XMPP server failed"
	logRefused       = "the XMPP server refused the component secret"
	logEnded         = "XMPP session ended"
)

// TestConnectLogs: a failed dial, a refused secret and the end of a
// session are told apart in the log, and a refused secret is an error with
// a hint naming each server's setting.
func TestConnectLogs(t *testing.T) {
	t.Run("no server", func(t *testing.T) {
		srv := newFakeServer(t)
		srv.ln.Close()
		logs := testenv.NewLogs(t)
		start(t, srv, func(c *Config) { c.Logger = zerolog.New(logs) })
		line := logs.Next(logConnectFailed, logEnded, logRefused)
		if line["level"] != "warn" || line["server"] != srv.addr() {
			t.Errorf("logged %v", line)
		}
		checkRetryIn(t, line)
	})
	t.Run("refused, then a session", func(t *testing.T) {
		srv := newFakeServer(t)
		logs := testenv.NewLogs(t)
		start(t, srv, func(c *Config) { c.Secret, c.Logger = "wrong", zerolog.New(logs) })
		if _, err := handshake(t, srv.accept(), testSecret); !errors.Is(err, errNotAuthorized) {
			t.Fatalf("handshake with the wrong secret: %v", err)
		}
		line := logs.Next(logRefused, logEnded, logConnectFailed)
		hint, _ := line["hint"].(string)
		if line["level"] != "error" || line["error"] != "component handshake: not-authorized" {
			t.Errorf("logged %v", line)
		}
		for _, want := range []string{"xmpp.secret", "component_secret", `Component "` + testDomain + `"`,
			`ejabberd_service → hosts → "` + testDomain + `": password`, "xmpp.component"} {
			if !strings.Contains(hint, want) {
				t.Errorf("hint %q does not say %q", hint, want)
			}
		}
		checkRetryIn(t, line)

		// The server's secret changes to the component's: it connects,
		// and the end of that session is no refusal.
		sc, err := handshake(t, srv.accept(), "wrong")
		if err != nil {
			t.Fatal(err)
		}
		sc.ping()
		sc.conn.Close()
		line = logs.Next(logEnded, logRefused, logConnectFailed)
		// A connection closed mid-stream (a server shutting down) is said
		// so, not as the XML decoder's "unexpected EOF".
		if line["level"] != "warn" || line["hint"] != nil || line["error"] != "the XMPP server closed the connection" {
			t.Errorf("logged %v", line)
		}
		checkRetryIn(t, line)
	})
}

// TestHandshakeRefusedLogs: a handshake the server refuses for another
// reason than the secret (no such component, a client port, the component
// already connected) is an error in the log, with a hint saying what it
// means, and is retried.
func TestHandshakeRefusedLogs(t *testing.T) {
	for _, tc := range []struct {
		name, streamErr, hint string
	}{
		{"no component", `<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>`,
			`the XMPP server has no component ` + testDomain + ` (add Component "` + testDomain + `"`},
		{"client port", `<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>This server does not serve ` + testDomain + `</text>`,
			"is this a client port rather than the component port?"},
		{"connected already", `<conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>`,
			"another connection already holds the component " + testDomain + " on this server: is another switchboard running with it?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t)
			logs := testenv.NewLogs(t)
			start(t, srv, func(c *Config) { c.Logger = zerolog.New(logs) })
			conn := srv.accept()
			_ = conn.SetDeadline(time.Now().Add(waitFor))
			if _, err := nextStart(xml.NewDecoder(conn)); err != nil {
				t.Fatal(err)
			}
			_, _ = io.WriteString(conn, `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' from='`+
				testDomain+`' id='x'><stream:error>`+tc.streamErr+`</stream:error></stream:stream>`)
			conn.Close()
			line := logs.Next("the XMPP server refused the component", logEnded, logConnectFailed, logRefused)
			if hint, _ := line["hint"].(string); line["level"] != "error" || !strings.Contains(hint, tc.hint) {
				t.Errorf("logged %v; want an error with a hint saying %q", line, tc.hint)
			}
			checkRetryIn(t, line)
			srv.accept().Close() // retried
		})
	}
}

func TestStopClosesStream(t *testing.T) {
	h, sc := connected(t)
	sc.ping()
	if err := h.stop(t); err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
	select {
	case <-sc.closed:
	default:
		t.Error("Run returned before the server saw </stream:stream>")
	}
	if h.comp.Connected() {
		t.Error("Connected() after Run returned")
	}
}

// TestStopSilentServer: a server that never answers </stream:stream> (a dead
// peer, a half-open connection) must not keep Run from returning.
func TestStopSilentServer(t *testing.T) {
	h, sc := connected(t)
	sc.polite.Store(false)
	sc.ping()
	if err := h.stop(t); err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
	waitClosed(t, sc, "the server did not see </stream:stream>")
}

// TestStopWhileRouting: ctx ends while a message is with the router.
func TestStopWhileRouting(t *testing.T) {
	h, sc := connected(t)
	sc.ping()
	entered := make(chan struct{})
	release := make(chan struct{})
	h.router.script(func(router.Message) error {
		close(entered)
		<-release
		return nil
	})
	sc.send(`<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='s1' type='chat'><body>hi</body></message>`)
	select {
	case <-entered:
	case <-time.After(waitFor):
		t.Fatal("the router was not called")
	}
	h.cancel()
	close(release)
	if err := h.stop(t); err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
}

// TestBeforeClose: at shutdown BeforeClose runs while the stream is still
// open: what it sends (the router's errors to senders whose messages could
// not be stored) reaches the server before </stream:stream>, and stanzas
// the server sends meanwhile are still handled.
func TestBeforeClose(t *testing.T) {
	var h *harness
	inClose := make(chan struct{})
	release := make(chan struct{})
	h = start(t, newFakeServer(t), func(c *Config) {
		c.BeforeClose = func(ctx context.Context) {
			close(inClose)
			<-release
			err := h.comp.SendError(ctx, jid.MustParse("+12015550123@"+testDomain), jid.MustParse("alice@example.com/r"), "s1",
				stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
			if err != nil {
				t.Errorf("SendError in BeforeClose: %v", err)
			}
		}
	})
	sc := h.srv.session()
	h.onConnect(t)
	sc.ping()
	h.cancel()
	<-inClose
	sc.send(`<message from='alice@example.com/r' to='+12015550123@sms.example.com' id='s2' type='chat'><body>hi</body></message>`)
	waitUntil(t, "a message sent while BeforeClose ran routed", func() bool { return len(h.router.taken()) == 1 })
	select {
	case <-sc.closed:
		t.Fatal("</stream:stream> before BeforeClose returned")
	default:
	}
	close(release)
	if n := sc.next(); n.XMLName.Local != "message" || n.attr("type") != "error" || n.attr("id") != "s1" {
		t.Errorf("sent in BeforeClose: %+v", n)
	}
	waitClosed(t, sc, "the stream was not closed after BeforeClose")
	if err := h.stop(t); err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
}
