package smsc

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
)

var update = flag.Bool("update", false, "TestBrowser: copy the page's screenshot to docs/simulator.png")

// browserTools returns node and chromium, skipping the test when they or
// playwright-core (testdata/browser/node_modules, see scripts/browser-deps.sh)
// are missing, unless SWITCHBOARD_BROWSER=1 demands them.
func browserTools(t *testing.T) (node, chromium string) {
	t.Helper()
	required := os.Getenv("SWITCHBOARD_BROWSER") == "1"
	if testing.Short() && !required {
		t.Skip("browser test skipped in -short mode")
	}
	chromium = os.Getenv("SWITCHBOARD_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	var missing []string
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, chromium)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node")
	}
	if _, err := os.Stat("testdata/browser/node_modules/playwright-core/package.json"); err != nil {
		missing = append(missing, "testdata/browser/node_modules/playwright-core")
	}
	if len(missing) > 0 {
		msg := "missing " + strings.Join(missing, ", ") + "; run scripts/browser-deps.sh"
		if required {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node, chromium
}

// esme is the gateway side for TestBrowser: a transmitter that submits for
// the page's test endpoint, and a receiver that answers deliver_sm and keeps the MOs.
type esme struct {
	mu  sync.Mutex // serialises submits on tx
	tx  *client
	rx  *client
	mos chan string
}

func (e *esme) submit(src, dst, text string, udh []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := pdu.NewSubmitSM(nil)
	p.Header().Seq = e.tx.nextSeq()
	f := p.Fields()
	f.Set(pdufield.SourceAddrTON, 1)
	f.Set(pdufield.SourceAddrNPI, 1)
	f.Set(pdufield.SourceAddr, src)
	f.Set(pdufield.DestAddrTON, 1)
	f.Set(pdufield.DestAddrNPI, 1)
	f.Set(pdufield.DestinationAddr, dst)
	if udh != nil {
		f.Set(pdufield.ESMClass, 0x40)
	}
	f.Set(pdufield.RegisteredDelivery, 1)
	f.Set(pdufield.ShortMessage, append(udh, text...))
	var b bytes.Buffer
	if err := p.SerializeTo(&b); err != nil {
		return err
	}
	if _, err := e.tx.conn.Write(b.Bytes()); err != nil {
		return err
	}
	h, _, err := e.tx.readFrame(5 * time.Second)
	if err != nil {
		return err
	}
	if h.ID != pdu.SubmitSMRespID || h.Status != 0 {
		return pdu.Status(h.Status)
	}
	return nil
}

// receive answers every deliver_sm with ESME_ROK and passes on the MOs
// ("from: text"), until the connection closes.
func (e *esme) receive() {
	for {
		h, raw, err := e.rx.readFrame(time.Minute)
		if err != nil {
			return
		}
		if h.ID != pdu.DeliverSMID {
			continue
		}
		b := make([]byte, 17)
		copy(b, []byte{0, 0, 0, 17, 0x80, 0, 0, 5, 0, 0, 0, 0, byte(h.Seq >> 24), byte(h.Seq >> 16), byte(h.Seq >> 8), byte(h.Seq)})
		if _, err := e.rx.conn.Write(b); err != nil {
			return
		}
		p, err := pdu.Decode(bytes.NewReader(raw))
		if err != nil {
			continue
		}
		f := p.Fields()
		if esm, _ := f[pdufield.ESMClass].Raw().(uint8); esm&0x04 == 0 {
			e.mos <- f[pdufield.SourceAddr].String() + ": " + f[pdufield.ShortMessage].String()
		}
	}
}

// TestBrowser drives the page in headless chromium with playwright-core
// (testdata/browser/check.mjs) and keeps its screenshot; -update copies it
// to docs/simulator.png.
func TestBrowser(t *testing.T) {
	node, chromium := browserTools(t)
	srv, addr := newTestServer(t, Config{})
	gw := &esme{tx: bound(t, addr, pdu.NewBindTransmitter), rx: bound(t, addr, pdu.NewBindReceiver), mos: make(chan string, 10)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		gw.receive()
	}()
	t.Cleanup(func() { gw.rx.conn.Close(); <-done })

	const gateway, phone = "12015550100", "12015550123"
	markup := `<script>window.pwned=1</script><img src=x onerror="window.pwned=1"> <b>not bold</b>`
	for _, m := range []struct {
		dst, text string
		udh       []byte
	}{
		{phone, "Hi Alice, your table for two at Luigi's is booked for 8 pm tonight.", nil},
		{phone, "Reminder: we hold the table for 15 minutes. ", []byte{5, 0, 3, 0x21, 2, 1}},
		{phone, "Reply to this message to change your booking.", []byte{5, 0, 3, 0x21, 2, 2}},
	} {
		if err := gw.submit(gateway, m.dst, m.text, m.udh); err != nil {
			t.Fatal(err)
		}
	}

	mux := http.NewServeMux()
	mux.Handle("/", srv.HTTPHandler())
	mux.HandleFunc("POST /test/submit", func(w http.ResponseWriter, r *http.Request) {
		if err := gw.submit(gateway, strings.TrimPrefix(r.FormValue("to"), "+"), r.FormValue("text"), nil); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	})
	hs := httptest.NewServer(mux)
	defer hs.Close()

	shot := filepath.Join(t.TempDir(), "simulator.png")
	reply := "Thanks! Could we make it 8:30?"
	arg, _ := json.Marshal(map[string]string{
		"url":         hs.URL + "/",
		"screenshot":  shot,
		"chromium":    chromium,
		"phone":       "+" + phone,
		"markupPhone": "+12015550177",
		"markupText":  markup,
		"failPhone":   "+12015550124",
		"newPhone":    "+12015550199",
		"reply":       reply,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "check.mjs", string(arg))
	cmd.Dir = "testdata/browser"
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("check.mjs (%v):\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("check.mjs: %v", err)
	}

	var mos []string
	for len(mos) < 2 {
		select {
		case mo := <-gw.mos:
			mos = append(mos, mo)
		case <-time.After(5 * time.Second):
			t.Fatalf("MOs at the ESME: %q", mos)
		}
	}
	if want := phone + ": " + reply; mos[0] != want || !strings.HasPrefix(mos[1], "12015550199: ") {
		t.Errorf("MOs at the ESME: %q, want %q first", mos, want)
	}

	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot is not a PNG: % x", png[:min(len(png), 8)])
	}
	if *update {
		if err := os.WriteFile("../../docs/simulator.png", png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
