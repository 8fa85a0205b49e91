package component

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"switchboard/roster"
	"switchboard/roster/addressbook"
	"switchboard/roster/number"
	"switchboard/xep/adhoc"
)

// TestFetchPrivateRefused: unless fetching from private networks is
// allowed, a URL on loopback is refused, and the user is told that such
// addresses are not allowed, not only that the file could not be fetched —
// without the dialer's words.
func TestFetchPrivateRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "Bob, +12015550177") }))
	t.Cleanup(srv.Close)
	for _, private := range []bool{false, true} {
		c := &Component{fetcher: newFetchClient(private), log: zerolog.New(zerolog.NewTestWriter(t))}
		data, err := c.fetch(context.Background(), srv.URL+"/book.txt")
		if private {
			if err != nil || !strings.Contains(string(data), "Bob") {
				t.Errorf("fetch_private: %q, %v", data, err)
			}
			continue
		}
		if err == nil {
			t.Fatalf("loopback fetched: %q", data)
		}
		if msg := err.Error(); !strings.Contains(msg, "private") || !strings.Contains(msg, "loopback") ||
			strings.Contains(msg, "dial") || strings.Contains(msg, "not allowed\"") {
			t.Errorf("refusal = %q", msg)
		}
	}
}

// TestProblemLines: each unreadable entry of an upload is one line that
// names it once — a name that is the entry itself is not repeated.
func TestProblemLines(t *testing.T) {
	for _, c := range []struct {
		p    addressbook.Problem
		want string
	}{
		{addressbook.Problem{Line: 3, Entry: "Junk line without number", Name: "Junk line without number", Reason: addressbook.ReasonNoNumber},
			`line 3: "Junk line without number": no number`},
		{addressbook.Problem{Line: 4, Entry: "Gina", Name: "Gina", Reason: addressbook.ReasonNoNumber},
			`line 4: "Gina": no number`},
		{addressbook.Problem{Line: 5, Entry: "12", Name: "Gina", Reason: addressbook.ReasonInvalid},
			`line 5: Gina ("12"): not a valid phone number`},
		{addressbook.Problem{Line: 6, Entry: "Bob Smith; ;", Name: "Bob Smith", Reason: addressbook.ReasonNoNumber},
			`line 6: "Bob Smith; ;": no number`},
		{addressbook.Problem{Line: 7, Entry: "201-555-0100", Reason: addressbook.ReasonNoCountry},
			`line 7: "201-555-0100": number has no country code`},
		{addressbook.Problem{Line: 8, Reason: addressbook.ReasonRecord},
			`line 8: unreadable CSV record`},
		{addressbook.Problem{Line: 9, Name: "Carol", Reason: addressbook.ReasonNoNumber},
			`line 9: Carol: no number`},
	} {
		if got := problemLine(c.p); got != c.want {
			t.Errorf("%+v:\n got %s\nwant %s", c.p, got, c.want)
		}
	}
	rep := &roster.Report{Problems: []addressbook.Problem{{Line: 3, Entry: "Junk", Name: "Junk", Reason: addressbook.ReasonNoNumber}}}
	if got := notesOf(reportCommand(rep, true)); !strings.Contains(got, "1 entry could not be read:\nline 3: \"Junk\": no number") {
		t.Errorf("report notes = %s", got)
	}
	// A fetched file's lines are not read back to the user.
	if got := notesOf(reportCommand(rep, false)); !strings.Contains(got, "1 entry could not be read:\nline 3: no number") || strings.Contains(got, "Junk") {
		t.Errorf("report notes of a fetched file = %s", got)
	}
}

func notesOf(c *adhoc.Command) string {
	var b strings.Builder
	for _, n := range c.Notes {
		fmt.Fprintf(&b, "%s\n", n.Text)
	}
	return b.String()
}

// TestPublicAddr: the fetch dials only addresses on the public internet,
// however an internal one is written.
func TestPublicAddr(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		public bool
	}{
		{"93.184.215.14", true},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", true},
		{"64:ff9b::5db8:d70e", true}, // NAT64 of 93.184.215.14
		{"2002:5db8:d70e::1", true},  // 6to4 of it
		{"127.0.0.1", false},
		{"::1", false},
		{"::ffff:127.0.0.1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false},
		{"fd00:ec2::254", false},
		{"fe80::1", false},
		{"0.0.0.0", false},
		{"::", false},
		{"100.100.100.200", false}, // a cloud's metadata service
		{"100.64.0.1", false},
		{"198.18.0.1", false},
		{"192.0.0.170", false},
		{"255.255.255.255", false},
		{"240.0.0.1", false},
		{"224.0.0.1", false},
		{"64:ff9b::a9fe:a9fe", false}, // NAT64 of 169.254.169.254
		{"64:ff9b::7f00:1", false},    // NAT64 of 127.0.0.1
		{"2002:a9fe:a9fe::1", false},  // 6to4 of 169.254.169.254
		{"2002:7f00:1::1", false},
		{"fec0::1", false},
		{"2001:db8::1", false},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", false}, // Teredo
	} {
		if got := publicAddr(netip.MustParseAddr(tc.addr)); got != tc.public {
			t.Errorf("publicAddr(%s) = %v, want %v", tc.addr, got, tc.public)
		}
	}
}

// TestReportBounded: the report of a large book lists the first contacts
// only, each name cut short, and says so: its answer stays far below the
// XMPP servers' limits on a component's stanza (Prosody's 512 KiB), which
// a book of 2,000 contacts went over, closing the component's stream.
func TestReportBounded(t *testing.T) {
	rep := &roster.Report{Own: "+12015550100"}
	for i := range 10000 {
		rep.Entries = append(rep.Entries, roster.Entry{Name: strings.Repeat("n", 2000), Number: number.E164(fmt.Sprintf("+1201555%04d", i))})
	}
	cmd := reportCommand(rep, true)
	var b strings.Builder
	if err := xml.NewEncoder(&b).Encode(cmd); err != nil {
		t.Fatal(err)
	}
	if n := b.Len(); n > 128<<10 {
		t.Errorf("the report of 10,000 contacts with long names is %d bytes; want at most 128 KiB", n)
	}
	if rows := len(cmd.Form.Items); rows == 0 || rows > reportRows || !strings.Contains(notesOf(cmd), fmt.Sprintf("The table lists the first %d of your 10000 contacts", rows)) {
		t.Errorf("%d rows listed, notes %q; want some, at most %d, and a note saying how many of 10000", rows, notesOf(cmd), reportRows)
	}
	rep.Entries = rep.Entries[:3]
	if cmd := reportCommand(rep, true); len(cmd.Form.Items) != 3 || strings.Contains(notesOf(cmd), "The table lists") {
		t.Errorf("a book of 3: %d rows, notes %q; want all 3, no note", len(cmd.Form.Items), notesOf(cmd))
	}
}

// TestReportWithoutNumber: a user with no number of their own is told they
// cannot write to the contacts yet, and not that contacts will see "their
// number".
func TestReportWithoutNumber(t *testing.T) {
	rep := &roster.Report{Entries: []roster.Entry{{Name: "Bob", Number: "+12015550177", OnXMPP: true}}}
	got := notesOf(reportCommand(rep, true))
	if !strings.Contains(got, "You have no phone number on this gateway yet") || strings.Contains(got, "without your number yet") {
		t.Errorf("without a number: %s", got)
	}
	rep.Own = "+12015550100"
	got = notesOf(reportCommand(rep, true))
	if strings.Contains(got, "no phone number on this gateway") || !strings.Contains(got, "1 without your number yet") {
		t.Errorf("with a number: %s", got)
	}
}
