#!/usr/bin/env python3
"""An independent load generator for Switchboard's component-only figure.

It plays the XMPP server's side of one XEP-0114 (Jabber Component Protocol)
connection, as a real server would: it listens, accepts Switchboard's
connection, checks its handshake (hex SHA-1 of stream id + secret), answers
what Switchboard asks the server (XEP-0199 pings, which Switchboard sends
after each batch of receipts to learn they left the connection; service
discovery; anything else gets service-unavailable), then sends N chat
messages from U users to N distinct phone numbers, each asking for a
XEP-0184 receipt, with at most W waiting for theirs.

It shares no code with Switchboard's own bench (internal/bench): Python's
standard library only. It reports messages sent, receipts, errors, whole-run
and steady (10-90 % of receipts) messages per second, receipt latency (send
to receipt) percentiles, and the Switchboard process's CPU time per 1,000
messages and peak RSS, read from /proc; given the SMSC's pid, its CPU too,
and how busy the machine's cores were with all three, which tells whether
the figure is Switchboard's or the machine's.

testdata/loadgen/run.sh sets up a whole cross-check around it (Switchboard
configuration, numbers, the npm SMSC in testdata/smpp-node).
"""

import argparse
import asyncio
import hashlib
import html
import json
import os
import re
import secrets
import socket
import sys
import time

NS_RECEIPTS = b"urn:xmpp:receipts"
NS_STANZAS = b"urn:ietf:params:xml:ns:xmpp-stanzas"
NS_PING = b"urn:xmpp:ping"
NS_DISCO_INFO = b"http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = b"http://jabber.org/protocol/disco#items"

# Area codes of the phones written to: 10,000 numbers each (NPA-555-XXXX,
# all valid for libphonenumber, which Switchboard checks numbers with), so
# up to 200,000 messages each go to a number of their own. 201 is left out:
# run.sh gives the users +1201555XXXX, and 202 is for the warm-up message.
PHONE_AREAS = (212, 213, 214, 303, 305, 312, 404, 415, 503, 512,
               602, 615, 617, 702, 704, 713, 808, 907, 919, 206)
DISTINCT_PHONES = 10000 * len(PHONE_AREAS)

