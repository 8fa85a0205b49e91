package smsc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/rs/zerolog"
)

// client is a raw SMPP ESME for tests, built on fiorix's PDU codec.
type client struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
	seq  uint32
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, br: bufio.NewReader(conn)}
}

func (c *client) nextSeq() uint32 { c.seq++; return c.seq }

func (c *client) write(p pdu.Body) {
	c.t.Helper()
	var b bytes.Buffer
	if err := p.SerializeTo(&b); err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.Write(b.Bytes()); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) writeRaw(id pdu.ID, status, seq uint32, body []byte) {
	c.t.Helper()
	b := make([]byte, 16, 16+len(body))
	be := func(o int, v uint32) { b[o], b[o+1], b[o+2], b[o+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v) }
	be(0, uint32(16+len(body)))
	be(4, uint32(id))
	be(8, status)
	be(12, seq)
	if _, err := c.conn.Write(append(b, body...)); err != nil {
		c.t.Fatal(err)
	}
}

// readFrame returns the next PDU's header and its raw bytes.
func (c *client) readFrame(timeout time.Duration) (*pdu.Header, []byte, error) {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	hb := make([]byte, 16)
	if _, err := io.ReadFull(c.br, hb); err != nil {
		return nil, nil, err
	}
	h, err := pdu.DecodeHeader(bytes.NewReader(hb))
	if err != nil {
		return nil, nil, err
	}
	raw := make([]byte, h.Len)
	copy(raw, hb)
	if _, err := io.ReadFull(c.br, raw[16:]); err != nil {
		return nil, nil, err
	}
	return h, raw, nil
}

// expect reads the next PDU, which must be id, and decodes it with fiorix
// (data_sm, which fiorix lacks, comes back undecoded).
func (c *client) expect(id pdu.ID) (*pdu.Header, pdu.Body, []byte) {
	c.t.Helper()
	h, raw, err := c.readFrame(5 * time.Second)
	if err != nil {
		c.t.Fatalf("waiting for %s: %v", id, err)
	}
	if h.ID != id {
		c.t.Fatalf("got %s (%#x) status %#x, want %s", h.ID, uint32(h.ID), uint32(h.Status), id)
	}
	if id == pdu.DataSMID || id == pdu.DataSMRespID { // fiorix: "PDU not implemented"
		return h, nil, raw
	}
	p, err := pdu.Decode(bytes.NewReader(raw))
	if err != nil {
		c.t.Fatalf("decode %s: %v", id, err)
	}
	return h, p, raw
}

func (c *client) bind(p pdu.Body, systemID, password string) pdu.Status {
	c.t.Helper()
	p.Header().Seq = c.nextSeq()
	f := p.Fields()
	f.Set(pdufield.SystemID, systemID)
	f.Set(pdufield.Password, password)
	f.Set(pdufield.InterfaceVersion, 0x34)
	c.write(p)
	h, _, _ := c.expect(p.Header().ID | 0x80000000)
	if h.Seq != p.Header().Seq {
		c.t.Fatalf("bind_resp seq %d, want %d", h.Seq, p.Header().Seq)
	}
	return h.Status
}

type sub struct {
	src, dst string
	esm, dc  uint8
	rd       uint8
	sm       []byte
	tlv      pdutlv.Fields
}

func (c *client) submit(s sub) uint32 {
	c.t.Helper()
	p := pdu.NewSubmitSM(s.tlv)
	seq := c.nextSeq()
	p.Header().Seq = seq
	f := p.Fields()
	f.Set(pdufield.SourceAddrTON, 1)
	f.Set(pdufield.SourceAddrNPI, 1)
	f.Set(pdufield.SourceAddr, s.src)
	f.Set(pdufield.DestAddrTON, 1)
	f.Set(pdufield.DestAddrNPI, 1)
	f.Set(pdufield.DestinationAddr, s.dst)
	f.Set(pdufield.ESMClass, s.esm)
	f.Set(pdufield.DataCoding, s.dc)
	f.Set(pdufield.RegisteredDelivery, s.rd)
	f.Set(pdufield.ShortMessage, s.sm)
	c.write(p)
	return seq
}

func (c *client) respond(id pdu.ID, seq uint32, status uint32) {
	c.t.Helper()
	body := []byte{0} // empty message_id
	if status != 0 {
		body = nil
	}
	c.writeRaw(id, status, seq, body)
}

func newTestServer(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	if _, ok := t.(*testing.T); ok {
		cfg.Logger = zerolog.New(zerolog.NewTestWriter(t.(*testing.T))).Level(zerolog.InfoLevel)
	} else {
		cfg.Logger = zerolog.Nop()
	}
	s := NewServer(cfg)
	addr, err := s.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, addr
}

