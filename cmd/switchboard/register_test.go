package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"switchboard/internal/testenv"
	"switchboard/smsgw/smsc"
	"switchboard/xep/adhoc"
)

// command runs one stage of an ad-hoc command and decodes the answer.
func adhocRun(t *testing.T, c *testenv.Client, to, node, session, action string, fields map[string]string) (adhoc.Command, testenv.Stanza) {
	t.Helper()
	var form string
	if fields != nil {
		form = `<x xmlns='jabber:x:data' type='submit'>`
		for k, v := range fields {
			form += fmt.Sprintf(`<field var='%s'><value>%s</value></field>`, k, v)
		}
		form += `</x>`
	}
	attrs := fmt.Sprintf(`node='%s'`, node)
	if session != "" {
		attrs += fmt.Sprintf(` sessionid='%s'`, session)
	}
	if action != "" {
		attrs += fmt.Sprintf(` action='%s'`, action)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iq, err := c.IQ(ctx, fmt.Sprintf(`<iq type='set' to='%s'><command xmlns='http://jabber.org/protocol/commands' %s>%s</command></iq>`, to, attrs, form))
	must(t, err)
	var v struct {
		Command adhoc.Command `xml:"http://jabber.org/protocol/commands command"`
	}
	if iq.Attr["type"] == "result" {
		must(t, iq.Decode(&v))
	}
	return v.Command, iq
}

func notes(c adhoc.Command) string {
	var s []string
	for _, n := range c.Notes {
		s = append(s, n.Type+": "+n.Text)
	}
	return strings.Join(s, " | ")
}

var codeRE = regexp.MustCompile(`\b(\d{6})\b`)

// lastCode waits for the n-th SMS at the simulator and reads the code in it.
func lastCode(t *testing.T, s *stack, n int, dest string) string {
	t.Helper()
	msgs, err := s.smsc.WaitMessages(ctxT(t, 15*time.Second), n)
	must(t, err)
	m := msgs[n-1]
	if m.Dest != strings.TrimPrefix(dest, "+") || m.Source != "Switchboard" || m.SourceTON != 5 {
		t.Fatalf("code SMS = %+v", m)
	}
	code := codeRE.FindString(m.Text)
	if code == "" {
		t.Fatalf("no code in %q", m.Text)
	}
	return code
}

func wrong(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

// TestRegisterCommand runs the whole verification through a real client:
// the number is normalised, the code goes out by SMS, a wrong code is
// refused with the tries left, the right one binds the number, and
// messages then leave from it.
func TestRegisterCommand(t *testing.T) {
	stores(t, func(t *testing.T, dsn string) {
		s := startStack(t, dsn, smsc.Config{}, "SWITCHBOARD_REGISTRATION_RESEND_AFTER=1s")
		comp := s.prosody.Component
		b := s.login(t, "bob")
		waitComponent(t, s, b)
		ctx := ctxT(t, 60*time.Second)

		iq, err := b.IQ(ctx, fmt.Sprintf(`<iq type='get' to='%s'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>`, comp))
		must(t, err)
		for _, node := range []string{"jabber:iq:register", "unregister", "status"} {
			if !strings.Contains(norm(iq.XML), `node="`+node+`"`) {
				t.Errorf("command %s not listed: %s", node, iq.XML)
			}
		}

		c, _ := adhocRun(t, b, comp, "jabber:iq:register", "", "execute", nil)
		if c.Status != adhoc.Executing || c.Form == nil || c.SessionID == "" {
			t.Fatalf("stage 1 = %+v", c)
		}
		sid := c.SessionID
		// A bad number keeps the form, with an error note.
		c, _ = adhocRun(t, b, comp, "jabber:iq:register", sid, "next", map[string]string{"phone": "12"})
		if c.Status != adhoc.Executing || !strings.Contains(notes(c), "not a phone number") {
			t.Fatalf("bad number = %+v", c)
		}
		c, _ = adhocRun(t, b, comp, "jabber:iq:register", sid, "next", map[string]string{"phone": "(201) 555-0142"})
		if c.Status != adhoc.Executing || c.Form == nil || !strings.Contains(strings.Join(c.Form.Instructions, " "), "+12015550142") {
			t.Fatalf("stage 2 = %+v", c)
		}
		code := lastCode(t, s, 1, "+12015550142")
		c, _ = adhocRun(t, b, comp, "jabber:iq:register", sid, "complete", map[string]string{"code": wrong(code)})
		if c.Status != adhoc.Executing || !strings.Contains(notes(c), "4 tries left") {
			t.Fatalf("wrong code = %+v", c)
		}
		c, _ = adhocRun(t, b, comp, "jabber:iq:register", sid, "complete", map[string]string{"code": code})
		if c.Status != adhoc.Completed || !strings.Contains(notes(c), "+12015550142") {
			t.Fatalf("right code = %+v (%s)", c, notes(c))
		}
		// The same code cannot be used twice.
		c, _ = adhocRun(t, b, comp, "jabber:iq:register", "", "execute", nil)
		c, _ = adhocRun(t, b, comp, "jabber:iq:register", c.SessionID, "next", map[string]string{"phone": "+12015550143"})
		c2, _ := adhocRun(t, b, comp, "jabber:iq:register", c.SessionID, "complete", map[string]string{"code": code})
		if c2.Status == adhoc.Completed && !strings.Contains(notes(c2), "error") && strings.Contains(notes(c2), "+12015550143") {
			t.Fatalf("replayed code accepted: %s", notes(c2))
		}

		c, _ = adhocRun(t, b, comp, "status", "", "execute", nil)
		if c.Status != adhoc.Completed || !strings.Contains(notes(c), "+12015550142") || !strings.Contains(notes(c), "verified by SMS") {
			t.Fatalf("status = %s", notes(c))
		}
		// Messages now leave from the verified number.
		must(t, b.Send(ctx, fmt.Sprintf(`<message to='%s' id='b1' type='chat'><body>from bob</body></message>`, s.numberJID(phone))))
		if m := waitSMS(t, s, "from bob"); m.Source != "12015550142" || m.SourceTON != 1 {
			t.Fatalf("bob's SMS = %+v", m)
		}

		// The number moves to alice; bob is told.
		a := s.login(t, "alice")
		time.Sleep(1100 * time.Millisecond) // resend_after is 1s in this stack
		n := len(s.smsc.Messages())
		c, _ = adhocRun(t, a, comp, "jabber:iq:register", "", "execute", nil)
		c, _ = adhocRun(t, a, comp, "jabber:iq:register", c.SessionID, "next", map[string]string{"phone": "+12015550142"})
		code = lastCode(t, s, n+1, "+12015550142")
		c, _ = adhocRun(t, a, comp, "jabber:iq:register", c.SessionID, "complete", map[string]string{"code": code})
		if c.Status != adhoc.Completed {
			t.Fatalf("alice register = %s", notes(c))
		}
		r, err := b.Next(ctx, func(st testenv.Stanza) bool {
			return st.Name == "message" && st.Attr["from"] == comp && strings.Contains(st.Body, "+12015550142")
		})
		must(t, err)
		t.Logf("bob was told: %s", r.Body)
		c, _ = adhocRun(t, b, comp, "status", "", "execute", nil)
		if !strings.Contains(notes(c), "no phone number") {
			t.Fatalf("bob still has a number: %s", notes(c))
		}

		// Unregister.
		c, _ = adhocRun(t, a, comp, "unregister", "", "execute", nil)
		if c.Status != adhoc.Executing || c.Form == nil {
			t.Fatalf("unregister stage 1 = %+v", c)
		}
		c, _ = adhocRun(t, a, comp, "unregister", c.SessionID, "complete", map[string]string{"confirm": "true"})
		if c.Status != adhoc.Completed || !strings.Contains(notes(c), "is no longer your number on this gateway, and the address book you uploaded is deleted") {
			t.Fatalf("unregister = %s", notes(c))
		}
		c, _ = adhocRun(t, a, comp, "status", "", "execute", nil)
		if !strings.Contains(notes(c), "no phone number") {
			t.Fatalf("after unregister: %s", notes(c))
		}
		// Cancelling a session ends it; a dead session id is refused.
		c, _ = adhocRun(t, a, comp, "jabber:iq:register", "", "execute", nil)
		c2, _ = adhocRun(t, a, comp, "jabber:iq:register", c.SessionID, "cancel", nil)
		if c2.Status != adhoc.Canceled {
			t.Fatalf("cancel = %+v", c2)
		}
		_, iq = adhocRun(t, a, comp, "jabber:iq:register", c.SessionID, "next", map[string]string{"phone": "+12015550144"})
		if iq.ErrorCondition() != "bad-request" {
			t.Fatalf("dead session = %s", iq.XML)
		}
	})
}

// formValue returns the first value of field v in c's form.
func formValue(c adhoc.Command, v string) (string, bool) {
	if c.Form == nil {
		return "", false
	}
	for _, f := range c.Form.Fields {
		if f.Var == v {
			if len(f.Values) == 0 {
				return "", true
			}
			return f.Values[0], true
		}
	}
	return "", false
}

// TestRegisterAskAgain: a user who starts the command again while their
// code is waiting (they closed the dialog) sees the number prefilled and,
// submitting it, the code field, with a note that the code was already
// sent and when a new one may be asked for; nothing more is sent. An
// empty or blank code asks for the code and counts no try.
func TestRegisterAskAgain(t *testing.T) {
	s := startStack(t, sqliteDSN(t), smsc.Config{})
	comp := s.prosody.Component
	b := s.login(t, "bob")
	waitComponent(t, s, b)

	c, _ := adhocRun(t, b, comp, "jabber:iq:register", "", "execute", nil)
	c, _ = adhocRun(t, b, comp, "jabber:iq:register", c.SessionID, "next", map[string]string{"phone": "+12015550177"})
	if _, ok := formValue(c, "code"); !ok {
		t.Fatalf("first time = %+v", c)
	}
	code := lastCode(t, s, 1, "+12015550177")

	// The dialog is closed and the command started again.
	c, _ = adhocRun(t, b, comp, "jabber:iq:register", "", "execute", nil)
	if v, _ := formValue(c, "phone"); v != "+12015550177" {
		t.Fatalf("phone field on starting again = %q, want the number the code went to", v)
	}
	sid := c.SessionID
	c, _ = adhocRun(t, b, comp, "jabber:iq:register", sid, "next", map[string]string{"phone": "+12015550177"})
	if _, ok := formValue(c, "code"); c.Status != adhoc.Executing || !ok ||
		!strings.Contains(notes(c), "info: A code was already sent to +12015550177") || !strings.Contains(notes(c), "in 2 minutes") {
		t.Fatalf("asking again = %+v (%s)", c, notes(c))
	}
	// An empty code, or blanks, is no try.
	for _, empty := range []string{"", "   "} {
		c, _ = adhocRun(t, b, comp, "jabber:iq:register", sid, "complete", map[string]string{"code": empty})
		if _, ok := formValue(c, "code"); c.Status != adhoc.Executing || !ok || notes(c) != "error: Enter the code from the SMS." {
			t.Fatalf("code %q = %+v (%s)", empty, c, notes(c))
		}
	}
	c, _ = adhocRun(t, b, comp, "jabber:iq:register", sid, "complete", map[string]string{"code": wrong(code)})
	if !strings.Contains(notes(c), "4 tries left") {
		t.Fatalf("first wrong code after empty ones = %s", notes(c))
	}
	c, _ = adhocRun(t, b, comp, "jabber:iq:register", sid, "complete", map[string]string{"code": code})
	if c.Status != adhoc.Completed || !strings.Contains(notes(c), "Your number is now +12015550177") {
		t.Fatalf("the code received first = %+v (%s)", c, notes(c))
	}
	if n := len(s.smsc.Messages()); n != 1 {
		t.Fatalf("%d SMS sent, want 1", n)
	}
}

// TestRegisterLimits: too many tries void a code; codes to one number are
// rate limited with a text saying when to try again.
func TestRegisterLimits(t *testing.T) {
	s := startStack(t, sqliteDSN(t), smsc.Config{}, "SWITCHBOARD_REGISTRATION_MAX_TRIES=3")
	comp := s.prosody.Component
	b := s.login(t, "bob")
	waitComponent(t, s, b)

	// A premium-rate number gets no code: codes obey the blocked prefixes
	// of [limits] like any SMS (the default blocks +1900).
	c, _ := adhocRun(t, b, comp, "jabber:iq:register", "", "execute", nil)
	c, _ = adhocRun(t, b, comp, "jabber:iq:register", c.SessionID, "next", map[string]string{"phone": "+19005550142"})
	if c.Status != adhoc.Executing || !strings.Contains(notes(c), "+1900") {
		t.Fatalf("premium number by command = %+v %s", c, notes(c))
	}
	iq, err := b.IQ(ctxT(t, 10*time.Second), registerSet(comp, "phone", "+19005550142"))
	must(t, err)
	if iq.ErrorCondition() != "policy-violation" || !strings.Contains(iq.XML, "+1900") {
		t.Fatalf("premium number by XEP-0077 = %s", iq.XML)
	}

	c, _ = adhocRun(t, b, comp, "jabber:iq:register", "", "execute", nil)
	sid := c.SessionID
	adhocRun(t, b, comp, "jabber:iq:register", sid, "next", map[string]string{"phone": "+12015550142"})
	code := lastCode(t, s, 1, "+12015550142")
	for i := 0; i < 2; i++ {
		c, _ = adhocRun(t, b, comp, "jabber:iq:register", sid, "complete", map[string]string{"code": wrong(code)})
	}
	c, _ = adhocRun(t, b, comp, "jabber:iq:register", sid, "complete", map[string]string{"code": wrong(code)})
	if c.Status != adhoc.Completed || !strings.Contains(notes(c), "void") || !strings.Contains(notes(c), "ask for a new one in 2 minutes") {
		t.Fatalf("third wrong code = %+v %s", c, notes(c))
	}
	// The right code no longer works.
	c, _ = adhocRun(t, b, comp, "jabber:iq:register", "", "execute", nil)
	c2, iq := adhocRun(t, b, comp, "jabber:iq:register", c.SessionID, "next", map[string]string{"phone": "+12015550142"})
	if !strings.Contains(notes(c2), "ask for another in 2 minutes") {
		t.Fatalf("resend limit = %s %s", notes(c2), iq.XML)
	}
	if n := len(s.smsc.Messages()); n != 1 {
		t.Fatalf("%d SMS sent, want 1", n)
	}
}

// registerSet is an XEP-0077 submission of the data form with the given
// field, value pairs.
func registerSet(to string, kv ...string) string {
	form := `<field var='FORM_TYPE'><value>jabber:iq:register</value></field>`
	for i := 0; i+1 < len(kv); i += 2 {
		form += fmt.Sprintf(`<field var='%s'><value>%s</value></field>`, kv[i], kv[i+1])
	}
	return fmt.Sprintf(`<iq type='set' to='%s'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>%s</x></query></iq>`, to, form)
}

// registerForm is an XEP-0077 query as a get returns it.
type registerForm struct {
	Query struct {
		Instructions string    `xml:"instructions"`
		Registered   *struct{} `xml:"registered"`
		Phone        *string   `xml:"phone"`
		Form         *struct {
			Instructions []string `xml:"instructions"`
			Fields       []struct {
				Var    string   `xml:"var,attr"`
				Values []string `xml:"value"`
			} `xml:"field"`
		} `xml:"jabber:x:data x"`
	} `xml:"jabber:iq:register query"`
}

// registerGet asks for the XEP-0077 form and decodes it.
func registerGet(t *testing.T, c *testenv.Client, to string) registerForm {
	t.Helper()
	iq, err := c.IQ(ctxT(t, 10*time.Second), fmt.Sprintf(`<iq type='get' to='%s'><query xmlns='jabber:iq:register'/></iq>`, to))
	must(t, err)
	var f registerForm
	if iq.Attr["type"] != "result" || iq.Decode(&f) != nil || f.Query.Form == nil {
		t.Fatalf("get = %s", iq.XML)
	}
	return f
}

// field returns the values of field v, and whether the form has it.
func (f registerForm) field(v string) ([]string, bool) {
	for _, fl := range f.Query.Form.Fields {
		if fl.Var == v {
			return fl.Values, true
		}
	}
	return nil, false
}

// phones returns the legacy <phone> and the form's phone value.
func (f registerForm) phones() (legacy, form string) {
	if f.Query.Phone != nil {
		legacy = *f.Query.Phone
	}
	if v, _ := f.field("phone"); len(v) > 0 {
		form = v[0]
	}
	return legacy, form
}

// TestRegisterIQ runs XEP-0077 with its data form: get shows the form; a
// number alone sends a code (not-acceptable, with a text saying so); the
// code completes it; <remove/> unregisters. The legacy <phone> always says
// what the form's phone field says.
func TestRegisterIQ(t *testing.T) {
	s := startStack(t, sqliteDSN(t), smsc.Config{})
	comp := s.prosody.Component
	b := s.login(t, "bob")
	waitComponent(t, s, b)
	ctx := ctxT(t, 30*time.Second)

	f := registerGet(t, b, comp)
	if _, ok := f.field("phone"); !ok || f.Query.Registered != nil {
		t.Fatalf("get = %+v", f)
	}
	// A form the user closed (XEP-0004 type cancel) does nothing; one of
	// another type than submit is refused. Neither sends a code.
	cancelled := strings.Replace(registerSet(comp, "phone", "+12015550142"), "type='submit'", "type='cancel'", 1)
	iq, err := b.IQ(ctx, cancelled)
	must(t, err)
	if iq.Attr["type"] != "result" {
		t.Fatalf("cancelled form = %s", iq.XML)
	}
	iq, err = b.IQ(ctx, strings.Replace(cancelled, "type='cancel'", "type='form'", 1))
	must(t, err)
	if iq.ErrorCondition() != "bad-request" || !strings.Contains(iq.XML, `type &#34;submit&#34;`) && !strings.Contains(iq.XML, `type "submit"`) {
		t.Fatalf("form of type form = %s", iq.XML)
	}
	if n := len(s.smsc.Messages()); n != 0 {
		t.Fatalf("%d SMS sent for forms not submitted, want 0", n)
	}
	iq, err = b.IQ(ctx, registerSet(comp, "phone", "+1 201 555 0142"))
	must(t, err)
	if iq.ErrorCondition() != "not-acceptable" || !strings.Contains(iq.XML, "A code was sent by SMS to +12015550142") {
		t.Fatalf("set phone = %s", iq.XML)
	}
	code := lastCode(t, s, 1, "+12015550142")
	f = registerGet(t, b, comp)
	if _, ok := f.field("code"); !ok {
		t.Fatalf("get after code = %+v", f)
	}
	if legacy, form := f.phones(); legacy != "+12015550142" || form != legacy {
		t.Fatalf("get after code: legacy phone %q, form's %q", legacy, form)
	}
	// Submitted as the form comes back, with the code left empty: the code
	// already sent is the one to enter.
	iq, err = b.IQ(ctx, registerSet(comp, "phone", "+12015550142", "code", ""))
	must(t, err)
	if iq.ErrorCondition() != "not-acceptable" || !strings.Contains(iq.XML, "already sent to +12015550142") || !strings.Contains(iq.XML, "in 2 minutes") {
		t.Fatalf("empty code = %s", iq.XML)
	}
	iq, err = b.IQ(ctx, registerSet(comp, "code", wrong(code)))
	must(t, err)
	if iq.ErrorCondition() != "not-authorized" || !strings.Contains(iq.XML, "not right; 4 tries left") {
		t.Fatalf("wrong code = %s", iq.XML)
	}
	// The number written another way still goes with the code.
	iq, err = b.IQ(ctx, registerSet(comp, "phone", "+1 (201) 555-0142", "code", code))
	must(t, err)
	if iq.Attr["type"] != "result" {
		t.Fatalf("right code = %s", iq.XML)
	}
	f = registerGet(t, b, comp)
	if legacy, form := f.phones(); f.Query.Registered == nil || legacy != "+12015550142" || form != legacy {
		t.Fatalf("get after register = %+v (phones %q, %q)", f, legacy, form)
	}
	if n := len(s.smsc.Messages()); n != 1 {
		t.Fatalf("%d SMS sent, want 1", n)
	}
	// XEP-0077 §3.2: a <remove/> with anything beside it is not processed.
	for _, extra := range []string{`<phone>+12015550199</phone>`, `<foo xmlns='urn:example'/>`} {
		iq, err = b.IQ(ctx, fmt.Sprintf(`<iq type='set' to='%s'><query xmlns='jabber:iq:register'><remove/>%s</query></iq>`, comp, extra))
		must(t, err)
		if iq.ErrorCondition() != "bad-request" || !strings.Contains(iq.XML, "nothing was changed") {
			t.Fatalf("remove with %s = %s", extra, iq.XML)
		}
	}
	if f = registerGet(t, b, comp); f.Query.Registered == nil {
		t.Fatalf("a refused remove unregistered: %+v", f)
	}
	iq, err = b.IQ(ctx, fmt.Sprintf(`<iq type='set' to='%s'><query xmlns='jabber:iq:register'><remove/></query></iq>`, comp))
	must(t, err)
	if iq.Attr["type"] != "result" {
		t.Fatalf("remove = %s", iq.XML)
	}
	if f = registerGet(t, b, comp); f.Query.Registered != nil {
		t.Fatalf("still registered: %+v", f)
	}
	// Nothing left to cancel (XEP-0077 §3.2).
	iq, err = b.IQ(ctx, fmt.Sprintf(`<iq type='set' to='%s'><query xmlns='jabber:iq:register'><remove/></query></iq>`, comp))
	must(t, err)
	if iq.Attr["type"] != "error" || !strings.Contains(iq.XML, "registration-required") {
		t.Fatalf("remove when not registered = %s", iq.XML)
	}
	// disco advertises both ways in.
	iq, err = b.IQ(ctx, fmt.Sprintf(`<iq type='get' to='%s'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, comp))
	must(t, err)
	for _, f := range []string{"jabber:iq:register", "http://jabber.org/protocol/commands"} {
		if !strings.Contains(iq.XML, f) {
			t.Errorf("disco lacks %s", f)
		}
	}
}

// TestRegisterIQLegacy: XEP-0077's legacy fields are fixed (§4: no new
// ones) and none carries the code, so a client that submits only legacy
// fields is told, before and after, that the data form is needed, and no
// code goes that it could not enter. A registered user with a code waiting
// for another number sees their own in the legacy <phone> (after
// <registered/>, the number on record: XEP-0077 §3.1) and in the
// instructions, and the other in the form, which takes the code.
func TestRegisterIQLegacy(t *testing.T) {
	s := startStack(t, sqliteDSN(t), smsc.Config{}, "SWITCHBOARD_REGISTRATION_RESEND_AFTER=1s")
	comp := s.prosody.Component
	b := s.login(t, "bob")
	waitComponent(t, s, b)
	ctx := ctxT(t, 30*time.Second)

	f := registerGet(t, b, comp)
	if !strings.Contains(f.Query.Instructions, "data forms") || !strings.Contains(f.Query.Instructions, "Register a phone number") {
		t.Fatalf("legacy instructions = %q", f.Query.Instructions)
	}
	for _, legacy := range []string{
		`<phone>+12015550177</phone>`,
		`<phone>+12015550177</phone><code>059731</code>`,
	} {
		iq, err := b.IQ(ctx, fmt.Sprintf(`<iq type='set' to='%s'><query xmlns='jabber:iq:register'>%s</query></iq>`, comp, legacy))
		must(t, err)
		if iq.ErrorCondition() != "not-acceptable" || !strings.Contains(iq.XML, "data forms") {
			t.Fatalf("legacy %s = %s", legacy, iq.XML)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(s.smsc.Messages()); n != 0 {
		t.Fatalf("%d SMS sent for legacy submissions", n)
	}

	// Registered, then a code asked for another number.
	iq, err := b.IQ(ctx, registerSet(comp, "phone", "+12015550142"))
	must(t, err)
	iq, err = b.IQ(ctx, registerSet(comp, "code", lastCode(t, s, 1, "+12015550142")))
	must(t, err)
	if iq.Attr["type"] != "result" {
		t.Fatalf("register = %s", iq.XML)
	}
	time.Sleep(1100 * time.Millisecond) // resend_after is 1s in this stack
	iq, err = b.IQ(ctx, registerSet(comp, "phone", "+12015550177"))
	must(t, err)
	lastCode(t, s, 2, "+12015550177")
	f = registerGet(t, b, comp)
	if legacy, form := f.phones(); f.Query.Registered == nil || legacy != "+12015550142" || form != "+12015550177" {
		t.Fatalf("get with a code waiting = %+v (legacy phone %q, form's %q; want the bound +12015550142, the waiting +12015550177)", f, legacy, form)
	}
	for _, in := range []string{f.Query.Instructions, strings.Join(f.Query.Form.Instructions, " ")} {
		if !strings.Contains(in, "Your number is +12015550142") {
			t.Errorf("instructions do not name the bound number: %q", in)
		}
	}
}

// TestRegistrationNone: with verification = "none" only operators bind numbers.
func TestRegistrationNone(t *testing.T) {
	s := startStack(t, sqliteDSN(t), smsc.Config{}, "SWITCHBOARD_REGISTRATION_VERIFICATION=none")
	comp := s.prosody.Component
	b := s.login(t, "bob")
	waitComponent(t, s, b)
	_, iq := adhocRun(t, b, comp, "jabber:iq:register", "", "execute", nil)
	if iq.ErrorCondition() != "not-allowed" || !strings.Contains(iq.XML, "operator") {
		t.Fatalf("register with none = %s", iq.XML)
	}
	ctx := ctxT(t, 10*time.Second)
	iq, err := b.IQ(ctx, fmt.Sprintf(`<iq type='set' to='%s'><query xmlns='jabber:iq:register'><phone>+12015550142</phone></query></iq>`, comp))
	must(t, err)
	if iq.ErrorCondition() != "not-allowed" {
		t.Fatalf("XEP-0077 with none = %s", iq.XML)
	}
	if n := len(s.smsc.Messages()); n != 0 {
		t.Fatalf("%d SMS sent", n)
	}
}
