package dlr

import (
	"slices"
	"testing"
	"unicode/utf8"
)

var textSeeds = []string{
	"id:0123456789 sub:001 dlvrd:001 submit date:2501021530 done date:2501021531 stat:DELIVRD err:000 text:Hello world",
	"id:a6e3a9a8-6d0e-4b0a-9d3a-7d5a2f1a4b1c submit date:1905301240 done date:1905301241 stat:UNDELIV sub:001 dlvrd:000 err:034 text:-",
	"ID:7F3A SUB:001 DLVRD:001 SUBMIT DATE:2412312359 DONE DATE:2501010000 STAT:delivrd ERR:0 TEXT:x",
	"id:44012 submit date:250102153045 done date:250102153112 stat:DELIVRD Text:Your code is 1234",
	"id : abc mcc:310 submit_date:2502301200 stat:5 text:stat:REJECTD",
	"id: stat: text:",
	"submit done date date: : id:id:id",
	"",
}

func FuzzParseText(f *testing.F) {
	for _, s := range textSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseText(s)
		if err != nil {
			return
		}
		if r.ID == "" || r.State == "" {
			t.Fatalf("ParseText(%q) = %+v without error", s, r)
		}
		// What parsed must survive the standard form.
		back, err := ParseText(FormatText(r))
		if err != nil {
			t.Fatalf("ParseText(FormatText(%+v)): %v", r, err)
		}
		if back.ID != r.ID || back.State != r.State || r.Err != "" && back.Err != r.Err ||
			back.Submitted != r.Submitted || back.Done != r.Done {
			t.Fatalf("round trip of %q\n got  %+v\n want %+v", s, back, r)
		}
		if utf8.ValidString(r.Text) && len(r.Text) < 20 && back.Text != r.Text {
			t.Fatalf("round trip of text %q gave %q", r.Text, back.Text)
		}
	})
}

func FuzzParse(f *testing.F) {
	for i, s := range textSeeds {
		f.Add(byte(0x04), []byte(s), []byte(nil), []byte(nil), []byte(nil), byte(i))
	}
	f.Add(byte(0x00), []byte("hello"), []byte(nil), []byte(nil), []byte(nil), byte(0))
	f.Add(byte(0x00), []byte(nil), []byte("1715004\x00"), []byte{2}, []byte{3, 0, 1}, byte(7))
	f.Add(byte(0x20), []byte("id:1a2b3c stat:ENROUTE"), []byte("1715004\x00"), []byte{0}, []byte{1}, byte(3))
	f.Add(byte(0x04), []byte(nil), []byte(nil), []byte(nil), []byte(nil), byte(8))
	f.Fuzz(func(t *testing.T, esm byte, sm, id, state, nerr []byte, present byte) {
		// present selects which TLVs exist, so that an empty value and an
		// absent TLV are both explored; bit 3 moves the text to message_payload.
		tlvs := make(map[uint16][]byte)
		if present&1 != 0 {
			tlvs[TagReceiptedMessageID] = id
		}
		if present&2 != 0 {
			tlvs[TagMessageState] = state
		}
		if present&4 != 0 {
			tlvs[TagNetworkErrorCode] = nerr
		}
		if present&8 != 0 {
			tlvs[TagMessagePayload] = sm
			sm = nil
		}
		r, ok, err := Parse(esm, sm, tlvs)
		if !ok {
			if err != nil || r != (Receipt{}) {
				t.Fatalf("not a receipt, but r=%+v err=%v", r, err)
			}
			if IsReceipt(esm) || present&3 != 0 {
				t.Fatalf("ok=false for esm %#x with receipt TLVs %b", esm, present&3)
			}
			return
		}
		if err == nil && (r.State == "" || r.ID == "") {
			t.Fatalf("Parse = %+v, ok, no error", r)
		}
	})
}

func FuzzIDForms(f *testing.F) {
	for _, s := range []string{
		"1a2b3c", "1715004", "12345", "3039", " 0001A2B3C\x00", "000", "0", "10", "00 x",
		"a6e3a9a8-6d0e-4b0a-9d3a-7d5a2f1a4b1c", "ffffffffffffffff", "18446744073709551616", "MSG-0042", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		forms := IDForms(s)
		if len(forms) > 3 {
			t.Fatalf("IDForms(%q) = %q: more than 3", s, forms)
		}
		c := Canonical(s)
		if len(forms) == 0 {
			if c != "" {
				t.Fatalf("Canonical(%q) = %q, IDForms empty", s, c)
			}
			return
		}
		if c != forms[0] {
			t.Fatalf("Canonical(%q) = %q, IDForms = %q", s, c, forms)
		}
		for i, g := range forms {
			if g == "" || slices.Contains(forms[:i], g) {
				t.Fatalf("IDForms(%q) = %q: empty or duplicate form", s, forms)
			}
			again := IDForms(g)
			if !slices.Contains(again, g) || !slices.Contains(again, c) {
				t.Fatalf("IDForms(%q) = %q, but IDForms(%q) = %q", s, forms, g, again)
			}
		}
		if !slices.Equal(IDForms(c), forms) && len(forms[0]) <= maxIDLen {
			t.Fatalf("IDForms(Canonical(%q)) = %q, want %q", s, IDForms(c), forms)
		}
	})
}
