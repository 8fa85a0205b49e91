package smpp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"switchboard/internal/testenv"
)

// ---- fake SMSC: a real listener on loopback, driven by the test ----

type fakeSMSC struct {
	t     testing.TB
	ln    net.Listener
	conns chan net.Conn
	mu    sync.Mutex
	all   []net.Conn
}

func newFakeSMSC(t testing.TB) *fakeSMSC {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSMSC{t: t, ln: ln, conns: make(chan net.Conn, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(f.conns)
				return
			}
			f.mu.Lock()
			f.all = append(f.all, c)
			f.mu.Unlock()
			f.conns <- c
		}
	}()
	t.Cleanup(func() { ln.Close(); f.closeAll() })
	return f
}

func (f *fakeSMSC) addr() string { return f.ln.Addr().String() }

func (f *fakeSMSC) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.all {
		c.Close()
	}
}

// accept waits for the client's next connection.
func (f *fakeSMSC) accept() *peer {
	f.t.Helper()
	select {
	case c, ok := <-f.conns:
		if !ok {
			f.t.Fatal("listener closed")
		}
		return &peer{t: f.t, c: c, r: bufio.NewReader(c)}
	case <-time.After(5 * time.Second):
		f.t.Fatal("no connection from client")
	}
	return nil
}

// acceptBound accepts a connection and answers its bind_transceiver.
func (f *fakeSMSC) acceptBound() *peer {
	f.t.Helper()
	p := f.accept()
	h, _ := p.expect(cmdBindTransceiver)
	p.send(raw(cmdBindTransceiver|respBit, 0, h.Seq, cstr("SMSC")))
	return p
}

type peer struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func (p *peer) readWithin(d time.Duration) (header, []byte, error) {
	p.c.SetReadDeadline(time.Now().Add(d))
	defer p.c.SetReadDeadline(time.Time{})
	return readPDU(p.r)
}

func (p *peer) read() (header, []byte) {
	p.t.Helper()
	h, body, err := p.readWithin(5 * time.Second)
	if err != nil {
		p.t.Fatalf("SMSC read: %v", err)
	}
	return h, body
}

func (p *peer) expect(id uint32) (header, []byte) {
	p.t.Helper()
	h, body := p.read()
	if h.ID != id {
		p.t.Fatalf("SMSC got command_id 0x%08X, want 0x%08X", h.ID, id)
	}
	return h, body
}

// expectBytes reads one PDU and compares it, header included, with want.
func (p *peer) expectBytes(want []byte) {
	p.t.Helper()
	h, body := p.read()
	got := append(appendHeader(nil, h.ID, h.Status, h.Seq), body...)
	binary.BigEndian.PutUint32(got, h.Len)
	if !bytes.Equal(got, want) {
		p.t.Fatalf("SMSC got\n% x\nwant\n% x", got, want)
	}
}

// expectNothing asserts that no PDU arrives within d.
func (p *peer) expectNothing(d time.Duration) {
	p.t.Helper()
	h, _, err := p.readWithin(d)
	if err == nil {
		p.t.Fatalf("SMSC got unexpected PDU 0x%08X seq %d", h.ID, h.Seq)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		p.t.Fatalf("SMSC read: %v", err)
	}
}

// expectClosed asserts that the client closes the connection.
func (p *peer) expectClosed() {
	p.t.Helper()
	for {
		h, _, err := p.readWithin(5 * time.Second)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				p.t.Fatal("client did not close the connection")
			}
			return
		}
		p.t.Logf("SMSC got 0x%08X seq %d before close", h.ID, h.Seq)
	}
}

func (p *peer) send(b []byte) {
	p.t.Helper()
	if _, err := p.c.Write(b); err != nil {
		p.t.Fatalf("SMSC write: %v", err)
	}
}

// serve answers every submit_sm with message_id "m<seq>" and enquire_link
// and unbind, until the connection ends.
func (p *peer) serve() {
	w := bufio.NewWriter(p.c)
	for {
		h, _, err := readPDU(p.r)
		if err != nil {
			return
		}
		switch h.ID {
		case cmdSubmitSM:
			w.Write(raw(cmdSubmitSM|respBit, 0, h.Seq, cstr(fmt.Sprintf("m%d", h.Seq))))
		case cmdEnquireLink, cmdUnbind:
			w.Write(raw(h.ID|respBit, 0, h.Seq))
		}
		if p.r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}

// raw builds a PDU from a header and body parts.
func raw(id, status, seq uint32, body ...[]byte) []byte {
	b := appendHeader(nil, id, status, seq)
	for _, part := range body {
		b = append(b, part...)
	}
	return setLen(b)
}

func cstr(s string) []byte { return append([]byte(s), 0) }

// helloFields are the mandatory fields of hello's submit_sm.
func helloFields() [][]byte {
	return [][]byte{
		{0},                         // service_type
		{5, 0}, cstr("Switchboard"), // source
		{1, 1}, cstr("12015550199"), // destination
		{0, 0, 0}, // esm_class, protocol_id, priority_flag
		{0}, {0},  // schedule_delivery_time, validity_period
		{1, 0, 0, 0},         // registered_delivery, replace_if_present, data_coding, sm_default_msg_id
		{5}, []byte("hello"), // sm_length, short_message
	}
}

func tlv(tag uint16, v []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, tag)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// deliverBody is a deliver_sm body (SMPP 3.4 section 4.6.1).
func deliverBody(src, dst string, esm, dcs byte, sm []byte, tlvs ...[]byte) []byte {
	var b []byte
	b = append(b, 0)    // service_type
	b = append(b, 1, 1) // source TON, NPI
	b = append(b, cstr(src)...)
	b = append(b, 1, 1)
	b = append(b, cstr(dst)...)
	b = append(b, esm, 0, 0)    // esm_class, protocol_id, priority_flag
	b = append(b, 0, 0)         // schedule_delivery_time, validity_period
	b = append(b, 0, 0, dcs, 0) // registered_delivery, replace_if_present, data_coding, sm_default_msg_id
	b = append(b, byte(len(sm)))
	b = append(b, sm...)
	for _, t := range tlvs {
		b = append(b, t...)
	}
	return b
}

// ---- client harness ----

type harness struct {
	c      *Client
	cancel context.CancelFunc
	done   chan error
	states chan bool
}

func startClient(t testing.TB, f *fakeSMSC, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{done: make(chan error, 1), states: make(chan bool, 16)}
	cfg := Config{
		Addr:         f.addr(),
		SystemID:     "sb",
		Password:     "secret",
		RespTimeout:  2 * time.Second,
		ConfirmDelay: time.Hour, // no enquire_link after a message's response, but where a test asks for one
		ReconnectMin: 10 * time.Millisecond,
		ReconnectMax: 50 * time.Millisecond,
		Logger:       zerolog.New(zerolog.NewTestWriter(t)),
		OnState:      func(b bool) { h.states <- b },
	}
	if _, ok := t.(*testing.B); ok {
		cfg.Logger = zerolog.Nop()
	}
	if mod != nil {
		mod(&cfg)
	}
	h.c = NewClient(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		f.closeAll()
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return")
		}
		checkNoSessionGoroutines(t)
	})
	return h
}

func (h *harness) waitBound(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.c.WaitBound(ctx); err != nil {
		t.Fatalf("WaitBound: %v", err)
	}
}

func (h *harness) expectState(t testing.TB, want bool) {
	t.Helper()
	select {
	case got := <-h.states:
		if got != want {
			t.Fatalf("OnState(%v), want OnState(%v)", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no OnState(%v)", want)
	}
}

type submitResult struct {
	id  string
	err error
}

func (h *harness) submitAsync(ctx context.Context, s *Submit) chan submitResult {
	ch := make(chan submitResult, 1)
	go func() {
		id, err := h.c.Submit(ctx, s)
		ch <- submitResult{id, err}
	}()
	return ch
}

func waitResult(t testing.TB, ch chan submitResult) submitResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("Submit did not return")
	}
	return submitResult{}
}

// checkNoSessionGoroutines fails if any goroutine of a session is left.
func checkNoSessionGoroutines(t testing.TB) {
	t.Helper()
	var stacks string
	for range 100 {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "smpp.(*session)") && !strings.Contains(stacks, "smpp.(*Client).Run") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("session goroutines left after Run returned:\n%s", stacks)
}

var hello = &Submit{
	Source:             Address{TON: 5, NPI: 0, Addr: "Switchboard"},
	Dest:               Address{TON: 1, NPI: 1, Addr: "12015550199"},
	RegisteredDelivery: 1,
	ShortMessage:       []byte("hello"),
}

