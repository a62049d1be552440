"""Small checks the cases share: bindings, final responses, CANCEL matching, proxied
requests, authentication failure lines."""

import json
import re
import time

from portier_sip.base import DOMAIN, LOCAL, check


def contact_hostport(contact):
    m = re.search(r"sips?:(?:([^@;>]+)@)?([^;>:]+)(?::(\d+))?", contact or "")
    if not m:
        return None, None, None
    return m.group(1), m.group(2), int(m.group(3)) if m.group(3) else 5060


def has_binding(regs, user, port):
    for r in regs:
        u, h, p = contact_hostport(r.get("contact"))
        if h == LOCAL and p == port:
            return r
    return None


def final_response(sipp, method="INVITE"):
    finals = sipp.received(lambda m: m.status and m.status >= 200 and m.cseq_method() == method)
    return finals[-1] if finals else None


def top_via_is_proxy(msg, env):
    vias = msg.hdrs("Via")
    if not vias:
        return False
    first = vias[0].split(",")[0]
    return ("%s:%d" % (LOCAL, env.ports.proxy)) in first


def register_devices(env, users_slots):
    for user, slot in users_slots:
        s = env.register(user, slot)
        s.expect_ok()
    regs = env.registrations()
    for user, slot in users_slots:
        check(has_binding([r for r in regs if r.get("aor") == "sip:%s@%s" % (user, DOMAIN)],
                          user, env.ports.sip(slot)),
              "%s: binding for port %d not listed after REGISTER: %s"
              % (user, env.ports.sip(slot), json.dumps(regs)))


def wait_all(sipps):
    for s in sipps:
        s.wait()
    for s in sipps:
        s.expect_ok()


def _branch(msg):
    vias = msg.hdrs("Via")
    m = re.search(r";\s*branch=([^;,\s]+)", vias[0]) if vias else None
    return m.group(1) if m else None


def assert_cancel_matches_invite(devices):
    """RFC 3261 section 9.1: a CANCEL has the Request-URI, Call-ID, CSeq number
    and top Via branch of the request it cancels (section 16.10: the proxy
    builds it that way for each pending branch)."""
    for d in devices:
        invs = d.received(lambda m: m.method == "INVITE")
        cans = d.received(lambda m: m.method == "CANCEL")
        check(invs and cans, "%s: expected an INVITE and a CANCEL" % d.name)
        inv, can = invs[0], cans[0]
        check(inv.first.split()[1] == can.first.split()[1],
              "%s: CANCEL Request-URI %s != INVITE's %s" % (d.name, can.first, inv.first))
        check(_branch(inv) == _branch(can), "%s: CANCEL branch %s != INVITE branch %s"
              % (d.name, _branch(can), _branch(inv)))
        check((can.hdr("CSeq") or "").split()[0] == (inv.hdr("CSeq") or "").split()[0],
              "%s: CANCEL CSeq %s does not match INVITE CSeq %s"
              % (d.name, can.hdr("CSeq"), inv.hdr("CSeq")))
        check(can.hdr("Call-ID") == inv.hdr("Call-ID"), "%s: CANCEL Call-ID differs" % d.name)


def assert_no_cause200(env, devices):
    for d in devices:
        for c in d.received(lambda m: m.method == "CANCEL"):
            reason = " ".join(c.hdrs("Reason"))
            check("cause=200" not in reason.replace(" ", ""),
                  "%s: CANCEL carries %r, but no device answered (RFC 3326: cause=200 "
                  "means 'completed elsewhere')" % (d.name, reason))


def auth_failure_lines(env):
    return [l for l in env.proxy_log_text().splitlines() if "auth failure" in l]


def wait_auth_failure_lines(env, n, within=2.0):
    deadline = time.time() + within
    while True:
        lines = auth_failure_lines(env)
        if len(lines) >= n or time.time() > deadline:
            return lines
        time.sleep(0.1)


def drain_socket(sock):
    """What a non-blocking sentinel socket received (first 80 bytes of each
    datagram): anything at all means the proxy sent where it must not."""
    got = []
    while True:
        try:
            got.append(sock.recv(65535)[:80])
        except BlockingIOError:
            return got


def request_uri(msg):
    parts = msg.first.split()
    return parts[1] if len(parts) > 1 else None


def uri_in(value):
    m = re.search(r"<([^>]*)>", value or "")
    return m.group(1) if m else (value or "").split(";")[0].strip()


def assert_proxied(env, who, msg, ruri):
    """A request forwarded inside a dialog by a loose-routing proxy: its Via on
    top (RFC 3261 section 16.6 step 8), its own Route entry gone (16.4, 16.12),
    Max-Forwards decremented from the 70 the UA sent (16.6 step 3), the
    Request-URI left as the UA wrote it: the remote target (16.12, 12.2.1.1)."""
    what = "%s got %s (CSeq %s)" % (who, msg.method, msg.hdr("CSeq"))
    check(top_via_is_proxy(msg, env), "%s not through the proxy: Via %s" % (what, msg.hdrs("Via")))
    check(not any("%s:%d" % (LOCAL, env.ports.proxy) in r for r in msg.hdrs("Route")),
          "%s with the proxy's own Route still in it (RFC 3261 section 16.4): %s"
          % (what, msg.hdrs("Route")))
    check(msg.hdr("Max-Forwards") == "69", "%s with Max-Forwards %r, expected 69 (RFC 3261 "
          "section 16.6 step 3)" % (what, msg.hdr("Max-Forwards")))
    check(request_uri(msg) == ruri, "%s with Request-URI %s, expected the remote target %s "
          "(RFC 3261 section 16.12: a loose-routing proxy leaves it alone)"
          % (what, request_uri(msg), ruri))


def final_status(data):
    """The status codes of the responses in `data` (a stream or datagrams)."""
    return [int(m) for m in re.findall(rb"SIP/2\.0 (\d{3}) ", data)]
