// An SMSC written with the npm smpp package (not Switchboard's code), for
// cmd/switchboard/interop_test.go. It accepts one bind (system_id and
// password from argv), answers every submit_sm with a fresh message_id,
// then sends a text delivery receipt for it. Each line read on stdin is a
// JSON message from a phone, {"from": "+1…", "to": "+1…", "text": "…"},
// sent as deliver_sm. Events go to stdout as JSON lines: listening,
// bound, submit (with the decoded text), receipt_resp, mo_resp.
'use strict';
const smpp = require('smpp');
const readline = require('readline');

const [systemID, password] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
let bound = null;
let next = 0x1f00;

const server = smpp.createServer((session) => {
  session.on('bind_transceiver', (pdu) => {
    if (pdu.system_id !== systemID || pdu.password !== password) {
      session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
      session.close();
      return;
    }
    session.send(pdu.response({ system_id: 'node-smsc' }));
    bound = session;
    out({ event: 'bound', system_id: pdu.system_id });
  });
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => { session.send(pdu.response()); session.close(); });
  session.on('submit_sm', (pdu) => {
    const id = (next++).toString(16);
    session.send(pdu.response({ message_id: id }));
    const sm = pdu.short_message || {};
    out({ event: 'submit', id, source: pdu.source_addr, dest: pdu.destination_addr,
      data_coding: pdu.data_coding, registered_delivery: pdu.registered_delivery,
      text: typeof sm.message === 'string' ? sm.message : String(sm.message || '') });
    if (!(pdu.registered_delivery & 1)) return;
    const now = new Date();
    const d = (x) => String(x).padStart(2, '0');
    const stamp = d(now.getUTCFullYear() % 100) + d(now.getUTCMonth() + 1) + d(now.getUTCDate()) + d(now.getUTCHours()) + d(now.getUTCMinutes());
    session.deliver_sm({
      source_addr_ton: 1, source_addr_npi: 1, source_addr: pdu.destination_addr,
      dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: pdu.source_addr,
      esm_class: 0x04,
      short_message: `id:${id} sub:001 dlvrd:001 submit date:${stamp} done date:${stamp} stat:DELIVRD err:000 text:`,
    }, (resp) => out({ event: 'receipt_resp', id, status: resp.command_status }));
  });
});

server.listen(0, '127.0.0.1', () => out({ event: 'listening', port: server.address().port }));

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const m = JSON.parse(line);
  if (!bound) { out({ event: 'mo_resp', status: -1 }); return; }
  bound.deliver_sm({
    source_addr_ton: 1, source_addr_npi: 1, source_addr: m.from.replace(/^\+/, ''),
    dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: m.to.replace(/^\+/, ''),
    short_message: m.text,
  }, (resp) => out({ event: 'mo_resp', status: resp.command_status }));
});