// ---- transcripts ----

func TestBindAndSubmit(t *testing.T) {
	f := newFakeSMSC(t)
	h := startClient(t, f, func(c *Config) { c.SystemType = "SB" })
	p := f.accept()
	// bind_transceiver: system_id, password, system_type, interface_version
	// 0x34, addr_ton, addr_npi, address_range.
	p.expectBytes(raw(cmdBindTransceiver, 0, 1, cstr("sb"), cstr("secret"), cstr("SB"), []byte{0x34, 0, 0, 0}))
	if h.c.Bound() {
		t.Fatal("Bound before bind_resp")
	}
	p.send(raw(cmdBindTransceiver|respBit, 0, 1, cstr("SMSC")))
	h.waitBound(t)
	h.expectState(t, true)

	s := *hello
	s.TLVs = map[uint16][]byte{0x020C: {0, 7}, 0x0204: {0, 1}}
	res := h.submitAsync(context.Background(), &s)
	p.expectBytes(raw(cmdSubmitSM, 0, 2, append(helloFields(),
		tlv(0x0204, []byte{0, 1}), tlv(0x020C, []byte{0, 7}), // TLVs, sorted by tag
	)...))
	if got := h.c.InFlight(); got != 1 {
		t.Errorf("InFlight = %d, want 1", got)
	}
	p.send(raw(cmdSubmitSM|respBit, 0, 2, cstr("abc123")))
	r := waitResult(t, res)
	if r.err != nil || r.id != "abc123" {
		t.Fatalf("Submit = %q, %v; want abc123", r.id, r.err)
	}
	if got := h.c.InFlight(); got != 0 {
		t.Errorf("InFlight = %d, want 0", got)
	}
}

// A deliver_sm whose sequence number equals an in-flight submit_sm's is a
// request: it is dispatched and answered, and the submit_sm stays pending.
func TestDeliverWithSameSeqAsInFlightSubmit(t *testing.T) {
	f := newFakeSMSC(t)
	got := make(chan *Deliver, 1)
	h := startClient(t, f, func(c *Config) {
		c.Handler = HandlerFunc(func(_ context.Context, d *Deliver) Status { got <- d; return StatusOK })
	})
	p := f.acceptBound()
	h.waitBound(t)

	res := h.submitAsync(context.Background(), hello)
	sh, _ := p.expect(cmdSubmitSM)
	udh := []byte{0x05, 0x00, 0x03, 0x2A, 0x02, 0x01}
	sm := append(append([]byte{}, udh...), "hi"...)
	p.send(raw(cmdDeliverSM, 0, sh.Seq, deliverBody("12015550123", "12015550100", 0x40, 0x00, sm, tlv(0x0204, []byte{0, 9}))))
	p.expectBytes(raw(cmdDeliverSM|respBit, 0, sh.Seq, []byte{0}))

	d := <-got
	want := Deliver{
		Command: cmdDeliverSM, Seq: sh.Seq,
		Source: Address{1, 1, "12015550123"}, Dest: Address{1, 1, "12015550100"},
		ESMClass: 0x40, ShortMessage: sm,
		TLVs:    map[uint16][]byte{0x0204: {0, 9}},
		Session: d.Session, // see TestDeliverNamesItsBind
		arrival: d.arrival,
	}
	if fmt.Sprint(*d) != fmt.Sprint(want) {
		t.Errorf("Deliver = %+v\nwant      %+v", *d, want)
	}
	select {
	case r := <-res:
		t.Fatalf("Submit returned %+v on a deliver_sm", r)
	case <-time.After(50 * time.Millisecond):
	}
	p.send(raw(cmdSubmitSM|respBit, 0, sh.Seq, cstr("id-1")))
	if r := waitResult(t, res); r.err != nil || r.id != "id-1" {
		t.Fatalf("Submit = %q, %v; want id-1", r.id, r.err)
	}
}

func TestDataSM(t *testing.T) {
	f := newFakeSMSC(t)
	got := make(chan *Deliver, 1)
	h := startClient(t, f, func(c *Config) {
		c.Handler = HandlerFunc(func(_ context.Context, d *Deliver) Status { got <- d; return StatusRxTAppn })
	})
	p := f.acceptBound()
	h.waitBound(t)

	payload := []byte("id:abc123 sub:001 dlvrd:001 submit date:2611010000 done date:2611010001 stat:DELIVRD err:000 text:")
	body := append([]byte{0, 1, 1}, cstr("12015550199")...)
	body = append(body, 1, 1)
	body = append(body, cstr("Switchboard")...)
	body = append(body, 0x04, 0x00, 0x00) // esm_class (receipt), registered_delivery, data_coding
	body = append(body, tlv(0x001E, cstr("abc123"))...)
	body = append(body, tlv(0x0427, []byte{2})...)
	body = append(body, tlv(0x0424, payload)...)
	p.send(raw(cmdDataSM, 0, 31, body))
	p.expectBytes(raw(cmdDataSM|respBit, uint32(StatusRxTAppn), 31, []byte{0}))

	d := <-got
	if d.Command != cmdDataSM || d.Seq != 31 || d.ESMClass != 0x04 || d.Source.Addr != "12015550199" ||
		d.Dest.Addr != "Switchboard" || !bytes.Equal(d.ShortMessage, payload) ||
		string(d.TLVs[0x001E]) != "abc123\x00" || !bytes.Equal(d.TLVs[0x0427], []byte{2}) {
		t.Errorf("Deliver = %+v", d)
	}
}

func TestEnquireLinkFromSMSC(t *testing.T) {
	f := newFakeSMSC(t)
	h := startClient(t, f, nil)
	p := f.acceptBound()
	h.waitBound(t)
	p.send(raw(cmdEnquireLink, 0, 77))
	p.expectBytes(raw(cmdEnquireLink|respBit, 0, 77))
}

func TestEnquireLinkWhenIdle(t *testing.T) {
	f := newFakeSMSC(t)
	h := startClient(t, f, func(c *Config) {
		c.EnquireLink = 100 * time.Millisecond
		c.RespTimeout = 200 * time.Millisecond
	})
	p := f.acceptBound()
	h.waitBound(t)
	h.expectState(t, true)

	start := time.Now()
	e, _ := p.expect(cmdEnquireLink)
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("enquire_link after %v idle, want about 100ms", d)
	}
	p.send(raw(cmdEnquireLink|respBit, 0, e.Seq))
	// Traffic from the SMSC keeps the link from being idle.
	for i := range 3 {
		time.Sleep(30 * time.Millisecond)
		p.send(raw(cmdEnquireLink, 0, uint32(100+i)))
		p.expectBytes(raw(cmdEnquireLink|respBit, 0, uint32(100+i)))
	}
	// Unanswered: the client drops the connection and reconnects.
	e2, _ := p.expect(cmdEnquireLink)
	if e2.Seq == e.Seq {
		t.Errorf("enquire_link reused seq %d", e.Seq)
	}
	p.expectClosed()
	h.expectState(t, false)
	f.acceptBound()
	h.waitBound(t)
}

func TestUnknownCommandGetsGenericNack(t *testing.T) {
	f := newFakeSMSC(t)
	h := startClient(t, f, nil)
	p := f.acceptBound()
	h.waitBound(t)

	p.send(raw(0x00000050, 0, 9, []byte("junk")))
	p.expectBytes(raw(cmdGenericNack, uint32(StatusInvCmdID), 9))
	p.send(raw(cmdOutbind, 0, 10, cstr("x"), cstr("y")))
	p.expectBytes(raw(cmdGenericNack, uint32(StatusInvCmdID), 10))
	// alert_notification has no response.
	p.send(raw(cmdAlertNotification, 0, 11, []byte{1, 1}, cstr("12015550199"), []byte{1, 1}, cstr("12015550100")))
	p.send(raw(cmdEnquireLink, 0, 12))
	p.expectBytes(raw(cmdEnquireLink|respBit, 0, 12))
	// An unsolicited response is ignored.
	p.send(raw(cmdSubmitSM|respBit, 0, 999, cstr("x")))
	p.send(raw(cmdEnquireLink, 0, 13))
	p.expectBytes(raw(cmdEnquireLink|respBit, 0, 13))
}