func bound(t testing.TB, addr string, kind func() pdu.Body) *client {
	t.Helper()
	c := dial(t, addr)
	if st := c.bind(kind(), "gw", "pw"); st != 0 {
		t.Fatalf("bind status %#x", uint32(st))
	}
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestBind(t *testing.T) {
	_, addr := newTestServer(t, Config{SystemID: "gw", Password: "pw"})
	for _, tc := range []struct {
		sys, pw string
		want    pdu.Status
	}{
		{"gw", "pw", 0},
		{"gw", "nope", 0x0E},
		{"other", "pw", 0x0F},
	} {
		c := dial(t, addr)
		if got := c.bind(pdu.NewBindTransceiver(), tc.sys, tc.pw); got != tc.want {
			t.Errorf("bind %s/%s: status %#x, want %#x", tc.sys, tc.pw, uint32(got), uint32(tc.want))
		}
		if tc.want != 0 {
			if _, _, err := c.readFrame(2 * time.Second); err != io.EOF {
				t.Errorf("after refused bind: %v, want EOF", err)
			}
		} else if got := c.bind(pdu.NewBindTransceiver(), tc.sys, tc.pw); got != 0x05 {
			t.Errorf("second bind: status %#x, want 0x05", uint32(got))
		}
	}

	_, open := newTestServer(t, Config{})
	c := dial(t, open)
	if got := c.bind(pdu.NewBindReceiver(), "anyone", "anything"); got != 0 {
		t.Errorf("open server refused bind: %#x", uint32(got))
	}
}

func TestSessionCommands(t *testing.T) {
	srv, addr := newTestServer(t, Config{})
	c := dial(t, addr)

	seq := c.submit(sub{src: "12015550100", dst: "12015550123", sm: []byte("x")})
	h, _, _ := c.expect(pdu.SubmitSMRespID)
	if h.Status != 0x04 || h.Seq != seq {
		t.Errorf("submit before bind: status %#x seq %d", uint32(h.Status), h.Seq)
	}
	if c.bind(pdu.NewBindTransmitter(), "gw", "pw") != 0 {
		t.Fatal("bind")
	}
	if srv.Bound() != 1 {
		t.Errorf("Bound() = %d", srv.Bound())
	}

	el := pdu.NewEnquireLink()
	el.Header().Seq = 4242
	c.write(el)
	if h, _, _ := c.expect(pdu.EnquireLinkRespID); h.Seq != 4242 {
		t.Errorf("enquire_link_resp seq %d", h.Seq)
	}

	c.writeRaw(0x00000099, 0, 77, nil)
	if h, _, _ := c.expect(pdu.GenericNACKID); h.Seq != 77 || h.Status != 0x03 {
		t.Errorf("generic_nack seq %d status %#x", h.Seq, uint32(h.Status))
	}
	c.writeRaw(pdu.QuerySMID, 0, 78, []byte("1\x00\x00\x00\x00"))
	if h, _, _ := c.expect(pdu.QuerySMRespID); h.Seq != 78 || h.Status != 0x03 {
		t.Errorf("query_sm_resp seq %d status %#x", h.Seq, uint32(h.Status))
	}

	ub := pdu.NewUnbind()
	ub.Header().Seq = 9
	c.write(ub)
	if h, _, _ := c.expect(pdu.UnbindRespID); h.Seq != 9 {
		t.Errorf("unbind_resp seq %d", h.Seq)
	}
	if _, _, err := c.readFrame(2 * time.Second); err != io.EOF {
		t.Errorf("after unbind: %v, want EOF", err)
	}
	waitFor(t, func() bool { return srv.Bound() == 0 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var receiptRE = regexp.MustCompile(`^id:(\S+) sub:001 dlvrd:(\d{3}) submit date:(\d{10}) done date:(\d{10}) stat:(\w+) err:(\d{3}) text:(.*)$`)

// dataSMTLVs skips data_sm's mandatory fields and decodes its TLVs.
func dataSMTLVs(t *testing.T, raw []byte) (esm byte, tlv pdutlv.Map) {
	t.Helper()
	b := raw[16:]
	skipC := func() {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			t.Fatal("data_sm: unterminated C-string")
		}
		b = b[i+1:]
	}
	skipC()
	b = b[2:]
	skipC()
	b = b[2:]
	skipC()
	esm = b[0]
	b = b[3:]
	m, err := pdutlv.DecodeTLV(bytes.NewBuffer(b))
	if err != nil {
		t.Fatal(err)
	}
	return esm, m
}

func TestReceipts(t *testing.T) {
	hexID := regexp.MustCompile(`^[0-9A-F]+$`)
	decID := regexp.MustCompile(`^[0-9]+$`)
	for _, tc := range []struct {
		name string
		cfg  Config
		stat string
	}{
		{"text", Config{}, "DELIVRD"},
		{"text-decimal", Config{IDFormat: IDDecimal}, "DELIVRD"},
		{"text-otherform", Config{ReceiptIDOtherForm: true, Outcome: OutcomeFailed}, "UNDELIV"},
		{"text-early", Config{EarlyReceipt: true}, "DELIVRD"},
		{"tlv", Config{ReceiptMode: ReceiptTLV, Outcome: OutcomeRejected}, "REJECTD"},
		{"tlv-decimal-otherform", Config{ReceiptMode: ReceiptTLV, IDFormat: IDDecimal, ReceiptIDOtherForm: true}, "DELIVRD"},
		{"data_sm", Config{ReceiptMode: ReceiptDataSM, Outcome: OutcomeExpired}, "EXPIRED"},
		{"data_sm-early", Config{ReceiptMode: ReceiptDataSM, EarlyReceipt: true}, "DELIVRD"},
		{"delayed", Config{ReceiptDelay: 50 * time.Millisecond}, "DELIVRD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, addr := newTestServer(t, tc.cfg)
			c := bound(t, addr, pdu.NewBindTransceiver)
			seq := c.submit(sub{src: "12015550100", dst: "12015550123", rd: 1, sm: []byte("Hello, world! This is longer than twenty")})

			var id string
			readResp := func() {
				h, p, _ := c.expect(pdu.SubmitSMRespID)
				if h.Seq != seq || h.Status != 0 {
					t.Fatalf("submit_sm_resp seq %d status %#x", h.Seq, uint32(h.Status))
				}
				id = p.Fields()[pdufield.MessageID].String()
			}
			if !tc.cfg.EarlyReceipt {
				readResp()
			}
			wantDLR := pdu.DeliverSMID
			if tc.cfg.ReceiptMode == ReceiptDataSM {
				wantDLR = pdu.DataSMID
			}
			h, p, raw := c.expect(wantDLR)
			if tc.cfg.EarlyReceipt {
				readResp()
			}
			c.respond(wantDLR|0x80000000, h.Seq, 0)

			wantFmt, otherFmt := hexID, decID
			if tc.cfg.IDFormat == IDDecimal {
				wantFmt, otherFmt = decID, hexID
			}
			if !wantFmt.MatchString(id) {
				t.Errorf("submit_sm_resp id %q not in %s form", id, tc.cfg.IDFormat)
			}
			n, _ := strconv.ParseUint(id, map[bool]int{true: 10, false: 16}[tc.cfg.IDFormat == IDDecimal], 64)
			rid := id
			if tc.cfg.ReceiptIDOtherForm {
				if tc.cfg.IDFormat == IDDecimal {
					rid = strings.ToUpper(strconv.FormatUint(n, 16))
				} else {
					rid = strconv.FormatUint(n, 10)
				}
				if !otherFmt.MatchString(rid) {
					t.Fatalf("bad other form %q", rid)
				}
			}

			var tlv pdutlv.Map
			var esm byte
			if wantDLR == pdu.DataSMID {
				esm, tlv = dataSMTLVs(t, raw)
			} else {
				f := p.Fields()
				esm = fieldByte(f, pdufield.ESMClass)
				tlv = p.TLVFields()
				if got := f[pdufield.SourceAddr].String(); got != "12015550123" {
					t.Errorf("receipt source %q", got)
				}
				text := f[pdufield.ShortMessage].String()
				mm := receiptRE.FindStringSubmatch(text)
				if mm == nil {
					t.Fatalf("receipt text %q does not match Appendix B", text)
				}
				if mm[1] != rid || mm[5] != tc.stat || mm[7] != "Hello, world! This i" {
					t.Errorf("receipt %q: want id %s stat %s", text, rid, tc.stat)
				}
			}
			if esm != 0x04 {
				t.Errorf("receipt esm_class %#x", esm)
			}
			if tc.cfg.ReceiptMode == "" {
				if len(tlv) != 0 {
					t.Errorf("text receipt has TLVs %v", tlv)
				}
			} else {
				if got := tlv[pdutlv.TagReceiptedMessageID]; got == nil || got.String() != rid {
					t.Errorf("receipted_message_id %v, want %s", got, rid)
				}
				wantState := map[string]byte{"DELIVRD": 2, "UNDELIV": 5, "REJECTD": 8, "EXPIRED": 3}[tc.stat]
				if got := tlv[pdutlv.TagMessageStateOption]; got == nil || !bytes.Equal(got.Bytes(), []byte{wantState}) {
					t.Errorf("message_state %v, want %d", got, wantState)
				}
			}
			msgs, err := srv.WaitMessages(ctxT(t), 1)
			if err != nil {
				t.Fatal(err)
			}
			if msgs[0].ID != id || msgs[0].State != tc.stat || msgs[0].Text != "Hello, world! This is longer than twenty" {
				t.Errorf("message %+v", msgs[0])
			}
		})
	}
}

func TestNoReceipt(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		rd   uint8
	}{
		{"not-requested", Config{}, 0},
		{"outcome-none", Config{Outcome: OutcomeNone}, 1},
		{"failure-only-delivered", Config{}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, addr := newTestServer(t, tc.cfg)
			c := bound(t, addr, pdu.NewBindTransceiver)
			c.submit(sub{src: "12015550100", dst: "12015550123", rd: tc.rd, sm: []byte("hi")})
			c.expect(pdu.SubmitSMRespID)
			if h, _, err := c.readFrame(150 * time.Millisecond); err == nil {
				t.Errorf("unexpected %s", h.ID)
			}
			if in := srv.Inbox("+12015550123"); len(in) != 1 || in[0].Text != "hi" {
				t.Errorf("inbox %+v", in)
			}
		})
	}
}

