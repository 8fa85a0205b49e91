package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"switchboard/internal/callctx"
	"switchboard/internal/testenv"
)

// prosodyDriver drives K users logged in to a real Prosody (c2s, SCRAM)
// that Switchboard is a component of.
type prosodyDriver struct {
	rec   *recorder
	o     Options
	nonce string
	cfg   testenv.ProsodyConfig
	proc  *child

	clients []*benchClient
	dirty   map[*benchClient]bool
	buf     []byte
	probed  chan struct{}
	once    sync.Once
}

type benchClient struct {
	conn   net.Conn
	served chan struct{} // closed when the session's Serve returned
	mu     sync.Mutex
	bw     *bufio.Writer
}

const benchPassword = "bench-password"

func newProsodyDriver(ctx context.Context, rec *recorder, o Options, dir, secret string) (driver, error) {
	bin, err := exec.LookPath("prosody")
	if err != nil {
		return nil, fmt.Errorf("bench: prosody is not installed (scripts/bench-deps.sh): %w", err)
	}
	c2s, err1 := testenv.FreePort()
	comp, err2 := testenv.FreePort()
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	pdir := filepath.Join(dir, "prosody")
	d := &prosodyDriver{rec: rec, o: o, nonce: randomHex(3), dirty: make(map[*benchClient]bool), probed: make(chan struct{})}
	d.cfg = testenv.ProsodyConfig{Dir: pdir, C2SPort: c2s, ComponentPort: comp, Domain: UserDomain, Component: CompDomain,
		Secret: secret, LogLevel: "warn", TLS: o.C2STLS}
	if err := testenv.WriteProsodyConfig(d.cfg); err != nil {
		return nil, err
	}
	for k := range o.Users {
		if err := testenv.WriteProsodyAccount(d.cfg, fmt.Sprintf("user%d", k), benchPassword); err != nil {
			return nil, err
		}
	}
	// Prosody refuses to run as root: as root it runs as the prosody user, which gets pdir.
	cmd, err := testenv.ServerCommand("prosody", syscall.SIGKILL, pdir, filepath.Join(dir, "prosody.out"),
		bin, "--config", d.cfg.ConfigFile(), "-F")
	if err != nil {
		return nil, fmt.Errorf("bench: prosody: %w", err)
	}
	if d.proc, err = startChild(cmd, cmd.Stdout.(*os.File)); err != nil {
		return nil, fmt.Errorf("bench: start prosody: %w", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, port := range []int{c2s, comp} {
		for {
			c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				d.close()
				return nil, fmt.Errorf("bench: prosody did not start: %s", tail(d.cfg.LogFile(), 3))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return d, nil
}

func (d *prosodyDriver) componentAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(d.cfg.ComponentPort))
}

func (d *prosodyDriver) start(ctx context.Context, _ string, sb *child) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(d.cfg.C2SPort))
	for k := range d.o.Users {
		c, err := d.login(ctx, addr, jid.MustParse(userJID(k)))
		if err != nil {
			return fmt.Errorf("bench: login %s: %w", userJID(k), err)
		}
		d.clients = append(d.clients, c)
		if err := c.write([]byte("<presence/>"), true); err != nil {
			return err
		}
	}
	// Wait until the component answers through Prosody.
	for i := 0; ; i++ {
		probe := fmt.Sprintf("<iq type='get' id='probe%d' to='%s'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", i, CompDomain)
		if err := d.clients[0].write([]byte(probe), true); err != nil {
			return err
		}
		select {
		case <-d.probed:
			return nil
		case <-sb.done:
			return fmt.Errorf("bench: switchboard exited: %v", sb.err)
		case <-ctx.Done():
			return errors.New("bench: switchboard did not attach to prosody")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (d *prosodyDriver) login(ctx context.Context, addr string, j jid.JID) (*benchClient, error) {
	var dl net.Dialer
	conn, err := dl.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	// Without -c2s-tls Prosody offers no TLS on loopback, and Secure lets
	// mellium use SASL anyway; with it the stream is encrypted first (the
	// certificate is the run's own, self-signed).
	// The deferred cancel must not reach a later write (see callctx).
	negCtx, release := callctx.For(ctx)
	defer release()
	state := xmpp.Secure
	features := []xmpp.StreamFeature{xmpp.SASL("", benchPassword, sasl.ScramSha256, sasl.ScramSha1), xmpp.BindResource()}
	if d.o.C2STLS {
		state = 0
		features = append([]xmpp.StreamFeature{xmpp.StartTLS(&tls.Config{ServerName: j.Domainpart(), InsecureSkipVerify: true})}, features...)
	}
	sess, err := xmpp.NewSession(negCtx, j.Domain(), j, conn, state, xmpp.NewNegotiator(
		func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: features}
		}))
	if err != nil {
		conn.Close()
		return nil, err
	}
	c := &benchClient{conn: sess.Conn(), served: make(chan struct{}), bw: bufio.NewWriterSize(sess.Conn(), 16<<10)}
	go func() {
		defer close(c.served)
		sess.Serve(d.handler(c))
	}()
	return c, nil
}

// handler hands what reaches user c to handleStanza, and notes the answer
// to start's probe. With Options.Relay, c acknowledges the messages
// relayed to it, as its client would, at once.
func (d *prosodyDriver) handler(c *benchClient) xmpp.Handler {
	var ack func([]byte) error
	if d.o.Relay {
		ack = func(st []byte) error { return c.write(appendAck(nil, st, false), true) }
	}
	return xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		var b bytes.Buffer
		enc := xml.NewEncoder(&b)
		enc.EncodeToken(*start)
		xmlstream.Copy(enc, t)
		enc.EncodeToken(start.End())
		enc.Flush()
		st := b.Bytes()
		now := d.rec.now()
		if start.Name.Local == "iq" && bytes.HasPrefix(attr(st, "id"), []byte("probe")) {
			if string(attr(st, "type")) == "result" {
				d.once.Do(func() { close(d.probed) })
			}
			return nil
		}
		handleStanza(d.rec, d.nonce, st, now, nil, ack)
		return nil
	})
}

// write sends raw XML on the client's connection, beside mellium (which
// only reads once the session is up).
func (c *benchClient) write(p []byte, flush bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.bw.Write(p); err != nil {
		return err
	}
	if flush {
		return c.bw.Flush()
	}
	return nil
}

func (d *prosodyDriver) send(i int) error {
	k, to := i%d.o.Users, -1
	if d.o.Relay {
		to = (k + 1) % d.o.Users // the next user: every user sends and receives
	}
	c := d.clients[k]
	d.buf = appendMessage(d.buf[:0], -1, d.nonce, i, to)
	d.dirty[c] = true
	return c.write(d.buf, false)
}

func (d *prosodyDriver) flush() error {
	for c := range d.dirty {
		c.mu.Lock()
		err := c.bw.Flush()
		c.mu.Unlock()
		if err != nil {
			return err
		}
		delete(d.dirty, c)
	}
	return nil
}

func (d *prosodyDriver) otherCPU() map[string]time.Duration {
	return map[string]time.Duration{"prosody": cpuTotal(d.proc.cmd.Process.Pid)}
}

func (d *prosodyDriver) close() {
	for _, c := range d.clients {
		c.write([]byte("</stream:stream>"), true)
		c.conn.Close()
	}
	for _, c := range d.clients {
		<-c.served
	}
	if d.proc != nil {
		d.proc.stop(10 * time.Second)
	}
}