func TestWindowBlocks(t *testing.T) {
	f := newFakeSMSC(t)
	h := startClient(t, f, func(c *Config) { c.Window = 2 })
	p := f.acceptBound()
	h.waitBound(t)

	var res [3]chan submitResult
	for i := range res {
		res[i] = h.submitAsync(context.Background(), hello)
	}
	a, _ := p.expect(cmdSubmitSM)
	b, _ := p.expect(cmdSubmitSM)
	p.expectNothing(150 * time.Millisecond)
	if got := h.c.InFlight(); got != 2 {
		t.Fatalf("InFlight = %d, want 2", got)
	}
	// A Submit whose ctx ends while waiting for the window sent nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.c.Submit(ctx, hello); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("Submit with expiring ctx = %v, want context.DeadlineExceeded", err)
	}
	// One whose SendBy passes while waiting sent nothing either.
	late := *hello
	late.SendBy = time.Now().Add(20 * time.Millisecond)
	if _, err := h.c.Submit(context.Background(), &late); !errors.Is(err, ErrNotSentBy) {
		t.Fatalf("Submit past SendBy = %v, want ErrNotSentBy", err)
	}
	p.expectNothing(50 * time.Millisecond)

	p.send(raw(cmdSubmitSM|respBit, 0, a.Seq, cstr("A")))
	c, _ := p.expect(cmdSubmitSM)
	p.send(raw(cmdSubmitSM|respBit, 0, c.Seq, cstr("C")))
	p.send(raw(cmdSubmitSM|respBit, 0, b.Seq, cstr("B")))
	ids := map[string]bool{}
	for _, ch := range res {
		r := waitResult(t, ch)
		if r.err != nil {
			t.Fatal(r.err)
		}
		ids[r.id] = true
	}
	if len(ids) != 3 {
		t.Errorf("ids = %v", ids)
	}
}

func TestRespTimeoutIsUnknownOutcome(t *testing.T) {
	f := newFakeSMSC(t)
	h := startClient(t, f, func(c *Config) { c.RespTimeout = 150 * time.Millisecond })
	p := f.acceptBound()
	h.waitBound(t)

	start := time.Now()
	res := h.submitAsync(context.Background(), hello)
	p.expect(cmdSubmitSM)
	r := waitResult(t, res)
	if !errors.Is(r.err, ErrUnknownOutcome) {
		t.Fatalf("Submit = %v, want ErrUnknownOutcome", r.err)
	}
	if d := time.Since(start); d < 140*time.Millisecond {
		t.Errorf("timed out after %v", d)
	}
	if got := h.c.InFlight(); got != 0 {
		t.Errorf("InFlight = %d after timeout", got)
	}
	// An unanswered request ends the session (the SMSC is hung): the
	// client binds again.
	p = f.acceptBound()
	h.waitBound(t)
	res = h.submitAsync(context.Background(), hello)
	sh2, _ := p.expect(cmdSubmitSM)
	p.send(raw(cmdSubmitSM|respBit, 0, sh2.Seq, cstr("ok")))
	if r := waitResult(t, res); r.err != nil || r.id != "ok" {
		t.Fatalf("Submit = %q, %v", r.id, r.err)
	}

	// ctx ending after the submit_sm was sent: outcome unknown too.
	ctx, cancel := context.WithCancel(context.Background())
	res = h.submitAsync(ctx, hello)
	p.expect(cmdSubmitSM)
	cancel()
	if r := waitResult(t, res); !errors.Is(r.err, ErrUnknownOutcome) || errors.Is(r.err, context.Canceled) {
		t.Fatalf("Submit = %v, want only ErrUnknownOutcome", r.err)
	}
}