# One markup tag, from '<' to its '>'. Quoted attribute values may hold '>'
# (XML allows it), so they are skipped whole; the alternatives start with
# different characters, so matching is linear. Group 1 is '/' for an end
# tag, group 2 the name ('?xml' and '!--' for what is not an element).
TAG = re.compile(rb"""<(/?)([^\s/>"']+)(?:[^>"']|"[^"]*"|'[^']*')*>""")
# The start tag of a XEP-0184 receipt.
RECEIVED = re.compile(rb"<received[\s/>](?:[^>\"']|\"[^\"]*\"|'[^']*')*>")
# One attribute in a tag: name, then the value in either quote.
ATTR = re.compile(rb"""\s([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def attrs(tag):
    """Returns the attributes of one tag as {bytes: bytes}, unescaped."""
    out = {}
    for m in ATTR.finditer(tag):
        v = m.group(2) if m.group(2) is not None else m.group(3)
        if b"&" in v:
            v = html.unescape(v.decode()).encode()
        out[m.group(1)] = v
    return out


def esc(v):
    """Escapes a str for an attribute value in single or double quotes."""
    return (v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("'", "&apos;").replace('"', "&quot;"))


class Scanner:
    """Splits an XMPP stream into top-level stanzas, incrementally.

    A stanza is every byte from a tag opened inside the stream root to the
    tag that closes it, found by counting depth over the tags TAG matches:
    one regular-expression match per tag, in C, and no tree built. With the
    rest of a receipt's handling it reads about 110,000 receipts per second
    on one core of a 2-core test machine, against about 85,000 with xml.etree's
    XMLPullParser (--parser etree); writing messages costs about 3 µs each.
    Both keep the generator far from being the limit at 10,000 msg/s;
    --self-test measures them again. It relies on what RFC 6120 allows in
    a stream: no comments or processing instructions inside stanzas; and
    on no CDATA sections, which Switchboard's writer (Go's encoding/xml)
    never produces.
    """

    def __init__(self, on_header, on_stanza, on_close):
        self.on_header, self.on_stanza, self.on_close = on_header, on_stanza, on_close
        self.buf = b""
        self.pos = 0     # where the next tag search starts in buf
        self.depth = 0   # 0: before the stream header; 1: between stanzas
        self.start = -1  # offset in buf of the stanza being read, or -1

    def feed(self, data):
        buf = self.buf + data if self.buf else data
        pos, depth, start = self.pos, self.depth, self.start
        for m in TAG.finditer(buf, pos):
            pos = m.end()
            if m.group(1):  # an end tag
                depth -= 1
                if depth == 1:
                    self.on_stanza(buf[start:pos])
                    start = -1
                elif depth == 0:
                    self.on_close()
                    break
            elif m.group(2)[0] in b"?!":  # the XML declaration, a comment
                continue
            elif buf[pos - 2] == 0x2F:  # '/>': an empty element
                if depth == 1:
                    self.on_stanza(buf[m.start():pos])
            elif depth == 0:  # the stream header opens the root
                depth = 1
                self.on_header(m.group(0))
            else:
                if depth == 1:
                    start = m.start()
                depth += 1
        # Keep only the stanza being read and any tag cut off at the end.
        keep = start if start >= 0 else pos
        self.buf = buf[keep:]
        self.pos = pos - keep
        self.start = start - keep if start >= 0 else -1
        self.depth = depth


class EtreeScanner:
    """The same interface over xml.etree's XMLPullParser (--parser etree):
    a real XML parser, for comparison, and slower. Each stanza element is
    written back as bytes with an xmlns on every element (serialize), the
    form the stanza handler reads."""

    def __init__(self, on_header, on_stanza, on_close):
        import xml.etree.ElementTree as ET
        self.on_header, self.on_stanza, self.on_close = on_header, on_stanza, on_close
        self.p = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.root = None

    def feed(self, data):
        self.p.feed(data)
        for ev, el in self.p.read_events():
            if ev == "start":
                self.depth += 1
                if self.depth == 1:
                    self.root = el
                    self.on_header(("<stream:stream to='%s'>" % esc(el.get("to", ""))).encode())
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.on_stanza(serialize(el).encode())
                    self.root.remove(el)  # or the tree grows for the whole run
                elif self.depth == 0:
                    self.on_close()


def serialize(el):
    """Writes an ElementTree element back as XML with an xmlns attribute on
    every element and no prefixes."""
    ns, local = el.tag[1:].split("}", 1) if el.tag[0] == "{" else ("", el.tag)
    out = [f'<{local} xmlns="{esc(ns)}"']
    for k, v in el.attrib.items():
        if k[0] != "{":  # namespaced attributes (xml:lang) are of no use here
            out.append(f' {k}="{esc(v)}"')
    out.append(">")
    if el.text:
        out.append(esc(el.text))
    for child in el:
        out.append(serialize(child))
        if child.tail:
            out.append(esc(child.tail))
    out.append(f"</{local}>")
    return "".join(out)


def cpu_seconds(pid):
    """utime + stime of pid so far, in seconds, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces; utime and
    # stime are fields 14 and 15, the 12th and 13th after it.
    fields = stat[stat.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss(pid):
    """VmHWM of pid in bytes, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peer_pid(local_port, peer_port):
    """Finds the process holding the other end of our TCP connection on
    loopback (Switchboard), through /proc/net/tcp and /proc/*/fd; None if
    it cannot be told (another user's process, another namespace)."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    lport = int(cols[1].rsplit(":", 1)[1], 16)
                    rport = int(cols[2].rsplit(":", 1)[1], 16)
                    if lport == peer_port and rport == local_port:
                        inode = cols[9]
        except OSError:
            continue
    if not inode or inode == "0":
        return None
    target = f"socket:[{inode}]"
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return int(pid)
        except OSError:
            continue
    return None


def percentiles(values):
    """p50, p90, p99 and max of values (sorted in place), or None."""
    if not values:
        return None
    values.sort()
    n = len(values)
    at = lambda q: values[min(n - 1, int(q * n))]
    return at(0.50), at(0.90), at(0.99), values[-1]


class Refuse(asyncio.Protocol):
    """Any connection after the first: the first one is the one measured."""

    def connection_made(self, transport):
        transport.close()


class LoadGen(asyncio.Protocol):
    """The server's side of the component connection, and the run."""

    def __init__(self, args, loop):
        self.a = args
        self.loop = loop
        self.transport = None
        self.parser = (EtreeScanner if args.parser == "etree" else Scanner)(
            self.on_header, self.on_stanza, self.on_close)
        self.stream_id = secrets.token_hex(8)
        self.authenticated = loop.create_future()
        self.finished = loop.create_future()
        self.failure = None
        self.prefix = "lg%s-" % secrets.token_hex(3)
        self.prefix_b = self.prefix.encode()
        n = args.n
        self.sent_at = [0.0] * n
        self.received_at = [0.0] * n
        self.next_i = 0
        self.outstanding = 0
        self.receipts = 0
        self.errors = 0
        self.duplicates = 0
        self.last_error = ""
        self.warmup_left = -1  # receipts the warm-up still waits for; -1: not started
        self.warmup_done = None
        self.running = False
        self.last_progress = time.monotonic()
        self.answered = {}  # what Switchboard asked the server → how many times
        self.others = {}    # stanzas that needed no answer and are not ours
        self.traced = 0
        self.pid = None
        self.smsc_pid = args.smsc_pid
        self.smsc_cpu0 = self.smsc_cpu_end = None
        # The message template: everything but the index and the phone.
        dom, comp = esc(args.domain), esc(args.component)
        self.users = [f"user{k}@{dom}/lg" for k in range(args.users)]
        self.tail = f"@{comp}' id='{self.prefix}"

    # --- the connection ---

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Receipts and pings are answered at once, not after 40 ms.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc):
        if self.finished.done():
            return
        self.fail(f"Switchboard closed the connection ({exc or 'end of stream'})")

    def data_received(self, data):
        # One clock reading per read: receipts arriving together share it.
        self.now = time.perf_counter()
        self.trace("in", data)
        try:
            self.parser.feed(data)
        except Exception as e:  # a stream we cannot read ends the run
            self.fail(f"reading the stream: {e!r}")
            return
        if self.running:
            self.pump()

    def write(self, data):
        self.trace("out", data)
        self.transport.write(data)

    def trace(self, way, data):
        if self.traced < self.a.trace:
            self.traced += 1
            print(f"loadgen: {way}: {data[:2000].decode(errors='replace')}", file=sys.stderr)

    def fail(self, why):
        if not self.finished.done():
            self.failure = why
            self.finished.set_result(False)
        if not self.authenticated.done():
            self.authenticated.set_exception(RuntimeError(why))
        if self.warmup_done is not None and not self.warmup_done.done():
            self.warmup_done.set_exception(RuntimeError(why))

    # --- XEP-0114 ---

    def on_header(self, tag):
        to = attrs(tag).get(b"to", b"").decode()
        if to != self.a.component:
            self.write(b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
                       b"xmlns='jabber:component:accept'><stream:error><host-unknown "
                       b"xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
            self.fail(f"the component connected as {to!r}, not {self.a.component!r}")
            return
        self.write((f"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
                    f"xmlns='jabber:component:accept' from='{esc(self.a.component)}' "
                    f"id='{self.stream_id}'>").encode())

    def handshake(self, st):
        want = hashlib.sha1((self.stream_id + self.a.secret).encode()).hexdigest()
        text = st[st.index(b">") + 1:]
        text = text[:text.index(b"<")] if b"<" in text else b""
        if not st.startswith(b"<handshake") or text.strip().decode().lower() != want:
            self.write(b"<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                       b"</stream:error></stream:stream>")
            self.fail(f"bad handshake {st[:200]!r}")
            return
        self.write(b"<handshake/>")
        self.authenticated.set_result(True)

    def on_close(self):
        self.fail("Switchboard closed its stream")

    # --- stanzas ---

    def on_stanza(self, st):
        if not self.authenticated.done():
            self.handshake(st)
            return
        head = TAG.match(st).group(0)
        if st.startswith(b"<message"):
            self.on_message(st, head)
        elif st.startswith(b"<iq"):
            self.on_iq(st, head)
        elif st.startswith(b"<stream:error"):
            self.fail(f"stream error from Switchboard: {st[:300]!r}")
        else:
            name = head[1:].split()[0].rstrip(b"/>").decode()
            self.count(self.others, name + " " + attrs(head).get(b"type", b"available").decode())

    def count(self, d, key):
        d[key] = d.get(key, 0) + 1

    def index(self, id_):
        """The index of one of our messages from its id, or None."""
        if id_.startswith(self.prefix_b):
            tail = id_[len(self.prefix_b):]
            if tail.isdigit():
                i = int(tail)
                return i if i < self.a.n else None
            if tail.startswith(b"w"):
                return -1  # a warm-up message
        return None

    def on_message(self, st, head):
        # The common case, a receipt, is read without parsing the head's
        # attributes: that alone halves the cost per stanza.
        if b"type='error'" not in head and b'type="error"' not in head:
            m = RECEIVED.search(st, len(head))
            if m:
                r = attrs(m.group(0))
                if r.get(b"xmlns") == NS_RECEIPTS:
                    self.on_receipt(r.get(b"id", b""))
                    return
            self.count(self.others, "message " + attrs(head).get(b"type", b"normal").decode())
            return
        a = attrs(head)
        if a.get(b"type") == b"error":
            i = self.index(a.get(b"id", b""))
            cond = "?"
            m = re.search(rb"<([\w-]+)[^>]*\sxmlns=['\"]" + re.escape(NS_STANZAS), st)
            if m:
                cond = m.group(1).decode()
            self.last_error = f"message error for id {a.get(b'id', b'').decode()}: {cond}"
            if i is None:
                self.count(self.others, "message error, not for one of ours")
                return
            if i < 0:
                self.fail(f"the warm-up message came back as an error: {cond}")
                return
            self.errors += 1
            self.settle(i)
            return
        self.count(self.others, "message " + a.get(b"type", b"normal").decode())

    def on_receipt(self, id_):
        i = self.index(id_)
        if i is None:
            self.count(self.others, "receipt for a message not ours")
        elif i < 0:
            self.warmup_left -= 1
            if self.warmup_left == 0 and not self.warmup_done.done():
                self.warmup_done.set_result(True)
        elif self.received_at[i]:
            self.duplicates += 1  # at-least-once: a receipt may come twice
        else:
            self.received_at[i] = self.now
            self.receipts += 1
            self.settle(i)

    def settle(self, i):
        """Message i has its outcome: its window slot is free."""
        self.outstanding -= 1
        self.last_progress = time.monotonic()
        if self.receipts + self.errors >= self.a.n and not self.finished.done():
            self.end = time.perf_counter()
            self.cpu_end = cpu_seconds(self.pid) if self.pid else None
            self.smsc_cpu_end = cpu_seconds(self.smsc_pid) if self.smsc_pid else None
            self.finished.set_result(True)

    def on_iq(self, st, head):
        a = attrs(head)
        typ = a.get(b"type", b"").decode()
        if typ not in ("get", "set"):
            self.count(self.others, "iq " + typ)  # we ask nothing: unexpected
            return
        # The first child says what is asked.
        m = TAG.search(st, len(head))
        child, ns = "?", ""
        if m and not m.group(1):
            child = m.group(2).decode()
            ns = attrs(m.group(0)).get(b"xmlns", b"").decode()
        to = a.get(b"to", b"").decode()
        reply = (f"<iq type='result' id='{esc(a.get(b'id', b'').decode())}' "
                 f"from='{esc(to)}' to='{esc(a.get(b'from', b'').decode())}'")
        ours = to == self.a.domain
        if ours and typ == "get" and ns == NS_PING.decode():
            out, what = reply + "/>", "result"
        elif ours and typ == "get" and ns == NS_DISCO_INFO.decode():
            out = (reply + f"><query xmlns='{ns}'><identity category='server' type='im' name='loadgen'/>"
                   f"<feature var='{ns}'/><feature var='urn:xmpp:ping'/></query></iq>")
            what = "result"
        elif ours and typ == "get" and ns == NS_DISCO_ITEMS.decode():
            out, what = reply + f"><query xmlns='{ns}'/></iq>", "result"
        else:
            # Nothing else is implemented here, as a server says it.
            out = (reply.replace("type='result'", "type='error'", 1) +
                   "><error type='cancel'><service-unavailable "
                   "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
            what = "service-unavailable"
        self.write(out.encode())
        self.count(self.answered, f"iq {typ} {ns} {child} to {'server' if ours else to} → {what}")

    # --- the load ---

    def message(self, i, user, phone, id_tail):
        """Message i (an int, or "w0"… for the warm-up) as XML text."""
        return (f"<message type='chat' from='{user}' to='{phone}{self.tail}{id_tail}'>"
                f"<body>loadgen #{i}: a message of a typical length, sixty-odd characters.</body>"
                f"<request xmlns='urn:xmpp:receipts'/></message>")

    @staticmethod
    def phone(i):
        i %= DISTINCT_PHONES
        return "+1%d555%04d" % (PHONE_AREAS[i // 10000], i % 10000)

    def pump(self):
        """Writes as many messages as the window has room for, in one write."""
        room = min(self.a.window - self.outstanding, self.a.n - self.next_i)
        if room <= 0:
            return
        now = time.perf_counter()
        first = self.next_i
        users, nu, sent_at = self.users, len(self.users), self.sent_at
        parts = []
        for i in range(first, first + room):
            parts.append(self.message(i, users[i % nu], self.phone(i), i))
            sent_at[i] = now
        self.next_i += room
        self.outstanding += room
        self.write("".join(parts).encode())

    async def warmup(self):
        """Sends --warmup messages and waits for their receipts: once they
        are back, the SMSC is bound and every path is open, so the timed
        run measures steady work, not start-up."""
        if self.a.warmup <= 0:
            return
        self.warmup_done = self.loop.create_future()
        self.warmup_left = self.a.warmup
        out = [self.message("w%d" % j, self.users[0], "+1202555%04d" % j, "w%d" % j) for j in range(self.a.warmup)]
        self.write("".join(out).encode())
        await asyncio.wait_for(self.warmup_done, self.a.warmup_timeout)

    async def watch(self):
        """Progress lines, and the end of a run that stopped moving."""
        t0 = time.monotonic()
        while not self.finished.done():
            await asyncio.sleep(1)
            now = time.monotonic()
            if not self.a.quiet:
                print(f"loadgen: {now - t0:5.1f} s: sent {self.next_i}, receipts {self.receipts}, "
                      f"errors {self.errors}, waiting {self.outstanding}", file=sys.stderr)
            if self.pid and not os.path.exists(f"/proc/{self.pid}"):
                self.fail(f"Switchboard (pid {self.pid}) exited")
            elif now - self.last_progress > self.a.stall:
                self.fail(f"no receipt or error for {self.a.stall:.0f} s")

    def report(self):
        """The run's figures, as a dict (also written with --json)."""
        a, n = self.a, self.a.n
        sent = self.next_i
        got = [t for t in self.received_at if t]
        lat = [(r - s) * 1000 for s, r in zip(self.sent_at, self.received_at) if r]
        end = getattr(self, "end", None) or (max(got) if got else self.start)
        r = {
            "n": n, "users": a.users, "window": a.window,
            "sent": sent, "receipts": self.receipts, "errors": self.errors,
            "duplicate_receipts": self.duplicates, "last_error": self.last_error,
            "complete": self.failure is None and self.receipts == n and self.errors == 0,
            "failure": self.failure,
            "seconds": end - self.start,
            "msgs_per_sec": self.receipts / (end - self.start) if end > self.start else 0.0,
            "steady_msgs_per_sec": None,
            "latency_ms": None,
            "switchboard_pid": self.pid,
            "switchboard_cpu_s": None, "switchboard_cpu_s_per_1k": None,
            "switchboard_peak_rss_bytes": peak_rss(self.pid) if self.pid else None,
            "loadgen_cpu_s_per_1k": (self.cpu_self_end - self.cpu_self0) / max(sent, 1) * 1000,
            "smsc_pid": self.smsc_pid, "smsc_cpu_s_per_1k": None, "cores_busy": None,
            "answered": self.answered, "other_stanzas": self.others,
            "load_before": self.load0, "load_after": os.getloadavg()[0],
        }
        got.sort()
        if len(got) >= 10:
            lo, hi = len(got) // 10, len(got) * 9 // 10
            if got[hi] > got[lo]:
                r["steady_msgs_per_sec"] = (hi - lo) / (got[hi] - got[lo])
        p = percentiles(lat)
        if p:
            r["latency_ms"] = {"p50": p[0], "p90": p[1], "p99": p[2], "max": p[3]}
        cpu_end = getattr(self, "cpu_end", None)
        if cpu_end is None and self.pid:
            cpu_end = cpu_seconds(self.pid)
        if self.cpu0 is not None and cpu_end is not None:
            r["switchboard_cpu_s"] = cpu_end - self.cpu0
            r["switchboard_cpu_s_per_1k"] = (cpu_end - self.cpu0) / max(sent, 1) * 1000
        smsc_end = self.smsc_cpu_end
        if smsc_end is None and self.smsc_pid:
            smsc_end = cpu_seconds(self.smsc_pid)
        if self.smsc_cpu0 is not None and smsc_end is not None:
            r["smsc_cpu_s_per_1k"] = (smsc_end - self.smsc_cpu0) / max(sent, 1) * 1000
            if r["switchboard_cpu_s_per_1k"] is not None and r["seconds"] > 0:
                # CPU seconds per second of the run, of the three together.
                per_1k = r["switchboard_cpu_s_per_1k"] + r["smsc_cpu_s_per_1k"] + r["loadgen_cpu_s_per_1k"]
                r["cores_busy"] = per_1k * sent / 1000 / r["seconds"]
        return r


def print_report(r, out):
    """The report as aligned lines, in the terms the Go bench uses."""
    fmt = lambda v, f: "-" if v is None else f % v
    lat = r["latency_ms"]
    rows = [
        ("messages sent / receipts / errors", f"{r['sent']} / {r['receipts']} / {r['errors']}"),
        ("msg/s (whole run)", fmt(r["msgs_per_sec"], "%.0f")),
        ("msg/s (steady, 10–90 % of receipts)", fmt(r["steady_msgs_per_sec"], "%.0f")),
        ("receipt latency ms p50/p90/p99/max",
         "-" if not lat else "%.1f / %.1f / %.1f / %.1f" % (lat["p50"], lat["p90"], lat["p99"], lat["max"])),
        ("Switchboard CPU s / 1,000 msgs", fmt(r["switchboard_cpu_s_per_1k"], "%.3f")
         + ("" if r["switchboard_cpu_s"] is None else
            f"  ({r['switchboard_cpu_s']:.2f} s over {r['seconds']:.2f} s, pid {r['switchboard_pid']})")),
        ("Switchboard peak RSS MB", fmt(r["switchboard_peak_rss_bytes"] and r["switchboard_peak_rss_bytes"] / 2**20, "%.1f")),
        ("loadgen CPU s / 1,000 msgs", "%.3f" % r["loadgen_cpu_s_per_1k"]),
        ("SMSC CPU s / 1,000 msgs", fmt(r["smsc_cpu_s_per_1k"], "%.3f")
         + ("" if r["smsc_pid"] is None else f"  (pid {r['smsc_pid']})")),
        ("cores busy with the three", fmt(r["cores_busy"], "%.2f") + f"  (of {os.cpu_count()})"),
        ("load average (1 min) before → after", "%.2f → %.2f" % (r["load_before"], r["load_after"])),
    ]
    w = max(len(k) for k, _ in rows)
    print(f"loadgen: {r['n']} messages from {r['users']} users, window {r['window']}, "
          f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%dT%H:%M:%S%z')}", file=out)
    for k, v in rows:
        print(f"  {k:<{w}}  {v}", file=out)
    for k, v in sorted(r["answered"].items()):
        print(f"  answered: {k} ×{v}", file=out)
    for k, v in sorted(r["other_stanzas"].items()):
        print(f"  other stanza from Switchboard: {k} ×{v}", file=out)
    if r["duplicate_receipts"]:
        print(f"  {r['duplicate_receipts']} receipts came twice (at-least-once)", file=out)
    if r["last_error"]:
        print(f"  last error: {r['last_error']}", file=out)
    if r["failure"]:
        print(f"  run ended early: {r['failure']}", file=out)


async def run(a):
    loop = asyncio.get_running_loop()
    gen = LoadGen(a, loop)
    claimed = False

    def protocol():
        nonlocal claimed
        if claimed:
            return Refuse()
        claimed = True
        return gen

    server = await loop.create_server(protocol, "127.0.0.1", a.port)
    port = server.sockets[0].getsockname()[1]
    print(f"loadgen: listening on 127.0.0.1:{port} for {a.component}", file=sys.stderr, flush=True)
    if a.port_file:
        # Written whole or not at all: run.sh polls for it.
        with open(a.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(a.port_file + ".tmp", a.port_file)
    try:
        await asyncio.wait_for(asyncio.shield(gen.authenticated), a.connect_timeout)
    except asyncio.TimeoutError:
        raise SystemExit(f"loadgen: Switchboard did not connect within {a.connect_timeout:.0f} s")
    except RuntimeError as e:
        raise SystemExit(f"loadgen: {e}")
    server.close()  # one component connection is measured
    if a.pid:
        gen.pid = a.pid
    elif a.pid_file:
        # Whoever started Switchboard writes it; give it a moment.
        for _ in range(50):
            try:
                with open(a.pid_file) as f:
                    gen.pid = int(f.read().split()[0])
                break
            except (OSError, ValueError, IndexError):
                await asyncio.sleep(0.1)
    else:
        peer = gen.transport.get_extra_info("peername")
        gen.pid = peer_pid(port, peer[1])
    if not a.quiet:
        print(f"loadgen: component connected (Switchboard pid {gen.pid or 'unknown'})", file=sys.stderr)
    try:
        await gen.warmup()
    except asyncio.TimeoutError:
        raise SystemExit(f"loadgen: no receipt for the warm-up message within {a.warmup_timeout:.0f} s "
                         "(is the SMSC bound, and does it send receipts?)")
    except RuntimeError as e:
        raise SystemExit(f"loadgen: warm-up: {e}")

    gen.load0 = os.getloadavg()[0]
    gen.cpu_self0 = time.process_time()
    gen.cpu0 = cpu_seconds(gen.pid) if gen.pid else None
    gen.smsc_cpu0 = cpu_seconds(gen.smsc_pid) if gen.smsc_pid else None
    gen.start = time.perf_counter()
    gen.last_progress = time.monotonic()
    gen.running = True
    gen.pump()
    watcher = loop.create_task(gen.watch())
    try:
        await asyncio.wait_for(asyncio.shield(gen.finished), a.timeout)
    except asyncio.TimeoutError:
        gen.fail(f"the run took longer than {a.timeout:.0f} s")
    gen.cpu_self_end = time.process_time()
    r = gen.report()
    watcher.cancel()
    # Close our stream as a server does when shutting down; Switchboard
    # will try to reconnect, which is its business.
    if gen.transport and not gen.transport.is_closing():
        gen.write(b"</stream:stream>")
        await asyncio.sleep(0.1)
        gen.transport.close()
    print_report(r, sys.stdout)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)
    return 0 if r["complete"] else 1


def self_test(a):
    """Times both parsers, with the stanza handling of a run, on a stream of
    receipts as Switchboard writes them, and checks they agree (--self-test)."""
    n = 20000
    st = ('<message xmlns="jabber:component:accept" from="+12125550%03d@sms.loadgen.test" '
          'to="user%d@loadgen.test/lg" type="chat" id="r%d"><received xmlns="urn:xmpp:receipts" '
          'id="%s%d"></received></message>')
    status = 0
    for parser in ("scanner", "etree"):
        a.parser, a.n, a.window, a.users, a.component, a.domain = parser, n, n, 100, "sms.loadgen.test", "loadgen.test"
        loop = asyncio.new_event_loop()
        gen = LoadGen(a, loop)
        written = []
        gen.transport = type("T", (), {"write": lambda self, b: written.append(b)})()
        gen.parser.feed(b'<?xml version="1.0" encoding="UTF-8"?><stream:stream xmlns="jabber:component:accept" '
                        b'xmlns:stream="http://etherx.jabber.org/streams" to="sms.loadgen.test">')
        gen.authenticated.set_result(True)
        gen.outstanding = gen.next_i = n
        stream = ("".join(st % (i % 1000, i % 100, i, gen.prefix, i) for i in range(n))
                  + '<iq type="get" id="p1" from="sms.loadgen.test" to="loadgen.test">'
                  '<ping xmlns="urn:xmpp:ping"/></iq>').encode()
        t0 = time.process_time()
        for k in range(0, len(stream), 65536):  # reads as the event loop makes them
            gen.data_received(stream[k:k + 65536])
        dt = time.process_time() - t0
        ok = (gen.receipts == n and gen.outstanding == 0 and gen.finished.done() and len(written) == 2
              and written[-1].startswith(b"<iq type='result' id='p1'"))
        print(f"{parser}: {n} receipts and a ping in {dt:.3f} s CPU: {(n + 1) / dt:,.0f} stanzas/s, "
              f"{'correct' if ok else 'WRONG'}")
        loop.close()
        status |= not ok
    return status


def main():
    p = argparse.ArgumentParser(
        description="Play the XMPP server for Switchboard (XEP-0114) and measure it: send N messages "
                    "to phone numbers with at most W waiting for their XEP-0184 receipts.",
        epilog="Exit status 0 when every message got its receipt and none an error. "
               "testdata/loadgen/run.sh runs a whole cross-check with the npm SMSC.")
    p.add_argument("--port", type=int, default=0, help="port to listen on at 127.0.0.1 (default 0: any, printed)")
    p.add_argument("--port-file", help="write the port there once listening")
    p.add_argument("--component", default="sms.loadgen.test", help="Switchboard's component domain (xmpp.component)")
    p.add_argument("--domain", default="loadgen.test",
                   help="the server's (users') domain: xmpp.domains[0], where Switchboard sends its pings")
    p.add_argument("--secret", help="the component secret (xmpp.secret); required")
    p.add_argument("-n", type=int, default=20000, help="messages to send (default 20000)")
    p.add_argument("-w", "--window", type=int, default=1000,
                   help="most messages waiting for their receipt or error (default 1000)")
    p.add_argument("-u", "--users", type=int, default=100,
                   help="sending users user0..user{U-1}@DOMAIN; each must have a number (default 100)")
    p.add_argument("--pid", type=int, help="Switchboard's pid, for CPU and RSS (default: found from the connection)")
    p.add_argument("--pid-file", help="read Switchboard's pid from there once it connected")
    p.add_argument("--smsc-pid", type=int,
                   help="the SMSC's pid, for its CPU and how busy the cores were (default: not measured)")
    p.add_argument("--warmup", type=int, default=1,
                   help="messages sent, and their receipts awaited, before the timed run (default 1)")
    p.add_argument("--warmup-timeout", type=float, default=60, help="seconds to wait for the warm-up receipts (default 60)")
    p.add_argument("--connect-timeout", type=float, default=60, help="seconds to wait for Switchboard (default 60)")
    p.add_argument("--stall", type=float, default=15,
                   help="end the run when nothing came back for this many seconds (default 15)")
    p.add_argument("--timeout", type=float, default=600, help="bound on the timed run in seconds (default 600)")
    p.add_argument("--parser", choices=("scanner", "etree"), default="scanner",
                   help="stanza splitter: the regex scanner (default) or xml.etree's XMLPullParser")
    p.add_argument("--json", help="also write the report as JSON there")
    p.add_argument("--trace", type=int, default=0, metavar="K", help="print the first K reads and writes to stderr")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.add_argument("--self-test", action="store_true", help="time and check both parsers, then exit")
    a = p.parse_args()
    if a.self_test:
        return self_test(a)
    if not a.secret:
        p.error("--secret is required")
    if a.n <= 0 or a.window <= 0 or a.users <= 0:
        p.error("-n, --window and --users must be positive")
    if a.n > DISTINCT_PHONES:
        print(f"loadgen: more than {DISTINCT_PHONES} messages: phone numbers repeat", file=sys.stderr)
    return asyncio.run(run(a))


if __name__ == "__main__":
    sys.exit(main())
