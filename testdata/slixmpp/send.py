"""An independent XMPP client (Debian's python3-slixmpp) for the interop test.

send.py JID PASSWORD HOST PORT TO BODY: logs in without TLS (loopback test
servers only), sends BODY to TO with an XEP-0184 receipt request, prints
"RECEIPT <id>" when the receipt comes, then "MESSAGE <from> <body>" for each
message that arrives until it has seen one, and exits 0; exits 1 after 30 s.
"""
import asyncio
import sys

import slixmpp


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, to, body):
        super().__init__(jid, password)
        self.to, self.body = to, body
        self.got_receipt = False
        self.got_message = False
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0184")
        self["xep_0184"].auto_ack = True
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("receipt_received", self.receipt)
        self.add_event_handler("message", self.message)

    async def start(self, _):
        self.send_presence()
        await self.get_roster()
        msg = self.make_message(mto=self.to, mbody=self.body, mtype="chat")
        msg["id"] = "slix-1"
        msg["request_receipt"] = True
        msg.send()
        print("SENT slix-1", flush=True)

    def receipt(self, msg):
        print("RECEIPT", msg["receipt"], flush=True)
        self.got_receipt = True
        self.done()

    def message(self, msg):
        if msg["type"] in ("chat", "normal") and msg["body"]:
            print("MESSAGE", msg["from"].bare, msg["body"], flush=True)
            self.got_message = True
            self.done()

    def done(self):
        if self.got_receipt and self.got_message:
            self.disconnect()


def main():
    jid, password, host, port, to, body = sys.argv[1:7]
    c = Client(jid, password, to, body)
    c["feature_mechanisms"].unencrypted_plain = True
    c.connect(address=(host, int(port)), force_starttls=False, disable_starttls=True)
    try:
        # process(timeout=…) is broken on Python 3.11 in slixmpp 1.8.
        c.loop.run_until_complete(asyncio.wait_for(c.disconnected, 30))
    except asyncio.TimeoutError:
        pass
    sys.exit(0 if c.got_receipt and c.got_message else 1)


main()