func TestConnectionDropFailsInFlightAndReconnects(t *testing.T) {
	f := newFakeSMSC(t)
	h := startClient(t, f, func(c *Config) { c.RespTimeout = 10 * time.Second })
	p := f.acceptBound()
	h.waitBound(t)
	h.expectState(t, true)

	res1 := h.submitAsync(context.Background(), hello)
	res2 := h.submitAsync(context.Background(), hello)
	p.expect(cmdSubmitSM)
	p.expect(cmdSubmitSM)
	start := time.Now()
	p.c.Close()
	for _, ch := range []chan submitResult{res1, res2} {
		if r := waitResult(t, ch); !errors.Is(r.err, ErrUnknownOutcome) {
			t.Fatalf("Submit = %v, want ErrUnknownOutcome", r.err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("in-flight Submit failed after %v; want at once", d)
	}
	h.expectState(t, false)
	if got := h.c.InFlight(); got != 0 {
		t.Errorf("InFlight = %d", got)
	}

	p = f.acceptBound()
	h.waitBound(t)
	h.expectState(t, true)
	res := h.submitAsync(context.Background(), hello)
	sh, _ := p.expect(cmdSubmitSM)
	if sh.Seq != 2 {
		t.Errorf("first submit_sm of the new session has seq %d, want 2", sh.Seq)
	}
	p.send(raw(cmdSubmitSM|respBit, 0, sh.Seq, cstr("again")))
	if r := waitResult(t, res); r.err != nil || r.id != "again" {
		t.Fatalf("Submit = %q, %v", r.id, r.err)
	}
}

// TestDeliverNamesItsBind: a deliver_sm the SMSC sends again on a new bind
// (it never got the response) comes with another Session than the first;
// Live says a session is up until its connection is lost.
func TestDeliverNamesItsBind(t *testing.T) {
	f := newFakeSMSC(t)
	got := make(chan *Deliver, 2)
	h := startClient(t, f, func(c *Config) {
		c.Handler = HandlerFunc(func(_ context.Context, d *Deliver) Status { got <- d; return StatusOK })
	})
	body := deliverBody("12015550123", "12015550100", 0, 0, []byte("hi"))
	var sessions []uint64
	for range 2 {
		p := f.acceptBound()
		h.waitBound(t)
		h.expectState(t, true)
		p.send(raw(cmdDeliverSM, 0, 7, body))
		p.expectBytes(raw(cmdDeliverSM|respBit, 0, 7, []byte{0}))
		n := (<-got).Session
		sessions = append(sessions, n)
		if !Live(n) {
			t.Errorf("session %d not live while bound", n)
		}
		p.c.Close()
		h.expectState(t, false)
		if Live(n) {
			t.Errorf("session %d still live after its connection was lost", n)
		}
	}
	if sessions[0] == 0 || sessions[0] == sessions[1] {
		t.Fatalf("sessions of the two binds: %v; want two different, non-zero", sessions)
	}
}

// TestResponsesKnownRead: after an OK response to a message from a phone
// the session makes sure the SMSC read it, by an enquire_link unless a
// submit_sm's answer shows it first. A bind lost after that leaves the
// message's response read (the same text on another bind is sent again,
// not resent); one lost before, unread (a resend), and only from the
// stretch of responses not known read.
func TestResponsesKnownRead(t *testing.T) {
	f := newFakeSMSC(t)
	got := make(chan *Deliver, 4)
	h := startClient(t, f, func(c *Config) {
		c.ConfirmDelay = 20 * time.Millisecond
		c.Handler = HandlerFunc(func(_ context.Context, d *Deliver) Status { got <- d; return StatusOK })
	})
	deliver := func(p *peer, seq uint32, text string) *Deliver {
		t.Helper()
		p.send(raw(cmdDeliverSM, 0, seq, deliverBody("12015550123", "12015550100", 0, 0, []byte(text))))
		p.expectBytes(raw(cmdDeliverSM|respBit, 0, seq, []byte{0}))
		return <-got
	}
	lose := func(p *peer) {
		t.Helper()
		p.c.Close()
		h.expectState(t, false)
	}

	// Answered enquire_link: read.
	p := f.acceptBound()
	h.waitBound(t)
	h.expectState(t, true)
	d := deliver(p, 7, "Yes")
	e, _ := p.expect(cmdEnquireLink)
	p.send(raw(cmdEnquireLink|respBit, 0, e.Seq))
	// A second message: its stretch is a later one, read too.
	d2 := deliver(p, 8, "Yes")
	if d2.Stretch <= d.Stretch {
		t.Errorf("stretches %d then %d; want a later one after the answer", d.Stretch, d2.Stretch)
	}
	e, _ = p.expect(cmdEnquireLink)
	p.send(raw(cmdEnquireLink|respBit, 0, e.Seq))
	p.expectNothing(100 * time.Millisecond) // known read: no more enquire_link
	lose(p)
	if ResponseMayBeUnread(d.Session, d.Stretch) || ResponseMayBeUnread(d2.Session, d2.Stretch) {
		t.Error("responses the SMSC answered an enquire_link after taken as possibly unread")
	}

	// A submit_sm answered after the response shows it read as well.
	p = f.acceptBound()
	h.waitBound(t)
	h.expectState(t, true)
	d = deliver(p, 9, "OK")
	res := h.submitAsync(context.Background(), hello)
	sh, _ := p.expect(cmdSubmitSM)
	p.send(raw(cmdSubmitSM|respBit, 0, sh.Seq, cstr("x1")))
	waitResult(t, res)
	p.expectNothing(100 * time.Millisecond)
	lose(p)
	if ResponseMayBeUnread(d.Session, d.Stretch) {
		t.Error("a response the SMSC answered a later submit_sm after taken as possibly unread")
	}

	// Lost before the enquire_link is answered: unread, from that stretch
	// on; an earlier stretch of the same bind stays read.
	p = f.acceptBound()
	h.waitBound(t)
	h.expectState(t, true)
	read := deliver(p, 10, "first")
	e, _ = p.expect(cmdEnquireLink)
	p.send(raw(cmdEnquireLink|respBit, 0, e.Seq))
	d = deliver(p, 11, "Yes")
	p.expect(cmdEnquireLink) // not answered
	lose(p)
	if !ResponseMayBeUnread(d.Session, d.Stretch) {
		t.Error("a response never shown read taken as read after the bind was lost")
	}
	if ResponseMayBeUnread(read.Session, read.Stretch) {
		t.Error("a response of an earlier stretch, shown read, taken as possibly unread")
	}
	if !Live(d.Session) && ResponseMayBeUnread(d.Session+100, 0) {
		t.Error("a session never seen taken as ended with responses unread")
	}
}

func TestSubmitStatusErrors(t *testing.T) {
	f := newFakeSMSC(t)
	h := startClient(t, f, nil)
	p := f.acceptBound()
	h.waitBound(t)

	res := h.submitAsync(context.Background(), hello)
	sh, _ := p.expect(cmdSubmitSM)
	p.send(raw(cmdSubmitSM|respBit, uint32(StatusThrottled), sh.Seq)) // error responses may have no body
	r := waitResult(t, res)
	var st Status
	if !errors.As(r.err, &st) || st != StatusThrottled || !st.Temporary() {
		t.Fatalf("Submit = %v, want StatusThrottled", r.err)
	}
	if got, want := r.err.Error(), "smpp: ESME_RTHROTTLED (0x00000058)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}

	res = h.submitAsync(context.Background(), hello)
	sh, _ = p.expect(cmdSubmitSM)
	p.send(raw(cmdGenericNack, uint32(StatusInvCmdLen), sh.Seq))
	if r := waitResult(t, res); r.err != StatusInvCmdLen {
		t.Fatalf("Submit after generic_nack = %v", r.err)
	}

	// Invalid input: nothing is sent, nothing held.
	long := *hello
	long.ShortMessage = make([]byte, 255)
	if _, err := h.c.Submit(context.Background(), &long); err == nil || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("Submit of 255 bytes = %v, want a validation error", err)
	}
	p.expectNothing(50 * time.Millisecond)
	if got := h.c.InFlight(); got != 0 {
		t.Errorf("InFlight = %d", got)
	}
}

func TestStatus(t *testing.T) {
	for _, tc := range []struct {
		s    Status
		text string
		temp bool
	}{
		{StatusThrottled, "smpp: ESME_RTHROTTLED (0x00000058)", true},
		{StatusMsgQFul, "smpp: ESME_RMSGQFUL (0x00000014)", true},
		{StatusSysErr, "smpp: ESME_RSYSERR (0x00000008)", true},
		{StatusRxTAppn, "smpp: ESME_RX_T_APPN (0x00000064)", true},
		{StatusSubmitFail, "smpp: ESME_RSUBMITFAIL (0x00000045)", false},
		{StatusInvDstAdr, "smpp: ESME_RINVDSTADR (0x0000000B)", false},
		{StatusInvPaswd, "smpp: ESME_RINVPASWD (0x0000000E)", false},
		{StatusDeliveryFailure, "smpp: ESME_RDELIVERYFAILURE (0x000000FE)", false},
		{StatusInvDCS, "smpp: ESME_RINVDCS (0x00000104)", false},
		{Status(0x400), "smpp: command_status (0x00000400)", false},
	} {
		if got := tc.s.Error(); got != tc.text {
			t.Errorf("Error() = %q, want %q", got, tc.text)
		}
		if got := tc.s.Temporary(); got != tc.temp {
			t.Errorf("%v.Temporary() = %v", tc.s, got)
		}
	}
}

func TestUnbindOnCancel(t *testing.T) {
	f := newFakeSMSC(t)
	h := startClient(t, f, nil)
	p := f.acceptBound()
	h.waitBound(t)
	h.expectState(t, true)

	h.cancel()
	u, _ := p.expect(cmdUnbind)
	h.expectState(t, false)
	p.send(raw(cmdUnbind|respBit, 0, u.Seq))
	select {
	case err := <-h.done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
		h.done <- nil // for Cleanup
	case <-time.After(time.Second):
		t.Fatal("Run did not return after unbind_resp")
	}
	p.expectClosed()
	if _, err := h.c.Submit(context.Background(), hello); err != ErrClosed {
		t.Errorf("Submit after Run = %v, want ErrClosed", err)
	}
	if err := h.c.WaitBound(context.Background()); err != ErrClosed {
		t.Errorf("WaitBound after Run = %v, want ErrClosed", err)
	}
}

func TestUnbindFromSMSC(t *testing.T) {
	f := newFakeSMSC(t)
	h := startClient(t, f, nil)
	p := f.acceptBound()
	h.waitBound(t)
	h.expectState(t, true)

	p.send(raw(cmdUnbind, 0, 5))
	p.expectBytes(raw(cmdUnbind|respBit, 0, 5))
	p.expectClosed()
	h.expectState(t, false)
	f.acceptBound()
	h.expectState(t, true)
}

// TestUnbindFromSMSCInFlight: an SMSC that unbinds with submits in flight
// gets its unbind_resp once it has answered them (and the message from a
// phone being handled has its answer), and nothing new meanwhile: the
// submits end with their message ids, not with an unknown outcome that
// would send them twice.
func TestUnbindFromSMSCInFlight(t *testing.T) {
	f := newFakeSMSC(t)
	release := make(chan struct{})
	h := startClient(t, f, func(c *Config) {
		c.Handler = HandlerFunc(func(context.Context, *Deliver) Status { <-release; return StatusOK })
	})
	p := f.acceptBound()
	h.waitBound(t)
	h.expectState(t, true)

	a, b := h.submitAsync(context.Background(), hello), h.submitAsync(context.Background(), hello)
	sa, _ := p.expect(cmdSubmitSM)
	sb, _ := p.expect(cmdSubmitSM)
	p.send(raw(cmdDeliverSM, 0, 40, deliverBody("12015550123", "12015550100", 0, 0, []byte("on its way"))))
	p.send(raw(cmdUnbind, 0, 5))
	h.expectState(t, false) // nothing more is submitted on it
	if _, err := h.c.Submit(context.Background(), hello); !errors.Is(err, ErrNotBound) {
		t.Errorf("Submit while the SMSC's unbind waits = %v, want ErrNotBound", err)
	}
	p.expectNothing(100 * time.Millisecond)
	p.send(raw(cmdSubmitSM|respBit, 0, sa.Seq, cstr("id-a")))
	p.send(raw(cmdSubmitSM|respBit, 0, sb.Seq, cstr("id-b")))
	for _, r := range []submitResult{waitResult(t, a), waitResult(t, b)} {
		if r.err != nil || !strings.HasPrefix(r.id, "id-") {
			t.Errorf("Submit in flight at the SMSC's unbind = %q, %v; want its id", r.id, r.err)
		}
	}
	p.expectNothing(100 * time.Millisecond) // the message from the phone is still handled
	close(release)
	p.expectBytes(raw(cmdDeliverSM|respBit, 0, 40, []byte{0}))
	p.expectBytes(raw(cmdUnbind|respBit, 0, 5))
	p.expectClosed()
	f.acceptBound()
	h.expectState(t, true)
}

// TestRespTimeoutSparesTheWindow: one request left unanswered ends the
// session, but only after the others in flight have their answers: a
// carrier losing one answer does not make every message of the window go
// twice. Nothing new is sent meanwhile.
func TestRespTimeoutSparesTheWindow(t *testing.T) {
	f := newFakeSMSC(t)
	h := startClient(t, f, func(c *Config) { c.RespTimeout = 300 * time.Millisecond })
	p := f.acceptBound()
	h.waitBound(t)
	h.expectState(t, true)

	lost := h.submitAsync(context.Background(), hello)
	p.expect(cmdSubmitSM)
	time.Sleep(200 * time.Millisecond)
	late := h.submitAsync(context.Background(), hello)
	sl, _ := p.expect(cmdSubmitSM)
	if r := waitResult(t, lost); !errors.Is(r.err, ErrUnknownOutcome) {
		t.Fatalf("unanswered Submit = %v, want ErrUnknownOutcome", r.err)
	}
	h.expectState(t, false)
	p.expectNothing(50 * time.Millisecond)
	p.send(raw(cmdSubmitSM|respBit, 0, sl.Seq, cstr("late")))
	if r := waitResult(t, late); r.err != nil || r.id != "late" {
		t.Fatalf("Submit answered after another timed out = %q, %v; want its id", r.id, r.err)
	}
	p.expectClosed()
	f.acceptBound()
	h.expectState(t, true)
}

// The handler's status is sent, and only after the handler returns; a slow
// handler does not hold up submit_sm_resp.
func TestHandlerStatusSentAfterReturn(t *testing.T) {
	f := newFakeSMSC(t)
	release := make(chan Status)
	entered := make(chan struct{})
	h := startClient(t, f, func(c *Config) {
		c.Handler = HandlerFunc(func(ctx context.Context, d *Deliver) Status {
			close(entered)
			return <-release
		})
	})
	p := f.acceptBound()
	h.waitBound(t)

	p.send(raw(cmdDeliverSM, 0, 40, deliverBody("12015550123", "12015550100", 0, 0, []byte("store me"))))
	<-entered
	res := h.submitAsync(context.Background(), hello)
	sh, _ := p.expect(cmdSubmitSM)
	p.send(raw(cmdSubmitSM|respBit, 0, sh.Seq, cstr("x1")))
	if r := waitResult(t, res); r.err != nil {
		t.Fatal(r.err)
	}
	p.expectNothing(100 * time.Millisecond)
	release <- StatusRxTAppn
	p.expectBytes(raw(cmdDeliverSM|respBit, uint32(StatusRxTAppn), 40, []byte{0}))
}

func TestMalformedDeliverSM(t *testing.T) {
	f := newFakeSMSC(t)
	called := atomic.Bool{}
	h := startClient(t, f, func(c *Config) {
		c.Handler = HandlerFunc(func(context.Context, *Deliver) Status { called.Store(true); return StatusOK })
	})
	p := f.acceptBound()
	h.waitBound(t)

	body := deliverBody("12015550123", "12015550100", 0, 0, []byte("hello"))
	p.send(raw(cmdDeliverSM, 0, 8, body[:len(body)-3])) // sm_length says 5, 2 bytes follow
	p.expectBytes(raw(cmdDeliverSM|respBit, uint32(StatusInvCmdLen), 8, []byte{0}))
	p.send(raw(cmdDeliverSM, 0, 9, body[:10])) // cut inside source_addr
	p.expectBytes(raw(cmdDeliverSM|respBit, uint32(StatusInvCmdLen), 9, []byte{0}))
	// The mandatory fields are whole, the optional parameters are not: a
	// TLV whose length runs past the end of the PDU.
	badTLV := append(tlv(0x0204, []byte{0, 1}), 0x04, 0x24, 0, 10, 'h', 'i')
	p.send(raw(cmdDeliverSM, 0, 10, body, badTLV))
	p.expectBytes(raw(cmdDeliverSM|respBit, uint32(StatusInvOptParStream), 10, []byte{0}))
	dataSM := append([]byte{0, 1, 1}, cstr("12015550123")...)
	dataSM = append(append(dataSM, 1, 1), cstr("12015550100")...)
	dataSM = append(dataSM, 0, 0, 0) // esm_class, registered_delivery, data_coding
	p.send(raw(cmdDataSM, 0, 11, dataSM, badTLV))
	p.expectBytes(raw(cmdDataSM|respBit, uint32(StatusInvOptParStream), 11, []byte{0}))
	p.send(raw(cmdDataSM, 0, 12, dataSM[:len(dataSM)-2])) // data_coding missing
	p.expectBytes(raw(cmdDataSM|respBit, uint32(StatusInvCmdLen), 12, []byte{0}))
	if called.Load() {
		t.Error("handler called for a malformed PDU")
	}
}

func TestInvalidCommandLength(t *testing.T) {
	for _, length := range []uint32{0, 8, 15, maxPDULen + 1, 0x7FFFFFFF, 0xFFFFFFFF} {
		t.Run(fmt.Sprint(length), func(t *testing.T) {
			f := newFakeSMSC(t)
			h := startClient(t, f, nil)
			p := f.acceptBound()
			h.waitBound(t)

			b := appendHeader(nil, cmdDeliverSM, 0, 21)
			binary.BigEndian.PutUint32(b, length)
			p.send(b)
			p.expectBytes(raw(cmdGenericNack, uint32(StatusInvCmdLen), 21))
			p.expectClosed()
			f.acceptBound()
			h.waitBound(t)
		})
	}
}

func TestBindRejectedIsRetried(t *testing.T) {
	f := newFakeSMSC(t)
	h := startClient(t, f, nil)
	p := f.accept()
	b, _ := p.expect(cmdBindTransceiver)
	p.send(raw(cmdBindTransceiver|respBit, uint32(StatusInvPaswd), b.Seq))
	p.expectClosed()
	if h.c.Bound() {
		t.Fatal("bound after ESME_RINVPASWD")
	}
	f.acceptBound()
	h.waitBound(t)
}

// TestConnectLogs: a connection or bind that fails is not logged as a
// session that ended.
func TestConnectLogs(t *testing.T) {
	const failed, ended = "connecting to the SMSC failed", "smpp session ended"
	f := newFakeSMSC(t)
	logs := testenv.NewLogs(t)
	startClient(t, f, func(c *Config) { c.Logger = zerolog.New(logs) })

	p := f.accept()
	b, _ := p.expect(cmdBindTransceiver)
	p.send(raw(cmdBindTransceiver|respBit, uint32(StatusInvPaswd), b.Seq))
	if line := logs.Next(failed, ended); line["level"] != "error" {
		t.Errorf("bind refused: logged %v, want error %q", line, failed)
	}
	p = f.acceptBound()
	p.c.Close()
	if line := logs.Next(ended, failed); line["level"] != "warn" {
		t.Errorf("session dropped: logged %v, want warn %q", line, ended)
	}
	f.accept().c.Close() // before the bind
	if line := logs.Next(failed, ended); line["level"] != "warn" {
		t.Errorf("connection closed before the bind: logged %v, want warn %q", line, failed)
	}
}

func TestNotBound(t *testing.T) {
	c := NewClient(Config{Addr: "127.0.0.1:1", SystemID: "sb"})
	if _, err := c.Submit(context.Background(), hello); err != ErrNotBound {
		t.Fatalf("Submit = %v, want ErrNotBound", err)
	}
	if c.InFlight() != 0 {
		t.Fatal("InFlight != 0")
	}
	if err := NewClient(Config{}).Run(context.Background()); err == nil {
		t.Fatal("Run with empty Config succeeded")
	}
}

func TestSequenceWraps(t *testing.T) {
	f := newFakeSMSC(t)
	h := startClient(t, f, nil)
	p := f.acceptBound()
	h.waitBound(t)
	go p.serve()

	s, err := h.c.session()
	if err != nil {
		t.Fatal(err)
	}
	s.pmu.Lock()
	s.seq = maxSeq - 1
	s.pmu.Unlock()
	for _, want := range []string{"m2147483647", "m1", "m2"} {
		id, err := h.c.Submit(context.Background(), hello)
		if err != nil || id != want {
			t.Fatalf("Submit = %q, %v; want %q", id, err, want)
		}
	}
}

func TestThroughput(t *testing.T) {
	f := newFakeSMSC(t)
	h := startClient(t, f, func(c *Config) { c.Throughput = 50 })
	p := f.acceptBound()
	h.waitBound(t)
	go p.serve()

	start := time.Now()
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if _, err := h.c.Submit(context.Background(), hello); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("6 submits at 50/s took %v, want >= 100ms", d)
	}
}