func TestReceiptToSeparateReceiver(t *testing.T) {
	_, addr := newTestServer(t, Config{SystemID: "gw", Password: "pw"})
	tx := bound(t, addr, pdu.NewBindTransmitter)
	tx.submit(sub{src: "12015550100", dst: "12015550123", rd: 1, sm: []byte("hi")})
	_, p, _ := tx.expect(pdu.SubmitSMRespID)
	id := p.Fields()[pdufield.MessageID].String()
	// The receipt waits until a receiver with the same system_id binds.
	rx := bound(t, addr, pdu.NewBindReceiver)
	h, d, _ := rx.expect(pdu.DeliverSMID)
	rx.respond(pdu.DeliverSMRespID, h.Seq, 0)
	if !strings.HasPrefix(d.Fields()[pdufield.ShortMessage].String(), "id:"+id+" ") {
		t.Errorf("receipt %q for %s", d.Fields()[pdufield.ShortMessage], id)
	}
}

// TestReceiptRetriedAfterTemporaryError: a receipt the ESME answers with a
// temporary error (its store down, say) is sent again, beyond the attempts
// a message from a phone gets (its HTTP caller waits), as an SMSC retries
// a receipt for hours, each time with a new sequence number.
func TestReceiptRetriedAfterTemporaryError(t *testing.T) {
	_, addr := newTestServer(t, Config{})
	c := bound(t, addr, pdu.NewBindTransceiver)
	c.submit(sub{src: "12015550100", dst: "12015550123", rd: 1, sm: []byte("hi")})
	c.expect(pdu.SubmitSMRespID)
	seqs := map[uint32]bool{}
	for i := range maxAttempts + 2 {
		h, _, _ := c.expect(pdu.DeliverSMID)
		if seqs[h.Seq] {
			t.Errorf("retry reused sequence number %d", h.Seq)
		}
		seqs[h.Seq] = true
		st := []uint32{0x58, 0x64}[i%2] // ESME_RTHROTTLED, ESME_RX_T_APPN
		c.respond(pdu.DeliverSMRespID, h.Seq, st)
	}
	h, _, _ := c.expect(pdu.DeliverSMID)
	c.respond(pdu.DeliverSMRespID, h.Seq, 0)
	if h2, _, err := c.readFrame(300 * time.Millisecond); err == nil {
		t.Errorf("a receipt taken was sent again: %s", h2.ID)
	}
}

