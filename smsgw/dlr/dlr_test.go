package dlr

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func date(y, mo, d, h, mi, s int) time.Time {
	return time.Date(y, time.Month(mo), d, h, mi, s, 0, time.UTC)
}

var textTests = []struct {
	name string
	in   string
	want Receipt
	err  bool
}{
	{
		name: "kannel",
		in:   "id:0123456789 sub:001 dlvrd:001 submit date:2501021530 done date:2501021531 stat:DELIVRD err:000 text:Hello world",
		want: Receipt{ID: "0123456789", State: Delivered, Err: "000", Submitted: 1, Done: 1,
			SubmitDate: date(2025, 1, 2, 15, 30, 0), DoneDate: date(2025, 1, 2, 15, 31, 0), Text: "Hello world"},
	},
	{
		name: "jasmin order and uuid id",
		in:   "id:a6e3a9a8-6d0e-4b0a-9d3a-7d5a2f1a4b1c submit date:1905301240 done date:1905301241 stat:UNDELIV sub:001 dlvrd:000 err:034 text:-",
		want: Receipt{ID: "a6e3a9a8-6d0e-4b0a-9d3a-7d5a2f1a4b1c", State: Undeliverable, Err: "034", Submitted: 1,
			SubmitDate: date(2019, 5, 30, 12, 40, 0), DoneDate: date(2019, 5, 30, 12, 41, 0), Text: "-"},
	},
	{
		name: "upper-case keys, lower-case state",
		in:   "ID:7F3A SUB:001 DLVRD:001 SUBMIT DATE:2412312359 DONE DATE:2501010000 STAT:delivrd ERR:0 TEXT:Happy new year",
		want: Receipt{ID: "7F3A", State: Delivered, Err: "0", Submitted: 1, Done: 1,
			SubmitDate: date(2024, 12, 31, 23, 59, 0), DoneDate: date(2025, 1, 1, 0, 0, 0), Text: "Happy new year"},
	},
	{
		name: "12-digit dates, capital Text",
		in:   "id:44012 sub:001 dlvrd:001 submit date:250102153045 done date:250102153112 stat:DELIVRD err:000 Text:Your code is 1234",
		want: Receipt{ID: "44012", State: Delivered, Err: "000", Submitted: 1, Done: 1,
			SubmitDate: date(2025, 1, 2, 15, 30, 45), DoneDate: date(2025, 1, 2, 15, 31, 12), Text: "Your code is 1234"},
	},
	{
		name: "no text field",
		in:   "id:1234567 sub:001 dlvrd:000 submit date:2503041200 done date:2503051200 stat:EXPIRED err:000",
		want: Receipt{ID: "1234567", State: Expired, Err: "000", Submitted: 1,
			SubmitDate: date(2025, 3, 4, 12, 0, 0), DoneDate: date(2025, 3, 5, 12, 0, 0)},
	},
	{
		name: "extra spaces everywhere",
		in:   "  id:  998877   sub: 001  dlvrd:001   submit  date: 2501021530 done date:2501021531   stat: DELIVRD  err:000   text:  hi  ",
		want: Receipt{ID: "998877", State: Delivered, Err: "000", Submitted: 1, Done: 1,
			SubmitDate: date(2025, 1, 2, 15, 30, 0), DoneDate: date(2025, 1, 2, 15, 31, 0), Text: "hi"},
	},
	{
		name: "text swallows look-alike fields",
		in:   "id:42 stat:DELIVRD text:stat:REJECTD id:43 err:999",
		want: Receipt{ID: "42", State: Delivered, Text: "stat:REJECTD id:43 err:999"},
	},
	{
		name: "empty values are missing",
		in:   "id:5 sub: dlvrd: submit date: done date: stat:ACCEPTD err: text:",
		want: Receipt{ID: "5", State: Accepted},
	},
	{
		name: "underscored keys, space before colon, unknown keys",
		in:   "id : abc-DEF-1 mcc:310 mnc:260 submit_date:2501021530 done_date:2501021531 stat:REJECTD err:0x0B imsi:310260000000000",
		want: Receipt{ID: "abc-DEF-1", State: Rejected, Err: "0x0B",
			SubmitDate: date(2025, 1, 2, 15, 30, 0), DoneDate: date(2025, 1, 2, 15, 31, 0)},
	},
	{
		name: "long state spelling",
		in:   "id:9 stat:Delivered",
		want: Receipt{ID: "9", State: Delivered},
	},
	{
		name: "numeric state",
		in:   "id:9 stat:5",
		want: Receipt{ID: "9", State: Undeliverable},
	},
	{
		name: "unknown state kept in upper case",
		in:   "id:9 stat:Failed err:069",
		want: Receipt{ID: "9", State: "FAILED", Err: "069"},
	},
	{
		name: "impossible and short dates are zero",
		in:   "id:9 submit date:2502301200 done date:25010215 stat:DELETED",
		want: Receipt{ID: "9", State: Deleted},
	},
	{
		name: "trailing NULs and CRLF",
		in:   "id:77 stat:DELIVRD text:ok\r\n\x00\x00",
		want: Receipt{ID: "77", State: Delivered, Text: "ok"},
	},
	{
		name: "first of a repeated key wins",
		in:   "id:1 id:2 stat:ENROUTE stat:DELIVRD",
		want: Receipt{ID: "1", State: Enroute},
	},
	{
		name: "huge counts are zero",
		in:   "id:1 sub:99999999999999999999 dlvrd:-1 stat:DELIVRD",
		want: Receipt{ID: "1", State: Delivered},
	},
	{name: "missing id", in: "sub:001 dlvrd:001 stat:DELIVRD err:000", want: Receipt{State: Delivered, Submitted: 1, Done: 1, Err: "000"}, err: true},
	{name: "missing stat", in: "id:123 sub:001 dlvrd:001 err:000", want: Receipt{ID: "123", Submitted: 1, Done: 1, Err: "000"}, err: true},
	{name: "plain message", in: "Hello, are you coming tonight?", err: true},
	{name: "empty", in: "", err: true},
	{name: "colons only", in: ":::: : :", err: true},
}