// Under a throughput limit, a submit that the limit would hold past its
// SendBy is not sent.
func TestSendByThroughput(t *testing.T) {
	f := newFakeSMSC(t)
	h := startClient(t, f, func(c *Config) { c.Throughput = 0.1 }) // one per 10 s
	p := f.acceptBound()
	h.waitBound(t)
	go p.serve()
	if _, err := h.c.Submit(context.Background(), hello); err != nil {
		t.Fatal(err)
	}
	late := *hello
	late.SendBy = time.Now().Add(time.Second)
	if _, err := h.c.Submit(context.Background(), &late); !errors.Is(err, ErrNotSentBy) {
		t.Errorf("Submit held past SendBy by the limit = %v, want ErrNotSentBy", err)
	}
}

// BenchmarkSubmit measures submit_sm/submit_sm_resp round trips over
// loopback with a window of 100.
func BenchmarkSubmit(b *testing.B) {
	f := newFakeSMSC(b)
	h := startClient(b, f, func(c *Config) { c.Window = 100 })
	p := f.acceptBound()
	h.waitBound(b)
	go p.serve()

	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range 200 {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := h.c.Submit(context.Background(), hello); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
}

// When every worker is busy and the queue is full, an inbound PDU is
// answered ESME_RX_T_APPN at once rather than stalling the read loop.
func TestDispatchQueueFull(t *testing.T) {
	f := newFakeSMSC(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 100)
	h := startClient(t, f, func(c *Config) {
		c.DispatchWorkers = 1
		c.Handler = HandlerFunc(func(ctx context.Context, d *Deliver) Status {
			entered <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return StatusOK
		})
	})
	p := f.acceptBound()
	h.waitBound(t)

	body := deliverBody("12015550123", "12015550100", 0, 0, []byte("x"))
	p.send(raw(cmdDeliverSM, 0, 1, body))
	<-entered
	for seq := uint32(2); seq <= 9; seq++ { // fills the queue of 8
		p.send(raw(cmdDeliverSM, 0, seq, body))
	}
	p.send(raw(cmdDeliverSM, 0, 10, body))
	p.expectBytes(raw(cmdDeliverSM|respBit, uint32(StatusRxTAppn), 10, []byte{0}))
	close(release)
	for seq := uint32(1); seq <= 9; seq++ {
		p.expectBytes(raw(cmdDeliverSM|respBit, 0, seq, []byte{0}))
	}
}

// TestSubmitBodyReused: encodeSubmitSM reuses bodies; nothing of one
// submit_sm stays in the next one's bytes.
func TestSubmitBodyReused(t *testing.T) {
	long := &Submit{
		Source: Address{TON: 1, NPI: 1, Addr: "12015550100"}, Dest: Address{TON: 1, NPI: 1, Addr: "447700900123"},
		ESMClass: 0x40, ProtocolID: 1, PriorityFlag: 2, ValidityPeriod: "000001000000000R",
		RegisteredDelivery: 1, DataCoding: 8, ShortMessage: bytes.Repeat([]byte{0, 'x'}, 60),
	}
	wantHello := raw(cmdSubmitSM, 0, 7, helloFields()...)
	var firstLong []byte
	for i := range 4 {
		l, err := encodeSubmitSM(9, long)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			firstLong = l
		} else if !bytes.Equal(l, firstLong) {
			t.Fatalf("round %d: long submit_sm\n%x\nfirst\n%x", i, l, firstLong)
		}
		h, err := encodeSubmitSM(7, hello)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(h, wantHello) {
			t.Fatalf("round %d: submit_sm after a longer one\n%x\nwant\n%x", i, h, wantHello)
		}
	}
}