func TestConcatenatedSubmit(t *testing.T) {
	srv, addr := newTestServer(t, Config{})
	c := bound(t, addr, pdu.NewBindTransceiver)
	p1 := append([]byte{5, 0, 3, 0x42, 2, 1}, []byte("Hello ")...)
	p2 := append([]byte{6, 8, 4, 0x01, 0x42, 2, 2}, []byte("World")...) // 16-bit ref 0x0142
	c.submit(sub{src: "12015550100", dst: "12015550123", esm: 0x40, sm: p1})
	c.submit(sub{src: "12015550100", dst: "12015550123", esm: 0x40, sm: p2})
	// SAR-tagged parts with a matching 16-bit reference.
	c.submit(sub{src: "12015550100", dst: "12015550123", sm: []byte("lo"), tlv: pdutlv.Fields{
		pdutlv.TagSarMsgRefNum: []byte{0, 7}, pdutlv.TagSarTotalSegments: uint8(2), pdutlv.TagSarSegmentSeqnum: uint8(2)}})
	c.submit(sub{src: "12015550100", dst: "12015550123", sm: []byte("hel"), tlv: pdutlv.Fields{
		pdutlv.TagSarMsgRefNum: []byte{0, 7}, pdutlv.TagSarTotalSegments: uint8(2), pdutlv.TagSarSegmentSeqnum: uint8(1)}})
	for range 4 {
		c.expect(pdu.SubmitSMRespID)
	}
	msgs, err := srv.WaitMessages(ctxT(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].Text != "Hello " || msgs[0].Concat == nil || msgs[0].Concat.Ref != 0x42 || msgs[0].Concat.Seq != 1 {
		t.Errorf("part 1: %+v", msgs[0])
	}
	// 8-bit ref 0x42 and 16-bit ref 0x0142 are different messages.
	if msgs[0].FullText != "" || msgs[1].FullText != "" {
		t.Errorf("parts of different references joined: %q %q", msgs[0].FullText, msgs[1].FullText)
	}
	if msgs[2].FullText != "hello" || msgs[3].FullText != "hello" {
		t.Errorf("SAR reassembly: %q %q", msgs[2].FullText, msgs[3].FullText)
	}

	p1b := append([]byte{6, 8, 4, 0x01, 0x42, 2, 1}, []byte("Hello ")...)
	c.submit(sub{src: "12015550100", dst: "12015550123", esm: 0x40, sm: p1b})
	c.expect(pdu.SubmitSMRespID)
	msgs, _ = srv.WaitMessages(ctxT(t), 5)
	if msgs[4].FullText != "Hello World" || msgs[1].FullText != "Hello World" {
		t.Errorf("16-bit reassembly: %q", msgs[4].FullText)
	}
	in := srv.Inbox("12015550123")
	if len(in) != 2 || in[0].Text != "hello" || in[1].Text != "Hello World" || len(in[1].IDs) != 2 || in[1].IDs[1] != msgs[1].ID {
		t.Errorf("inbox %+v", in)
	}
}

func TestSubmitCodings(t *testing.T) {
	srv, addr := newTestServer(t, Config{})
	c := bound(t, addr, pdu.NewBindTransceiver)
	ucs := ucs2Bytes(utf16.Encode([]rune("Привет 👋")))
	c.submit(sub{src: "1", dst: "2", dc: 8, sm: ucs})
	c.submit(sub{src: "1", dst: "2", dc: 0, sm: []byte{0x1B, 0x65, 0x00, 0x11, 'a', 0x1B, 0x28}})
	c.submit(sub{src: "1", dst: "2", dc: 3, sm: []byte{'c', 0xE9}})
	// data_sm from the ESME with message_payload.
	var b []byte
	b = append(b, 0, 1, 1)
	b = append(b, "1\x00"...)
	b = append(b, 1, 1)
	b = append(b, "2\x00"...)
	b = append(b, 0, 0, 0)
	b = append(b, 0x04, 0x24, 0, 7)
	b = append(b, "payload"...)
	c.writeRaw(pdu.DataSMID, 0, 99, b)
	for range 3 {
		c.expect(pdu.SubmitSMRespID)
	}
	h, _, raw := c.expect(pdu.DataSMRespID)
	if h.Seq != 99 || h.Status != 0 || len(raw) <= 17 {
		t.Errorf("data_sm_resp %+v %q", h, raw)
	}
	msgs, _ := srv.WaitMessages(ctxT(t), 4)
	for i, want := range []string{"Привет 👋", "€@_a{", "cé", "payload"} {
		if msgs[i].Text != want {
			t.Errorf("message %d text %q, want %q", i, msgs[i].Text, want)
		}
	}
}

func TestSubmitStatusThrottle(t *testing.T) {
	var calls atomic.Int32
	srv, addr := newTestServer(t, Config{SubmitStatus: func(m *Message) uint32 {
		if calls.Add(1) <= 2 {
			return 0x58
		}
		return 0
	}})
	c := bound(t, addr, pdu.NewBindTransceiver)
	for i := range 3 {
		seq := c.submit(sub{src: "12015550100", dst: "12015550123", sm: []byte("x")})
		h, p, _ := c.expect(pdu.SubmitSMRespID)
		want := uint32(0x58)
		if i == 2 {
			want = 0
		}
		if h.Seq != seq || uint32(h.Status) != want {
			t.Errorf("submit %d: seq %d status %#x, want %#x", i, h.Seq, uint32(h.Status), want)
		}
		if id := fieldString(p.Fields(), pdufield.MessageID); (want == 0) == (id == "") {
			t.Errorf("submit %d: message_id %q with status %#x", i, id, want)
		}
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d messages kept, want 1 (throttled submits are not accepted)", n)
	}
}

// TestNoMessageID: with NoMessageID, submit_sm_resp is OK with an empty
// message_id (a NUL alone), and the receipt names the id the simulator
// kept.
func TestNoMessageID(t *testing.T) {
	srv, addr := newTestServer(t, Config{NoMessageID: true})
	c := bound(t, addr, pdu.NewBindTransceiver)
	seq := c.submit(sub{src: "12015550100", dst: "12015550123", sm: []byte("x"), rd: 1})
	h, _, raw := c.expect(pdu.SubmitSMRespID)
	if h.Seq != seq || h.Status != 0 || !bytes.Equal(raw[16:], []byte{0}) {
		t.Fatalf("submit_sm_resp: seq %d status %#x body % X; want OK with an empty message_id", h.Seq, uint32(h.Status), raw[16:])
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].ID == "" {
		t.Fatalf("messages kept: %+v", msgs)
	}
	_, p, _ := c.expect(pdu.DeliverSMID)
	if sm := fieldString(p.Fields(), pdufield.ShortMessage); !strings.HasPrefix(sm, "id:"+msgs[0].ID+" ") {
		t.Errorf("receipt %q, want it to name %s", sm, msgs[0].ID)
	}
}

// moReader answers deliver_sm with the given statuses (then 0) and collects the short messages.
func readMO(t *testing.T, c *client, n int, statuses ...uint32) []pdu.Body {
	t.Helper()
	var got []pdu.Body
	for len(got) < n {
		h, p, raw := c.expect(pdu.DeliverSMID)
		st := uint32(0)
		if len(statuses) > 0 {
			st, statuses = statuses[0], statuses[1:]
		}
		c.respond(pdu.DeliverSMRespID, h.Seq, st)
		if st == 0 {
			got = append(got, p)
		}
		_ = raw
	}
	return got
}

func TestSendMO(t *testing.T) {
	long := strings.Repeat("0123456789", 30) + "€"                  // 301 septets + escape pair
	esc := strings.Repeat("a", 152) + "€" + strings.Repeat("b", 10) // the escape pair must not be split at 153
	ucsLong := strings.Repeat("я", 66) + "😀" + "tail"               // surrogate pair straddles 67
	for _, tc := range []struct {
		name  string
		text  string
		dc    uint8
		parts int
	}{
		{"gsm", "Hello {world} @ £1", 0, 1},
		{"gsm-160", strings.Repeat("x", 160), 0, 1},
		{"gsm-long", long, 0, 2},
		{"gsm-escape-boundary", esc, 0, 2},
		{"ucs2", "Привет 👋", 8, 1},
		{"ucs2-long", ucsLong, 8, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, addr := newTestServer(t, Config{})
			c := bound(t, addr, pdu.NewBindTransceiver)
			errc := make(chan error, 1)
			go func() { errc <- srv.SendMO(ctxT(t), "+12015550123", "+12015550100", tc.text) }()
			got := readMO(t, c, tc.parts)
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			var ref byte
			for i, p := range got {
				f := p.Fields()
				if fieldString(f, pdufield.SourceAddr) != "12015550123" || fieldByte(f, pdufield.SourceAddrTON) != 1 ||
					fieldString(f, pdufield.DestinationAddr) != "12015550100" {
					t.Errorf("addresses %v", f)
				}
				if dc := fieldByte(f, pdufield.DataCoding); dc != tc.dc {
					t.Errorf("data_coding %d, want %d", dc, tc.dc)
				}
				sm := f[pdufield.ShortMessage].Bytes() // fiorix strips the UDH into GSMUserData
				if tc.parts > 1 {
					if fieldByte(f, pdufield.ESMClass)&0x40 == 0 {
						t.Fatal("no UDHI")
					}
					ud := f[pdufield.GSMUserData].(*pdufield.UDHList).Data
					if len(ud) != 1 || ud[0].IEI.Data != 0 || len(ud[0].IEData.Data) != 3 {
						t.Fatalf("UDH %v", ud)
					}
					d := ud[0].IEData.Data
					if i == 0 {
						ref = d[0]
					}
					if d[0] != ref || int(d[1]) != tc.parts || int(d[2]) != i+1 {
						t.Errorf("part %d UDH %v", i+1, d)
					}
					max := map[uint8]int{0: 153, 8: 134}[tc.dc]
					if len(sm) > max {
						t.Errorf("part %d is %d octets", i+1, len(sm))
					}
				}
				if tc.dc == 0 && len(sm) > 0 && sm[len(sm)-1] == 0x1B {
					t.Errorf("part %d ends inside an escape pair", i+1)
				}
				text.WriteString(decodeText(tc.dc, sm))
			}
			if text.String() != tc.text {
				t.Errorf("reassembled %q, want %q", text.String(), tc.text)
			}
		})
	}
}