func TestParseText(t *testing.T) {
	for _, tt := range textTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseText(tt.in)
			if tt.err != (err != nil) {
				t.Fatalf("ParseText(%q) error = %v, want error %v", tt.in, err, tt.err)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			if got != tt.want {
				t.Errorf("ParseText(%q)\n got  %+v\n want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func tlv(pairs ...any) map[uint16][]byte {
	m := make(map[uint16][]byte)
	for i := 0; i < len(pairs); i += 2 {
		m[pairs[i].(uint16)] = pairs[i+1].([]byte)
	}
	return m
}

func TestParse(t *testing.T) {
	const kannel = "id:1a2b3c sub:001 dlvrd:001 submit date:2501021530 done date:2501021531 stat:DELIVRD err:000 text:Hello"
	tests := []struct {
		name string
		esm  byte
		sm   string
		tlvs map[uint16][]byte
		want Receipt
		ok   bool
		err  bool
	}{
		{
			name: "smsc receipt, text only",
			esm:  0x04, sm: kannel, ok: true,
			want: Receipt{ID: "1a2b3c", State: Delivered, Err: "000", Submitted: 1, Done: 1,
				SubmitDate: date(2025, 1, 2, 15, 30, 0), DoneDate: date(2025, 1, 2, 15, 31, 0), Text: "Hello"},
		},
		{
			name: "hex id in text, decimal id and state in TLVs",
			esm:  0x04, sm: kannel, ok: true,
			tlvs: tlv(TagReceiptedMessageID, []byte("1715004\x00"), TagMessageState, []byte{5}, TagNetworkErrorCode, []byte{3, 0, 1}),
			want: Receipt{ID: "1715004", State: Undeliverable, Err: "001", Submitted: 1, Done: 1,
				SubmitDate: date(2025, 1, 2, 15, 30, 0), DoneDate: date(2025, 1, 2, 15, 31, 0), Text: "Hello"},
		},
		{
			name: "TLV-only receipt",
			esm:  0x04, ok: true,
			tlvs: tlv(TagReceiptedMessageID, []byte("0000A1B2\x00"), TagMessageState, []byte{2}),
			want: Receipt{ID: "0000A1B2", State: Delivered},
		},
		{
			name: "TLVs with esm_class 0",
			esm:  0x00, ok: true,
			tlvs: tlv(TagReceiptedMessageID, []byte("77"), TagMessageState, []byte{8}, TagNetworkErrorCode, []byte{3, 0x01, 0x2c}),
			want: Receipt{ID: "77", State: Rejected, Err: "300"},
		},
		{
			name: "data_sm receipt in message_payload",
			esm:  0x04, ok: true,
			tlvs: tlv(TagMessagePayload, []byte("id:55 stat:EXPIRED err:000")),
			want: Receipt{ID: "55", State: Expired, Err: "000"},
		},
		{
			name: "out-of-range message_state falls back to the text",
			esm:  0x04, sm: "id:9 stat:DELIVRD", ok: true,
			tlvs: tlv(TagMessageState, []byte{0}),
			want: Receipt{ID: "9", State: Delivered},
		},
		{
			name: "out-of-range message_state and no text state",
			esm:  0x04, sm: "id:9", ok: true,
			tlvs: tlv(TagMessageState, []byte{42}),
			want: Receipt{ID: "9", State: Unknown},
		},
		{
			name: "SME delivery ack", esm: 0x08, sm: "id:1 stat:DELIVRD", ok: true,
			want: Receipt{ID: "1", State: Delivered},
		},
		{
			name: "manual ack", esm: 0x10, sm: "id:1 stat:DELIVRD", ok: true,
			want: Receipt{ID: "1", State: Delivered},
		},
		{
			name: "intermediate notification", esm: 0x20, sm: "id:1 stat:ENROUTE", ok: true,
			want: Receipt{ID: "1", State: Enroute},
		},
		{
			name: "receipt with UDHI and priority bits", esm: 0xC4, sm: "id:1 stat:DELIVRD", ok: true,
			want: Receipt{ID: "1", State: Delivered},
		},
		{name: "ordinary MO", esm: 0x00, sm: kannel, ok: false},
		{name: "MO with UDHI", esm: 0x40, sm: "hello", ok: false},
		{name: "conversation abort is not a receipt", esm: 0x18, sm: kannel, ok: false},
		{name: "network_error_code alone is not a receipt", esm: 0x00, tlvs: tlv(TagNetworkErrorCode, []byte{3, 0, 1}), ok: false},
		{name: "receipt flag, garbage text", esm: 0x04, sm: "\x05\x00\x03\x01\x02\x01garbage", ok: true, err: true},
		{name: "receipt flag, nothing at all", esm: 0x04, ok: true, err: true},
		{
			name: "receipted_message_id but no state anywhere", esm: 0x00, ok: true, err: true,
			tlvs: tlv(TagReceiptedMessageID, []byte("abc\x00")),
			want: Receipt{ID: "abc"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := Parse(tt.esm, []byte(tt.sm), tt.tlvs)
			if ok != tt.ok || (err != nil) != tt.err {
				t.Fatalf("Parse = ok %v, err %v; want ok %v, error %v", ok, err, tt.ok, tt.err)
			}
			if tt.err || !tt.ok {
				if tt.want != (Receipt{}) && got != tt.want {
					t.Errorf("partial receipt\n got  %+v\n want %+v", got, tt.want)
				}
				return
			}
			if got != tt.want {
				t.Errorf("Parse\n got  %+v\n want %+v", got, tt.want)
			}
		})
	}
}

func TestIsReceipt(t *testing.T) {
	for esm := 0; esm < 256; esm++ {
		want := false
		switch esm & 0x3C {
		case 0x04, 0x08, 0x10, 0x20:
			want = true
		}
		if got := IsReceipt(byte(esm)); got != want {
			t.Errorf("IsReceipt(%#02x) = %v, want %v", esm, got, want)
		}
	}
}

// TestIsIntermediate: only esm_class 0x20 in bits 2-5 marks an
// intermediate delivery notification (SMPP 3.4 §5.2.12), whatever the
// other bits.
func TestIsIntermediate(t *testing.T) {
	for esm := 0; esm < 256; esm++ {
		if got, want := IsIntermediate(byte(esm)), esm&0x3C == 0x20; got != want {
			t.Errorf("IsIntermediate(%#02x) = %v, want %v", esm, got, want)
		}
	}
}

func TestState(t *testing.T) {
	tests := []struct {
		s                       State
		final, settles, success bool
	}{
		{Enroute, false, false, false},
		{Accepted, false, false, false},
		{"BUFFRED", false, false, false},
		{"BUFFERD", false, false, false},
		{"ACKED", false, false, false},
		{Delivered, true, true, true},
		{Expired, true, true, false},
		{Deleted, true, true, false},
		{Undeliverable, true, true, false},
		{Rejected, true, true, false},
		{Unknown, true, false, false},
		{Skipped, true, true, false},
		{"FAILED", true, true, false},
		{"", false, false, false},
	}
	for _, tt := range tests {
		if unknown := tt.s == "FAILED" || tt.s == ""; tt.s.Known() == unknown {
			t.Errorf("%q.Known() = %v", tt.s, tt.s.Known())
		}
		if got := tt.s.Final(); got != tt.final {
			t.Errorf("%q.Final() = %v, want %v", tt.s, got, tt.final)
		}
		if got := tt.s.Settles(); got != tt.settles {
			t.Errorf("%q.Settles() = %v, want %v", tt.s, got, tt.settles)
		}
		if got := tt.s.Success(); got != tt.success {
			t.Errorf("%q.Success() = %v, want %v", tt.s, got, tt.success)
		}
	}
	want := []State{Unknown, Enroute, Delivered, Expired, Deleted, Undeliverable, Accepted, Unknown, Rejected, Skipped, Unknown}
	for v, w := range want {
		if got := StateFromTLV(byte(v)); got != w {
			t.Errorf("StateFromTLV(%d) = %q, want %q", v, got, w)
		}
	}
}

func TestIDForms(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"1a2b3c", []string{"1a2b3c", "1715004"}},
		{"1715004", []string{"1715004", "24203268", "1a2b3c"}},
		{"12345", []string{"12345", "74565", "3039"}},
		{"3039", []string{"3039", "12345", "bdf"}},
		{" 0001A2B3C\x00", []string{"1a2b3c", "1715004"}},
		{"000", []string{"0"}},
		{"10", []string{"10", "16", "a"}},
		{"a6e3a9a8-6d0e-4b0a-9d3a-7d5a2f1a4b1c", []string{"a6e3a9a8-6d0e-4b0a-9d3a-7d5a2f1a4b1c"}},
		{"MSG-0042", []string{"msg-0042"}},
		{"ffffffffffffffff", []string{"ffffffffffffffff", "18446744073709551615"}},
		{"10000000000000000", []string{"10000000000000000", "2386f26fc10000"}}, // too big as hex
		{"99999999999999999999", []string{"99999999999999999999"}},             // too big either way
		{"", nil},
		{" \x00 ", nil},
	}
	for _, tt := range tests {
		got := IDForms(tt.in)
		if !slices.Equal(got, tt.want) {
			t.Errorf("IDForms(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if c := Canonical(tt.in); len(got) > 0 && c != got[0] || len(got) == 0 && c != "" {
			t.Errorf("Canonical(%q) = %q, want first of %q", tt.in, c, got)
		}
	}

	long := "ABCDEFGHIJ0123456789ABCDEFGHIJ0123456789ABCDEFGHIJ0123456789ABCDE"
	if got := IDForms(" " + long + "\x00"); !slices.Equal(got, []string{long}) {
		t.Errorf("IDForms(65 chars) = %q, want it as-is", got)
	}
	if got := Canonical(long); got != long {
		t.Errorf("Canonical(65 chars) = %q, want it as-is", got)
	}
}

// TestIDFormsMatch checks the matching the router relies on: the id from
// submit_sm_resp and the one from the receipt share a form.
func TestIDFormsMatch(t *testing.T) {
	pairs := []struct{ a, b string }{
		{"1a2b3c", "1715004"},
		{"1715004", "1A2B3C"},
		{"12345", "3039"},
		{"00012345", "3039"},
		{"abc-1", "ABC-1"},
	}
	for _, p := range pairs {
		if !share(IDForms(p.a), IDForms(p.b)) {
			t.Errorf("IDForms(%q) = %q and IDForms(%q) = %q share no form", p.a, IDForms(p.a), p.b, IDForms(p.b))
		}
	}
	if share(IDForms("abc-1"), IDForms("abc-2")) {
		t.Error("different ids share a form")
	}
}

func share(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

func TestFormatText(t *testing.T) {
	r := Receipt{
		ID: "1715004", State: Delivered, Submitted: 1, Done: 1,
		SubmitDate: date(2025, 1, 2, 15, 30, 45),
		DoneDate:   time.Date(2025, 1, 2, 16, 31, 0, 0, time.FixedZone("CET", 3600)),
		Text:       "Grüße aus Berlin, bis morgen früh!",
	}
	const want = "id:1715004 sub:001 dlvrd:001 submit date:2501021530 done date:2501021531 stat:DELIVRD err:000 text:Grüße aus Berlin, bi"
	got := FormatText(r)
	if got != want {
		t.Fatalf("FormatText\n got  %q\n want %q", got, want)
	}
	back, err := ParseText(got)
	if err != nil {
		t.Fatal(err)
	}
	wantBack := Receipt{ID: "1715004", State: Delivered, Err: "000", Submitted: 1, Done: 1,
		SubmitDate: date(2025, 1, 2, 15, 30, 0), DoneDate: date(2025, 1, 2, 15, 31, 0), Text: "Grüße aus Berlin, bi"}
	if back != wantBack {
		t.Errorf("round trip\n got  %+v\n want %+v", back, wantBack)
	}

	if got, want := FormatText(Receipt{ID: "x"}), "id:x sub:000 dlvrd:000 submit date:0000000000 done date:0000000000 stat:UNKNOWN err:000 text:"; got != want {
		t.Errorf("FormatText(zero)\n got  %q\n want %q", got, want)
	}
}

func BenchmarkParseText(b *testing.B) {
	const s = "id:0123456789 sub:001 dlvrd:001 submit date:2501021530 done date:2501021531 stat:DELIVRD err:000 text:Hello world"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseText(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	sm := []byte("id:1a2b3c sub:001 dlvrd:001 submit date:2501021530 done date:2501021531 stat:DELIVRD err:000 text:Hello")
	tlvs := tlv(TagReceiptedMessageID, []byte("1715004\x00"), TagMessageState, []byte{2})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Parse(0x04, sm, tlvs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIDForms(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if f := IDForms("0001A2B3C"); len(f) != 2 {
			b.Fatal(f)
		}
	}
}