// OnResponse reports the time a submit_sm waited for its response, for any
// status, and nothing for one left unanswered.
func TestOnResponse(t *testing.T) {
	f := newFakeSMSC(t)
	got := make(chan time.Duration, 8)
	h := startClient(t, f, func(c *Config) {
		c.RespTimeout = 300 * time.Millisecond
		c.OnResponse = func(d time.Duration) { got <- d }
	})
	p := f.acceptBound()
	h.waitBound(t)

	res := h.submitAsync(context.Background(), hello)
	sh, _ := p.expect(cmdSubmitSM)
	time.Sleep(40 * time.Millisecond)
	p.send(raw(cmdSubmitSM|respBit, 0, sh.Seq, cstr("a1")))
	if r := waitResult(t, res); r.err != nil {
		t.Fatal(r.err)
	}
	select {
	case d := <-got:
		if d < 40*time.Millisecond || d > time.Minute {
			t.Errorf("OnResponse(%v) for a response held 40ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no OnResponse for an answered submit_sm")
	}

	res = h.submitAsync(context.Background(), hello)
	sh, _ = p.expect(cmdSubmitSM)
	p.send(raw(cmdSubmitSM|respBit, uint32(StatusThrottled), sh.Seq))
	waitResult(t, res)
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no OnResponse for an error response")
	}

	res = h.submitAsync(context.Background(), hello)
	p.expect(cmdSubmitSM)
	if r := waitResult(t, res); !errors.Is(r.err, ErrUnknownOutcome) {
		t.Fatalf("Submit = %v, want ErrUnknownOutcome", r.err)
	}
	select {
	case d := <-got:
		t.Errorf("OnResponse(%v) for a submit_sm never answered", d)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestDeliverOrderPerPair: a burst of messages from several phones,
// interleaved, is handled concurrently across phones and in order for each
// one, whatever each handling takes.
func TestDeliverOrderPerPair(t *testing.T) {
	const phones, each = 4, 30
	f := newFakeSMSC(t)
	var (
		mu      sync.Mutex
		got     = make(map[string][]int)
		running atomic.Int32
		most    atomic.Int32
	)
	h := startClient(t, f, func(c *Config) {
		c.DispatchWorkers = 16
		c.Handler = HandlerFunc(func(_ context.Context, d *Deliver) Status {
			n := running.Add(1)
			defer running.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			var i int
			fmt.Sscan(string(d.ShortMessage), &i)
			// Later messages are handled faster: a pool without order
			// would finish them first.
			time.Sleep(time.Duration(each-i) * 100 * time.Microsecond)
			mu.Lock()
			got[d.Source.Addr] = append(got[d.Source.Addr], i)
			mu.Unlock()
			return StatusOK
		})
	})
	p := f.acceptBound()
	h.waitBound(t)

	var burst []byte
	seq := uint32(0)
	for i := range each {
		for ph := range phones {
			seq++
			burst = append(burst, raw(cmdDeliverSM, 0, seq, deliverBody(fmt.Sprintf("1201555010%d", ph), "12015550100", 0, 0, []byte(fmt.Sprint(i))))...)
		}
	}
	p.send(burst)
	for range seq {
		if rh, _ := p.expect(cmdDeliverSM | respBit); rh.Status != 0 {
			t.Fatalf("deliver_sm %d answered %#x", rh.Seq, rh.Status)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for ph := range phones {
		src := fmt.Sprintf("1201555010%d", ph)
		if len(got[src]) != each {
			t.Fatalf("%s: %d messages handled, want %d", src, len(got[src]), each)
		}
		for i, n := range got[src] {
			if n != i {
				t.Fatalf("%s: handled in the order %v", src, got[src])
			}
		}
	}
	if most.Load() < 2 {
		t.Errorf("at most %d handled at once; phones should not wait for each other", most.Load())
	}
}

// TestDecodeMessageID: submit_sm_resp's message_id is read whether or not
// the SMSC ends it with its NUL (some leave it off, or pad it).
func TestDecodeMessageID(t *testing.T) {
	for _, tc := range []struct {
		body []byte
		want string
	}{
		{cstr("abc123"), "abc123"},
		{[]byte("abc123"), "abc123"},           // no terminating NUL
		{[]byte("abc123  "), "abc123"},         // padded, unterminated
		{[]byte("abc123\x00\x00"), "abc123"},   // NULs after the field
		{[]byte(" 0A1B \x00"), "0A1B"},         // padded, terminated
		{append(cstr("x9"), 0, 1, 0, 1), "x9"}, // what follows the NUL (TLVs) is no part of it
		{nil, ""},                              // an error response may have no body
		{[]byte{0}, ""},
		{[]byte("  "), ""},
	} {
		if got := decodeMessageID(tc.body); got != tc.want {
			t.Errorf("decodeMessageID(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// TestSubmitUnterminatedMessageID: an SMSC that leaves the NUL off the
// message_id still gives Submit its id.
func TestSubmitUnterminatedMessageID(t *testing.T) {
	f := newFakeSMSC(t)
	h := startClient(t, f, nil)
	p := f.acceptBound()
	h.waitBound(t)

	res := h.submitAsync(context.Background(), hello)
	sh, _ := p.expect(cmdSubmitSM)
	p.send(raw(cmdSubmitSM|respBit, 0, sh.Seq, []byte("5F00A1")))
	if r := waitResult(t, res); r.err != nil || r.id != "5F00A1" {
		t.Fatalf("Submit = %q, %v; want 5F00A1", r.id, r.err)
	}
}

// TestReconnectBackoffAfterShortSessions: an SMSC that accepts the bind
// and drops it at once is not bound again at the shortest wait each time:
// the backoff keeps doubling up to ReconnectMax, and goes back to
// ReconnectMin only after a session that stayed up ReconnectMax.
func TestReconnectBackoffAfterShortSessions(t *testing.T) {
	// maxWait leaves a dropped session most of a second to be dropped
	// in, on a loaded machine, before it would count as one that stayed up.
	const minWait, maxWait = 10 * time.Millisecond, time.Second
	const ended = "smpp session ended"
	f := newFakeSMSC(t)
	logs := testenv.NewLogs(t)
	h := startClient(t, f, func(c *Config) {
		c.ReconnectMin, c.ReconnectMax = minWait, maxWait
		c.Logger = zerolog.New(logs)
	})
	retryIn := func() time.Duration {
		t.Helper()
		line := logs.Next(ended)
		s, _ := line["retry_in"].(string)
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("retry_in %q: %v", s, err)
		}
		return d
	}
	within := func(d, backoff time.Duration) bool {
		// jitter waits in [backoff/2, backoff], logged rounded to 1ms.
		return d >= backoff/2-time.Millisecond && d <= backoff+time.Millisecond
	}
	for _, backoff := range []time.Duration{minWait, 2 * minWait, 4 * minWait, 8 * minWait, 16 * minWait, 32 * minWait, 64 * minWait, maxWait, maxWait} {
		p := f.acceptBound()
		h.expectState(t, true)
		p.send(raw(cmdUnbind, 0, 1))
		p.expect(cmdUnbind | respBit)
		h.expectState(t, false)
		if d := retryIn(); !within(d, backoff) {
			t.Fatalf("after a session that was dropped at once: retry in %v, want [%v, %v]", d, backoff/2, backoff)
		}
	}
	// A session that stayed up ReconnectMax resets the backoff.
	p := f.acceptBound()
	h.expectState(t, true)
	time.Sleep(maxWait + 20*time.Millisecond)
	p.c.Close()
	h.expectState(t, false)
	if d := retryIn(); !within(d, minWait) {
		t.Fatalf("after a session that stayed up %v: retry in %v, want [%v, %v]", maxWait, d, minWait/2, minWait)
	}
	f.acceptBound()
	h.expectState(t, true)
}

// TestInvalidBindStatusEndsSession: ESME_RINVBNDSTS in any response means
// the SMSC no longer has our bind (it lost it but kept the connection): the
// session ends and the client binds again. A submit_sm so answered returns
// the status to its caller.
func TestInvalidBindStatusEndsSession(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(seq uint32) []byte
	}{
		{"submit_sm_resp", func(seq uint32) []byte { return raw(cmdSubmitSM|respBit, uint32(StatusInvBnd), seq) }},
		{"generic_nack", func(seq uint32) []byte { return raw(cmdGenericNack, uint32(StatusInvBnd), seq) }},
		{"enquire_link_resp", func(seq uint32) []byte { return raw(cmdEnquireLink|respBit, uint32(StatusInvBnd), seq) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSMSC(t)
			h := startClient(t, f, func(c *Config) {
				if tc.name == "enquire_link_resp" {
					c.EnquireLink = 50 * time.Millisecond
				}
			})
			p := f.acceptBound()
			h.expectState(t, true)
			if tc.name == "enquire_link_resp" {
				e, _ := p.expect(cmdEnquireLink)
				p.send(tc.answer(e.Seq))
			} else {
				res := h.submitAsync(context.Background(), hello)
				sh, _ := p.expect(cmdSubmitSM)
				p.send(tc.answer(sh.Seq))
				if r := waitResult(t, res); r.err != StatusInvBnd {
					t.Fatalf("Submit = %q, %v; want ESME_RINVBNDSTS", r.id, r.err)
				}
			}
			// Closed at once: no other PDU (another enquire_link), no
			// wait for a timeout.
			if rh, _, err := p.readWithin(time.Second); err == nil {
				t.Fatalf("SMSC got 0x%08X seq %d after ESME_RINVBNDSTS; want the connection closed", rh.ID, rh.Seq)
			} else if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("connection still open 1s after ESME_RINVBNDSTS")
			}
			h.expectState(t, false)
			f.acceptBound()
			h.expectState(t, true)
		})
	}
}

// TestUnbindRespSentWithWritersWaiting: the unbind_resp goes out before
// the connection is closed, even while deliver_sm_resps are being written
// at the same moment (a writer that is not the last in line does not
// flush). Run many times: the loss depended on the order of the writers.
func TestUnbindRespSentWithWritersWaiting(t *testing.T) {
	const runs, inFlight = 40, 32
	f := newFakeSMSC(t)
	h := startClient(t, f, func(c *Config) {
		c.ReconnectMin, c.ReconnectMax = 5*time.Millisecond, 5*time.Millisecond
		c.Handler = HandlerFunc(func(context.Context, *Deliver) Status { return StatusOK })
	})
	for run := range runs {
		p := f.acceptBound()
		h.expectState(t, true)
		var burst []byte
		for i := range inFlight {
			burst = append(burst, raw(cmdDeliverSM, 0, uint32(10+i), deliverBody(fmt.Sprintf("120155501%02d", i), "12015550100", 0, 0, []byte("x")))...)
		}
		burst = append(burst, raw(cmdUnbind, 0, 9)...)
		p.send(burst)
		for {
			rh, _, err := p.readWithin(5 * time.Second)
			if err != nil {
				t.Fatalf("run %d: connection ended (%v) without unbind_resp", run, err)
			}
			if rh.ID == cmdUnbind|respBit {
				if rh.Seq != 9 || rh.Status != 0 {
					t.Fatalf("run %d: unbind_resp seq %d status %#x", run, rh.Seq, rh.Status)
				}
				break
			}
		}
		h.expectState(t, false)
		p.c.Close()
	}
}

// TestGenericNackSeqZero: a generic_nack with sequence 0 (the SMSC could
// not decode a PDU of ours, SMPP 3.4 section 4.3) names no request. The
// requests in flight keep waiting; the one it answered times out with an
// unknown outcome, but the session, which is not hung, stays up. A
// request sent after it that goes unanswered still ends the session.
func TestGenericNackSeqZero(t *testing.T) {
	f := newFakeSMSC(t)
	h := startClient(t, f, func(c *Config) { c.RespTimeout = 300 * time.Millisecond })
	p := f.acceptBound()
	h.expectState(t, true)

	res := h.submitAsync(context.Background(), hello)
	p.expect(cmdSubmitSM)
	p.send(raw(cmdGenericNack, uint32(StatusInvCmdLen), 0))
	if r := waitResult(t, res); !errors.Is(r.err, ErrUnknownOutcome) {
		t.Fatalf("Submit = %q, %v; want ErrUnknownOutcome", r.id, r.err)
	}
	// Still the same connection, still bound.
	p.send(raw(cmdEnquireLink, 0, 50))
	p.expectBytes(raw(cmdEnquireLink|respBit, 0, 50))
	res = h.submitAsync(context.Background(), hello)
	sh, _ := p.expect(cmdSubmitSM)
	p.send(raw(cmdSubmitSM|respBit, 0, sh.Seq, cstr("ok")))
	if r := waitResult(t, res); r.err != nil || r.id != "ok" {
		t.Fatalf("Submit after the generic_nack = %q, %v; want ok", r.id, r.err)
	}
	select {
	case b := <-h.states:
		t.Fatalf("OnState(%v) after a generic_nack with sequence 0", b)
	default:
	}

	res = h.submitAsync(context.Background(), hello)
	p.expect(cmdSubmitSM)
	if r := waitResult(t, res); !errors.Is(r.err, ErrUnknownOutcome) {
		t.Fatalf("Submit = %q, %v; want ErrUnknownOutcome", r.id, r.err)
	}
	p.expectClosed()
	h.expectState(t, false)
}

// TestThrottlingPausesSubmits: after ESME_RTHROTTLED the bind sends no
// submit_sm for a pause, which doubles when a submit_sm sent after it is
// throttled again and ends with one accepted; submits waiting for it keep
// their ctx and SendBy. The episode is logged once.
func TestThrottlingPausesSubmits(t *testing.T) {
	// The checks inside the pause need the client to come to them within
	// three quarters of it: a second, for a loaded machine.
	const pause = time.Second
	const paused, over = "smpp: SMSC throttling (ESME_RTHROTTLED); submits on this bind paused", "smpp: SMSC throttling over; submits on this bind resumed"
	f := newFakeSMSC(t)
	logs := testenv.NewLogs(t)
	h := startClient(t, f, func(c *Config) {
		c.Window = 4
		c.throttleMin, c.throttleMax = pause, 8*pause
		c.Logger = zerolog.New(logs)
	})
	p := f.acceptBound()
	h.waitBound(t)

	// A window's worth in flight: two throttled, one accepted. Only the
	// first starts the pause; the others were sent before it.
	var res [3]chan submitResult
	var seqs [3]uint32
	for i := range res {
		res[i] = h.submitAsync(context.Background(), hello)
		sh, _ := p.expect(cmdSubmitSM)
		seqs[i] = sh.Seq
	}
	t0 := time.Now()
	p.send(raw(cmdSubmitSM|respBit, uint32(StatusThrottled), seqs[0]))
	p.send(raw(cmdSubmitSM|respBit, uint32(StatusThrottled), seqs[1]))
	p.send(raw(cmdSubmitSM|respBit, 0, seqs[2], cstr("c")))
	for i, want := range []error{StatusThrottled, StatusThrottled, nil} {
		if r := waitResult(t, res[i]); r.err != want {
			t.Fatalf("Submit %d = %q, %v; want %v", i, r.id, r.err, want)
		}
	}

	// During the pause: a SendBy before its end gives up at once, a ctx
	// that ends gives its error; neither sends anything.
	late := *hello
	late.SendBy = time.Now().Add(pause / 4)
	if _, err := h.c.Submit(context.Background(), &late); !errors.Is(err, ErrNotSentBy) {
		t.Fatalf("Submit with SendBy inside the pause = %v, want ErrNotSentBy", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pause/4)
	defer cancel()
	if _, err := h.c.Submit(ctx, hello); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit with ctx ending inside the pause = %v, want context.DeadlineExceeded", err)
	}

	// The next submit_sm goes after the pause.
	r := h.submitAsync(context.Background(), hello)
	sh, _ := p.expect(cmdSubmitSM)
	if d := time.Since(t0); d < pause {
		t.Fatalf("submit_sm %v after ESME_RTHROTTLED, want a pause of %v", d, pause)
	}
	// Throttled again: the pause doubles.
	t1 := time.Now()
	p.send(raw(cmdSubmitSM|respBit, uint32(StatusThrottled), sh.Seq))
	if res := waitResult(t, r); res.err != StatusThrottled {
		t.Fatalf("Submit = %v, want ESME_RTHROTTLED", res.err)
	}
	r = h.submitAsync(context.Background(), hello)
	sh, _ = p.expect(cmdSubmitSM)
	if d := time.Since(t1); d < 2*pause {
		t.Fatalf("submit_sm %v after the second ESME_RTHROTTLED, want a pause of %v", d, 2*pause)
	}
	// Accepted: the episode is over.
	p.send(raw(cmdSubmitSM|respBit, 0, sh.Seq, cstr("e")))
	if res := waitResult(t, r); res.err != nil {
		t.Fatal(res.err)
	}
	if n := logs.Count(paused); n != 1 {
		t.Errorf("%d lines %q for one episode of three ESME_RTHROTTLED, want 1", n, paused)
	}
	if n := logs.Count(over); n != 1 {
		t.Errorf("%d lines %q, want 1", n, over)
	}

	// A new episode starts from the shortest pause again: a SendBy past
	// it (but not past a doubled one) is kept.
	r = h.submitAsync(context.Background(), hello)
	sh, _ = p.expect(cmdSubmitSM)
	p.send(raw(cmdSubmitSM|respBit, uint32(StatusThrottled), sh.Seq))
	waitResult(t, r)
	late.SendBy = time.Now().Add(2 * pause)
	r = h.submitAsync(context.Background(), &late)
	sh, _ = p.expect(cmdSubmitSM)
	p.send(raw(cmdSubmitSM|respBit, 0, sh.Seq, cstr("g")))
	if res := waitResult(t, r); res.err != nil || res.id != "g" {
		t.Fatalf("Submit in a new episode = %q, %v; want g", res.id, res.err)
	}
	if n := logs.Count(paused); n != 2 {
		t.Errorf("%d lines %q after two episodes, want 2", n, paused)
	}
}

// TestQueueFullPausesSubmits: ESME_RMSGQFUL pauses the bind's submits as
// ESME_RTHROTTLED does (a message refused so was resubmitted every second
// for its whole validity), logged as what it is.
func TestQueueFullPausesSubmits(t *testing.T) {
	const pause = time.Second
	f := newFakeSMSC(t)
	logs := testenv.NewLogs(t)
	h := startClient(t, f, func(c *Config) {
		c.throttleMin, c.throttleMax = pause, 8*pause
		c.Logger = zerolog.New(logs)
	})
	p := f.acceptBound()
	h.waitBound(t)
	r := h.submitAsync(context.Background(), hello)
	sh, _ := p.expect(cmdSubmitSM)
	t0 := time.Now()
	p.send(raw(cmdSubmitSM|respBit, uint32(StatusMsgQFul), sh.Seq))
	if res := waitResult(t, r); res.err != StatusMsgQFul {
		t.Fatalf("Submit = %v, want ESME_RMSGQFUL", res.err)
	}
	r = h.submitAsync(context.Background(), hello)
	sh, _ = p.expect(cmdSubmitSM)
	if d := time.Since(t0); d < pause {
		t.Fatalf("submit_sm %v after ESME_RMSGQFUL, want a pause of %v", d, pause)
	}
	p.send(raw(cmdSubmitSM|respBit, 0, sh.Seq, cstr("q")))
	if res := waitResult(t, r); res.err != nil {
		t.Fatal(res.err)
	}
	if n := logs.Count("smpp: SMSC queue full (ESME_RMSGQFUL); submits on this bind paused"); n != 1 {
		t.Errorf("%d lines saying the SMSC's queue is full, want 1", n)
	}
}

// TestSpawnAfterWait: a session's goroutine started before wait is waited
// for; once wait has begun (the session is over: a request's timer may
// still call drain) spawn starts nothing, so that its WaitGroup's Add can
// never race the Wait (seen under -race in TestEnquireLinkWhenIdle).
func TestSpawnAfterWait(t *testing.T) {
	var s session
	var ran atomic.Int32
	if !s.spawn(func() { time.Sleep(20 * time.Millisecond); ran.Add(1) }) {
		t.Fatal("spawn before wait started nothing")
	}
	s.wait()
	if ran.Load() != 1 {
		t.Fatal("wait returned before the spawned goroutine ended")
	}
	if s.spawn(func() { ran.Add(1) }) {
		t.Error("spawn after wait reported a goroutine started")
	}
	s.wait()
	if ran.Load() != 1 {
		t.Error("spawn after wait ran its function")
	}
}

// TestResponseNeverWritten: a message still with the Handler (being
// stored) when the bind is lost gets no response: the SMSC sends it again
// on the next bind, so its response counts as unread; a message answered
// and shown read before it stays read.
func TestResponseNeverWritten(t *testing.T) {
	f := newFakeSMSC(t)
	got := make(chan *Deliver, 4)
	release := make(chan struct{})
	h := startClient(t, f, func(c *Config) {
		c.ConfirmDelay = 20 * time.Millisecond
		c.Handler = HandlerFunc(func(_ context.Context, d *Deliver) Status {
			got <- d
			if string(d.ShortMessage) == "slow" {
				<-release // the store commits after the bind is gone
			}
			return StatusOK
		})
	})
	p := f.acceptBound()
	h.waitBound(t)
	h.expectState(t, true)
	p.send(raw(cmdDeliverSM, 0, 7, deliverBody("12015550123", "12015550100", 0, 0, []byte("first"))))
	p.expectBytes(raw(cmdDeliverSM|respBit, 0, 7, []byte{0}))
	read := <-got
	e, _ := p.expect(cmdEnquireLink)
	p.send(raw(cmdEnquireLink|respBit, 0, e.Seq))
	p.send(raw(cmdDeliverSM, 0, 8, deliverBody("12015550124", "12015550100", 0, 0, []byte("slow"))))
	d := <-got
	p.c.Close()
	h.expectState(t, false)
	close(release)
	if !ResponseMayBeUnread(d.Session, d.Stretch) {
		t.Error("a message whose response was never written taken as answered")
	}
	if read.Stretch == d.Stretch {
		t.Fatalf("both messages in stretch %d; the test needs the first shown read before the second", d.Stretch)
	}
	if ResponseMayBeUnread(read.Session, read.Stretch) {
		t.Error("a response shown read before taken as possibly unread")
	}
}