func TestSendMOErrors(t *testing.T) {
	srv, addr := newTestServer(t, Config{})
	if err := srv.SendMO(ctxT(t), "+12015550123", "+12015550100", "x"); !errors.Is(err, ErrNoSession) {
		t.Errorf("nobody bound: %v", err)
	}
	bound(t, addr, pdu.NewBindTransmitter)
	if err := srv.SendMO(ctxT(t), "+12015550123", "+12015550100", "x"); !errors.Is(err, ErrNoSession) {
		t.Errorf("only a transmitter bound: %v", err)
	}
	c := bound(t, addr, pdu.NewBindReceiver)

	errc := make(chan error, 1)
	go func() { errc <- srv.SendMO(ctxT(t), "+12015550123", "+12015550100", "retry me") }()
	readMO(t, c, 1, 0x64, 0x14) // two temporary failures, then accepted
	if err := <-errc; err != nil {
		t.Errorf("after temporary errors: %v", err)
	}

	go func() { errc <- srv.SendMO(ctxT(t), "+12015550123", "+12015550100", "refuse me") }()
	h, _, _ := c.expect(pdu.DeliverSMID)
	c.respond(pdu.DeliverSMRespID, h.Seq, 0x65)
	err := <-errc
	var st Status
	if !errors.As(err, &st) || st != StatusRxPAppn {
		t.Errorf("permanent error: %v", err)
	}
	if h2, _, err := c.readFrame(100 * time.Millisecond); err == nil {
		t.Errorf("permanent error was retried: %s", h2.ID)
	}

	go func() { errc <- srv.SendMO(ctxT(t), "+12015550123", "+12015550100", "nack me") }()
	h, _, _ = c.expect(pdu.DeliverSMID)
	c.writeRaw(pdu.GenericNACKID, 0x03, h.Seq, nil)
	if err := <-errc; !errors.As(err, &st) || st != StatusInvCmdID {
		t.Errorf("generic_nack: %v", err)
	}
}

