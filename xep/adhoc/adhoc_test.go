package adhoc

import (
	"bytes"
	"encoding/xml"
	"errors"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"

	"switchboard/xep/dataform"
)

// TestAllows: execute and cancel are always allowed, prev, next and
// complete only when offered, anything else never.
func TestAllows(t *testing.T) {
	for _, tc := range []struct {
		a       *Actions
		allowed []string
		refused []string
	}{
		{nil, []string{"", Execute, Cancel}, []string{Prev, Next, Complete, "frobnicate"}},
		{NextActions(false), []string{Execute, Cancel, Next}, []string{Prev, Complete}},
		{NextActions(true), []string{Execute, Cancel, Complete}, []string{Prev, Next}},
	} {
		for _, a := range tc.allowed {
			if !tc.a.Allows(a) {
				t.Errorf("%+v does not allow %q", tc.a, a)
			}
		}
		for _, a := range tc.refused {
			if tc.a.Allows(a) {
				t.Errorf("%+v allows %q", tc.a, a)
			}
		}
	}
	for _, a := range []string{"", Execute, Cancel, Prev, Next, Complete} {
		if !Known(a) {
			t.Errorf("%q is not known", a)
		}
	}
	if Known("Next") || Known("frobnicate") {
		t.Error("an unknown action is known")
	}
}

// TestFail: each specific condition comes with the general condition and
// type of XEP-0050 §4.6, after the text, and the failure is a stanza error
// to errors.As.
func TestFail(t *testing.T) {
	for _, tc := range []struct {
		specific, want string
	}{
		{BadAction, `<error type="modify"><bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></bad-request><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">no</text><bad-action xmlns="http://jabber.org/protocol/commands"></bad-action></error>`},
		{SessionExpired, `<error type="cancel"><not-allowed xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></not-allowed><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">no</text><session-expired xmlns="http://jabber.org/protocol/commands"></session-expired></error>`},
	} {
		var b bytes.Buffer
		e := xml.NewEncoder(&b)
		f := Fail(tc.specific, "no")
		if _, err := xmlstream.Copy(e, f.TokenReader()); err != nil {
			t.Fatal(err)
		}
		if err := e.Flush(); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.specific, b.String(), tc.want)
		}
		var se stanza.Error
		if !errors.As(error(f), &se) || se.Condition != f.Stanza.Condition {
			t.Errorf("%s: errors.As finds %v", tc.specific, se)
		}
	}
}

// TestEffectiveAction: no action is execute; a form sent back of type
// cancel is a cancel whatever the action.
func TestEffectiveAction(t *testing.T) {
	for _, tc := range []struct {
		c    Command
		want string
	}{
		{Command{}, Execute},
		{Command{Action: Next}, Next},
		{Command{Form: &dataform.Form{Type: dataform.TypeSubmit}}, Execute},
		{Command{Form: &dataform.Form{Type: dataform.TypeCancel}}, Cancel},
		{Command{Action: Complete, Form: &dataform.Form{Type: dataform.TypeCancel}}, Cancel},
	} {
		if got := tc.c.EffectiveAction(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.c, got, tc.want)
		}
	}
}