func TestSendDeliver(t *testing.T) {
	srv, addr := newTestServer(t, Config{})
	c := bound(t, addr, pdu.NewBindTransceiver)
	type result struct {
		st  uint32
		err error
	}
	rc := make(chan result, 1)
	go func() {
		st, err := srv.SendDeliver(ctxT(t), DeliverOpts{Seq: 7, Source: "12015550123", Dest: "12015550100",
			ESMClass: 0x40, ShortMessage: []byte{5, 0, 3, 9, 2, 1, 'h', 'i'}})
		rc <- result{st, err}
	}()
	h, p, raw := c.expect(pdu.DeliverSMID)
	if h.Seq != 7 {
		t.Errorf("seq %d, want 7", h.Seq)
	}
	// Exact bytes: no stray octet between sm_length and short_message.
	want := []byte("\x00\x00\x00" + "12015550123\x00" + "\x00\x00" + "12015550100\x00" + "\x40\x00\x00\x00\x00\x00\x00\x00\x00\x08" + "\x05\x00\x03\x09\x02\x01hi")
	if !bytes.Equal(raw[16:], want) {
		t.Errorf("deliver_sm body\n got %q\nwant %q", raw[16:], want)
	}
	if got := p.Fields()[pdufield.ShortMessage].String(); got != "hi" {
		t.Errorf("fiorix decoded %q", got)
	}
	c.respond(pdu.DeliverSMRespID, 7, 0x64)
	if r := <-rc; r.err != nil || r.st != 0x64 {
		t.Errorf("SendDeliver = %#x, %v", r.st, r.err)
	}

	go func() {
		st, err := srv.SendDeliver(ctxT(t), DeliverOpts{UseDataSM: true, Source: "a", Dest: "b", ESMClass: 4,
			TLVs: []TLV{{TagReceiptedMessageID, []byte("ABC\x00")}, {TagMessageState, []byte{2}}}})
		rc <- result{st, err}
	}()
	h, _, raw = c.expect(pdu.DataSMID)
	esm, tlv := dataSMTLVs(t, raw)
	if esm != 4 || tlv[pdutlv.TagReceiptedMessageID].String() != "ABC" {
		t.Errorf("data_sm esm %d tlvs %v", esm, tlv)
	}
	c.writeRaw(pdu.DataSMRespID, 0, h.Seq, []byte{0})
	if r := <-rc; r.err != nil || r.st != 0 {
		t.Errorf("SendDeliver data_sm = %#x, %v", r.st, r.err)
	}

	go func() {
		st, resp, err := srv.SendPDU(ctxT(t), uint32(pdu.EnquireLinkID), 0, nil)
		rc <- result{st, err}
		_ = resp
	}()
	h, _, _ = c.expect(pdu.EnquireLinkID)
	c.writeRaw(pdu.EnquireLinkRespID, 0, h.Seq, nil)
	if r := <-rc; r.err != nil || r.st != 0 {
		t.Errorf("SendPDU enquire_link = %#x, %v", r.st, r.err)
	}
}

func TestHTTP(t *testing.T) {
	srv, addr := newTestServer(t, Config{})
	hs := httptest.NewServer(srv.HTTPHandler())
	defer hs.Close()

	resp, err := http.Post(hs.URL+"/mo", "application/json", strings.NewReader(`{"from":"+12015550123","to":"+12015550100","text":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("POST /mo with nobody bound: %d", resp.StatusCode)
	}

	c := bound(t, addr, pdu.NewBindTransceiver)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		got := readMO(t, c, 2)
		if s := got[0].Fields()[pdufield.ShortMessage].String(); s != "hi" {
			t.Errorf("json MO %q", s)
		}
		if s := got[1].Fields()[pdufield.ShortMessage].String(); s != "from the form" {
			t.Errorf("form MO %q", s)
		}
	}()
	resp, err = http.Post(hs.URL+"/mo", "application/json", strings.NewReader(`{"from":"+12015550123","to":"+12015550100","text":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "sent\n" {
		t.Errorf("POST /mo json: %d %q", resp.StatusCode, body)
	}
	resp, err = http.PostForm(hs.URL+"/mo", url.Values{"from": {"+12015550123"}, "to": {"+12015550100"}, "text": {"from the form"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("POST /mo form: %d", resp.StatusCode)
	}
	wg.Wait()

	resp, _ = http.PostForm(hs.URL+"/mo", url.Values{"text": {"x"}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("POST /mo without from/to: %d", resp.StatusCode)
	}

	c.submit(sub{src: "12015550100", dst: "12015550123", sm: []byte("<b>hello</b>")})
	c.expect(pdu.SubmitSMRespID)
	srv.WaitMessages(ctxT(t), 1)
	resp, err = http.Get(hs.URL + "/messages")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []Message
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(msgs) != 1 || msgs[0].Text != "<b>hello</b>" || msgs[0].Dest != "12015550123" || msgs[0].State != "DELIVRD" {
		t.Errorf("GET /messages: %+v", msgs)
	}
	resp, _ = http.Get(hs.URL + "/inbox/+12015550123")
	var in []InboxMessage
	json.NewDecoder(resp.Body).Decode(&in)
	resp.Body.Close()
	if len(in) != 1 || in[0].Text != "<b>hello</b>" {
		t.Errorf("GET /inbox: %+v", in)
	}
	resp, _ = http.Get(hs.URL + "/")
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(page, []byte(`action="/mo"`)) || !bytes.Contains(page, []byte("&lt;b&gt;hello")) {
		t.Errorf("GET / page:\n%s", page)
	}
}

func TestDropSessionsAndShutdown(t *testing.T) {
	srv, addr := newTestServer(t, Config{})
	c := bound(t, addr, pdu.NewBindTransceiver)
	srv.DropSessions()
	if _, _, err := c.readFrame(2 * time.Second); err != io.EOF {
		t.Errorf("after DropSessions: %v", err)
	}
	waitFor(t, func() bool { return srv.Bound() == 0 })

	c = bound(t, addr, pdu.NewBindTransceiver)
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctxT(t)) }()
	h, _, _ := c.expect(pdu.UnbindID)
	c.writeRaw(pdu.UnbindRespID, 0, h.Seq, nil)
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("listener still open after Shutdown")
	}
}

func TestCloseEndsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	srv := NewServer(Config{ReceiptDelay: time.Hour, Logger: zerolog.Nop()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr, err := srv.Start("")
	if err != nil {
		t.Fatal(err)
	}
	var clients []*client
	for _, a := range []string{ln.Addr().String(), addr, addr} {
		c := bound(t, a, pdu.NewBindTransceiver)
		c.submit(sub{src: "1", dst: "2", rd: 1, sm: []byte("pending receipt")})
		c.expect(pdu.SubmitSMRespID)
		clients = append(clients, c)
	}
	dial(t, addr) // connected, never bound
	moErr := make(chan error, 1)
	go func() { moErr <- srv.SendMO(context.Background(), "+12015550123", "+12015550100", "never answered") }()
	clients[0].expect(pdu.DeliverSMID)

	srv.Close()
	if err := <-served; !errors.Is(err, ErrClosed) {
		t.Errorf("Serve returned %v", err)
	}
	if err := <-moErr; !errors.Is(err, ErrClosed) {
		t.Errorf("SendMO during Close: %v", err)
	}
	if _, err := srv.WaitMessages(context.Background(), 100); !errors.Is(err, ErrClosed) {
		t.Errorf("WaitMessages after Close: %v", err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSplitText(t *testing.T) {
	for _, tc := range []struct {
		text  string
		parts []int // octets per part
		dc    byte
	}{
		{"", []int{0}, 0},
		{strings.Repeat("a", 160), []int{160}, 0},
		{strings.Repeat("a", 161), []int{153, 8}, 0},
		{strings.Repeat("€", 80), []int{160}, 0},
		{strings.Repeat("€", 81), []int{152, 10}, 0},
		{strings.Repeat("ж", 70), []int{140}, 8},
		{strings.Repeat("ж", 71), []int{134, 8}, 8},
		{strings.Repeat("ж", 66) + "😀" + "abc", []int{132, 10}, 8},
	} {
		parts, dc, err := splitText(tc.text)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, p := range parts {
			got = append(got, len(p))
		}
		if dc != tc.dc || fmt.Sprint(got) != fmt.Sprint(tc.parts) {
			t.Errorf("split %.12q…: dc %d parts %v, want dc %d parts %v", tc.text, dc, got, tc.dc, tc.parts)
		}
	}
	if _, _, err := splitText(strings.Repeat("a", 153*256)); !errors.Is(err, errTooManyParts) {
		t.Errorf("256 parts: %v", err)
	}
}

// BenchmarkSink measures how many submit_sm per second the server absorbs
// over loopback with receipts off, pipelined on one or more binds.
func BenchmarkSink(b *testing.B) {
	for _, conns := range []int{1, 4} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			srv, addr := newTestServer(b, Config{})
			p := pdu.NewSubmitSM(nil)
			f := p.Fields()
			f.Set(pdufield.SourceAddrTON, 1)
			f.Set(pdufield.SourceAddrNPI, 1)
			f.Set(pdufield.SourceAddr, "12015550100")
			f.Set(pdufield.DestAddrTON, 1)
			f.Set(pdufield.DestAddrNPI, 1)
			f.Set(pdufield.DestinationAddr, "12015550123")
			f.Set(pdufield.ShortMessage, []byte("benchmark message of a typical length, sixty-odd characters."))
			var tmpl bytes.Buffer
			p.SerializeTo(&tmpl)

			clients := make([]*client, conns)
			for i := range clients {
				clients[i] = bound(b, addr, pdu.NewBindTransmitter)
			}
			per := (b.N + conns - 1) / conns
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for _, c := range clients {
				wg.Add(2)
				go func() { // writer: pipelined, no window
					defer wg.Done()
					bw := bufio.NewWriterSize(c.conn, 64<<10)
					frame := append([]byte(nil), tmpl.Bytes()...)
					for i := 1; i <= per; i++ {
						frame[12], frame[13], frame[14], frame[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
						bw.Write(frame)
					}
					bw.Flush()
				}()
				go func() {
					defer wg.Done()
					hb := make([]byte, 16)
					for got := 0; got < per; {
						c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
						if _, err := io.ReadFull(c.br, hb); err != nil {
							b.Error(err)
							return
						}
						n := int(hb[0])<<24 | int(hb[1])<<16 | int(hb[2])<<8 | int(hb[3])
						if _, err := c.br.Discard(n - 16); err != nil {
							b.Error(err)
							return
						}
						if hb[7] == 0x04 { // submit_sm_resp
							got++
						}
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(per*conns)/el.Seconds(), "msg/s")
			_ = srv
		})
	}
}

// fiorixSubmit decodes a submit_sm with fiorix's codec: the oracle for parseSM.
func fiorixSubmit(frame []byte) (*smPDU, error) {
	p, err := pdu.Decode(bytes.NewReader(frame))
	if err != nil {
		return nil, err
	}
	f := p.Fields()
	sm, ok := f[pdufield.ShortMessage]
	if !ok {
		return nil, errors.New("truncated") // fiorix stops silently at the end of input
	}
	m := &smPDU{
		ServiceType:        fieldString(f, pdufield.ServiceType),
		Source:             fieldString(f, pdufield.SourceAddr),
		Dest:               fieldString(f, pdufield.DestinationAddr),
		SourceTON:          fieldByte(f, pdufield.SourceAddrTON),
		SourceNPI:          fieldByte(f, pdufield.SourceAddrNPI),
		DestTON:            fieldByte(f, pdufield.DestAddrTON),
		DestNPI:            fieldByte(f, pdufield.DestAddrNPI),
		ESMClass:           fieldByte(f, pdufield.ESMClass),
		RegisteredDelivery: fieldByte(f, pdufield.RegisteredDelivery),
		DataCoding:         fieldByte(f, pdufield.DataCoding),
		ShortMessage:       sm.Bytes(),
	}
	if t := p.TLVFields(); len(t) > 0 {
		m.TLVs = make(map[uint16][]byte)
		for tag, v := range t {
			m.TLVs[uint16(tag)] = v.Bytes()
		}
	}
	return m, nil
}

func FuzzParseSubmit(f *testing.F) {
	for _, s := range []sub{
		{src: "12015550100", dst: "12015550123", rd: 1, sm: []byte("hello")},
		{src: "Switchboard", dst: "12015550123", esm: 0x40, dc: 8, sm: []byte{5, 0, 3, 1, 2, 1, 0, 'h'}},
		{src: "1", dst: "2", sm: nil, tlv: pdutlv.Fields{pdutlv.TagMessagePayload: []byte("payload"), pdutlv.TagSarMsgRefNum: []byte{0, 1}}},
	} {
		p := pdu.NewSubmitSM(s.tlv)
		fl := p.Fields()
		fl.Set(pdufield.SourceAddr, s.src)
		fl.Set(pdufield.DestinationAddr, s.dst)
		fl.Set(pdufield.ESMClass, s.esm)
		fl.Set(pdufield.DataCoding, s.dc)
		fl.Set(pdufield.RegisteredDelivery, s.rd)
		fl.Set(pdufield.ShortMessage, s.sm)
		var b bytes.Buffer
		p.SerializeTo(&b)
		f.Add(b.Bytes()[16:])
		f.Add(b.Bytes()[16 : b.Len()-3])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body)+16 > pdu.MaxSize {
			return
		}
		frame := finish(append(newFrame(len(body), pdu.SubmitSMID, 0, 1), body...))
		want, werr := fiorixSubmit(frame)
		got, gerr := parseSM(body, false)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("fiorix err %v, parseSM err %v", werr, gerr)
		}
		if werr != nil {
			return
		}
		if len(want.TLVs) == 0 {
			want.TLVs = nil
		}
		if len(got.TLVs) == 0 {
			got.TLVs = nil
		}
		if len(want.ShortMessage) == 0 {
			want.ShortMessage = nil
		}
		if len(got.ShortMessage) == 0 {
			got.ShortMessage = nil
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("fiorix %+v\nparseSM %+v", *want, *got)
		}
	})
}

func FuzzMessageText(f *testing.F) {
	f.Add(byte(0x40), byte(0), []byte{5, 0, 3, 1, 2, 1, 'h', 0x1B})
	f.Add(byte(0x40), byte(8), []byte{6, 8, 4, 1, 2, 3, 1, 0xD8, 0x3D, 0xDE})
	f.Add(byte(0), byte(0xF0), []byte("caf\xc3\xa9"))
	f.Fuzz(func(t *testing.T, esm, dc byte, sm []byte) {
		text := sm
		if esm&esmUDHI != 0 {
			if hdr, rest, ok := udh(sm); ok {
				if c := concatFromUDH(hdr); c != nil && len(hdr) < 5 {
					t.Fatalf("concat %+v from a %d-octet UDH", c, len(hdr))
				}
				text = rest
			}
		}
		decodeText(dc, text)
	})
}

func TestSetConfigAndValidate(t *testing.T) {
	srv, addr := newTestServer(t, Config{})
	c := bound(t, addr, pdu.NewBindTransceiver)
	srv.SetConfig(func(c *Config) { c.Outcome = OutcomeFailed; c.IDFormat = IDDecimal })
	c.submit(sub{src: "12015550100", dst: "12015550123", rd: 2, sm: []byte("x")}) // failure-only receipt
	_, p, _ := c.expect(pdu.SubmitSMRespID)
	if id := p.Fields()[pdufield.MessageID].String(); !regexp.MustCompile(`^\d+$`).MatchString(id) {
		t.Errorf("id %q after switching to decimal", id)
	}
	h, d, _ := c.expect(pdu.DeliverSMID)
	c.respond(pdu.DeliverSMRespID, h.Seq, 0)
	if !strings.Contains(d.Fields()[pdufield.ShortMessage].String(), "stat:UNDELIV") {
		t.Errorf("receipt %q", d.Fields()[pdufield.ShortMessage])
	}
	if in := srv.Inbox("12015550123"); len(in) != 0 {
		t.Errorf("failed message reached the inbox: %+v", in)
	}
	bad := Config{Outcome: "lost", ReceiptMode: "smoke", IDFormat: "octal"}
	if err := bad.Validate(); err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("Validate: %v", err)
	}
}
