"""portier-proxy's core conformance: malformed input, OPTIONS, loops, foreign domains,
Proxy-Require, stray responses, domain aliases (RFC 3261 section 16.3)."""

import json
import os
import re
import signal
import socket
import time

from portier_sip.base import ATTACKER, DOMAIN, GROUP, LOCAL, USERS, Proc, check, log
from portier_sip.checks import final_response
from portier_sip.pycall import (attacked_call, close_call, hang_up, py_call, py_sdp,
                                send_authenticated)
from portier_sip.registry import case
from portier_sip.sipmsg import PyUA, SipMessage, _req, udp_exchange


@case
def case_malformed(env):
    """Garbage and malformed SIP must not kill the proxy; parsable-enough bad
    requests get 400 (RFC 3261 section 8.2 / 16.3 step 1; section 18.3 for a
    Content-Length larger than the datagram) or 505 (section 21.5.7); the
    other probes only print what came back."""
    env.start_proxy()
    p = env.ports.proxy
    proxy_uri = "sip:%s:%d" % (LOCAL, p)
    cases = [
        # name, payload, expected status (None: no assertion; responses printed)
        ("random bytes", bytes(range(256)) * 4, None),
        ("text garbage", b"hello proxy\r\n\r\n", None),
        ("bad request line", b"INVITE\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK1\r\n\r\n", None),
        ("no Via", _req("OPTIONS", proxy_uri, env, via=False), None),
        ("huge Content-Length", _req("OPTIONS", proxy_uri, env, cl=99999999, body="v=0\r\n"), 400),
        ("bad Max-Forwards (OPTIONS)", _req("OPTIONS", proxy_uri, env, mf="lots"), None),
        ("Max-Forwards 0 (INVITE)", _req("INVITE", "sip:mon1@%s" % DOMAIN, env, mf="0"), None),
        ("negative Content-Length", _req("OPTIONS", proxy_uri, env, cl=-5), 400),
        ("bad CSeq", _req("OPTIONS", proxy_uri, env, cseq="one OPTIONS"), 400),
        ("NUL bytes in header", _req("OPTIONS", proxy_uri, env,
                                     extra="Subject: a\x00b\x00\x00c"), 400),
        ("NUL bytes in start line", b"OPT\x00IONS sip:x SIP/2.0\r\n\r\n", None),
        # RFC 3261 section 21.5.7
        ("SIP/3.0", (lambda port: _req("OPTIONS", proxy_uri, env)(port).replace(
            b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1)), 505),
        ("stray response", b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bKx\r\n"
                           b"Call-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", None),
        ("very long header", _req("OPTIONS", proxy_uri, env, extra="X-Long: " + "a" * 60000),
         None),
        ("many Via", _req("OPTIONS", proxy_uri, env, extra="\r\n".join(
            "Via: SIP/2.0/UDP 10.0.0.%d:5060;branch=z9hG4bK%d" % (i % 250, i)
            for i in range(500))), None),
        ("INVITE no From tag / bad URI", _req("INVITE", "sip:@@@", env), None),
    ]
    failures = []
    # A burst of junk first: nothing to answer, the proxy must just survive it.
    junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(300):
            junk.sendto(os.urandom(1 + (i * 37) % 1400), (LOCAL, p))
    finally:
        junk.close()
    time.sleep(0.2)
    check(env.proxy_alive(), "portier-proxy died after a burst of random datagrams")
    for name, payload, expect in cases:
        replies = udp_exchange(env.ports.proxy, payload, wait=0.7)
        firsts = [r.split(b"\r\n", 1)[0].decode("latin-1", "replace") for r in replies]
        log("%-28s -> %s" % (name, firsts or "(no reply)"))
        check(env.proxy_alive(), "portier-proxy died after %r (rc %s)"
              % (name, env.proxy.popen.returncode))
        if expect is not None:
            codes = [int(f.split()[1]) for f in firsts if f.startswith("SIP/2.0 ")
                     and len(f.split()) > 1 and f.split()[1].isdigit()]
            if expect not in codes:
                failures.append("%s: expected %d, got %s" % (name, expect, firsts or "no reply"))

    # TCP: garbage, a message cut short, and a connection that just closes.
    for name, payload in (("tcp garbage", b"\x00\xff" * 512 + b"\r\n\r\n"),
                          ("tcp truncated", _req("OPTIONS", proxy_uri, env, cl=500)(0)),
                          ("tcp CRLF keepalive", b"\r\n\r\n")):
        t = socket.create_connection((LOCAL, p), timeout=2)
        try:
            t.sendall(payload)
            t.settimeout(0.5)
            try:
                data = t.recv(4096)
            except (socket.timeout, ConnectionResetError):
                data = b""
        finally:
            t.close()
        log("%-28s -> %r" % (name, data[:60]))
        check(env.proxy_alive(), "portier-proxy died after %r" % name)
        if name == "tcp CRLF keepalive":
            # RFC 5626 section 4.4.1: a double-CRLF ping on a connection gets a CRLF pong.
            check(data == b"\r\n", "TCP CRLFCRLF keep-alive got %r, expected a CRLF pong" % data)

    time.sleep(0.3)
    check(env.proxy_alive(), "portier-proxy died")
    s = env.sipp("options_after", "options.xml", 0, [["mon1"]], timeout=10)
    s.wait()
    s.expect_ok()
    check(env.proxy_alive(), "portier-proxy died")
    check(not failures, "malformed requests not answered 400:\n  " + "\n  ".join(failures))
    env.assert_no_secrets()


@case
def case_loop_detection(env):
    """RFC 3261 section 16.3 steps 3 and 4: a request that already carries the
    proxy's own Via (it went round a loop) gets 482 Loop Detected, and one whose
    Max-Forwards reached 0 gets 483 Too Many Hops, before any challenge."""
    env.start_proxy()
    p = env.ports.proxy
    target = "sip:mon1@%s" % DOMAIN
    looped = _req("INVITE", target, env,
                  extra="Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-earlier-pass" % (LOCAL, p))
    for name, payload, want in (("our Via below the caller's", looped, 482),
                                ("Max-Forwards: 0", _req("INVITE", target, env, mf="0"), 483)):
        replies = udp_exchange(env.ports.proxy, payload, wait=0.7)
        firsts = [r.split(b"\r\n", 1)[0].decode("latin-1", "replace") for r in replies]
        log("%-28s -> %s" % (name, firsts or "(no reply)"))
        check(firsts and firsts[0].startswith("SIP/2.0 %d " % want),
              "%s: expected %d, got %s" % (name, want, firsts or "no reply"))
    check(env.proxy_alive(), "portier-proxy died")


@case
def case_options_keepalive(env):
    """RFC 3261 section 11: OPTIONS to the proxy itself is answered 200, over
    UDP and TCP, without a challenge."""
    env.start_proxy()
    u = env.sipp("options_udp", "options.xml", 0, [["mon1"]], timeout=10)
    u.wait()
    u.expect_ok()
    t = env.sipp("options_tcp", "options.xml", 1, [["mon1"]], transport="t1", timeout=10)
    t.wait()
    t.expect_ok()
    for s in (u, t):
        ok = s.received(lambda m: m.status == 200)[0]
        log("%s: %s (Allow: %s)" % (s.name, ok.first, ok.hdr("Allow")))
    env.assert_no_secrets()


@case
def case_systemd_notify(env):
    """What the shipped unit (config/systemd/portier-proxy.service: Type=notify,
    WatchdogSec=) relies on, per sd_notify(3) and sd_watchdog_enabled(3): READY=1
    once the proxy serves, WATCHDOG=1 from its main loop at half the interval for
    as long as the loop turns, STOPPING=1 and exit status 0 on SIGTERM. The
    control socket answers on the same loop meanwhile."""
    path = os.path.join(env.dir, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    cfg = env.write_config()
    environ = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="1000000")
    # WATCHDOG_PID must name the proxy itself: the shell execs into it.
    proc = Proc("proxy", ["sh", "-c", 'WATCHDOG_PID=$$ exec "$0" --config "$1"',
                          env.args.proxy, cfg], env.proxy_log, env.dir, env=environ)
    env.procs.append(proc)
    got = []

    def collect(done, bound):
        deadline = time.time() + bound
        while time.time() < deadline and not done():
            try:
                got.append(sock.recv(256).decode())
            except socket.timeout:
                pass

    collect(lambda: got.count("WATCHDOG=1") >= 3 or not proc.running(), 15)
    log("notifications: %s" % got)
    check(got and got[0] == "READY=1", "the first notification was not READY=1: %s" % got)
    check(got.count("WATCHDOG=1") >= 3, "the watchdog was not pinged: %s" % got)
    r = env.ctl_raw("ping")
    check(r is not None and r[0] == 0 and json.loads(r[1]).get("ok") is True,
          "the control socket did not answer: %r" % (r,))
    os.kill(proc.pid, signal.SIGTERM)
    rc = proc.wait(10)
    collect(lambda: "STOPPING=1" in got, 5)
    check(rc == 0, "portier-proxy exited with %s on SIGTERM" % rc)
    check("STOPPING=1" in got, "no STOPPING=1 on SIGTERM: %s" % got)


@case
def case_foreign_domain(env):
    """An authenticated caller INVITEs sip:x@other.example: the proxy does not
    relay to other domains; it answers 403 or 404 with a reason phrase."""
    env.start_proxy()
    # Without credentials (raw UDP): any 4xx is fine (403/404 at once, or 407).
    replies = udp_exchange(env.ports.proxy, _req("INVITE", "sip:x@other.example", env), wait=0.7)
    firsts = [r.split(b"\r\n", 1)[0].decode("latin-1", "replace") for r in replies]
    log("unauthenticated INVITE sip:x@other.example -> %s" % (firsts or "(no reply)"))
    check(firsts and re.match(r"SIP/2\.0 4\d\d \S", firsts[0]),
          "unauthenticated INVITE to a foreign domain: %s (expected a 4xx)" % (firsts or "no reply"))
    # With credentials.
    door = env.sipp("door", "door_foreign.xml", 4,
                    [["door", USERS["door"], "other.example", "%s@%s" % (GROUP, DOMAIN)]],
                    service="x", auth_uri="x@other.example", timeout=15)
    door.wait()
    door.expect_ok()
    fin = final_response(door)
    log("authenticated INVITE sip:x@other.example -> %s" % (fin.first if fin else None))
    check(fin is not None, "no final response")
    check(fin.status in (403, 404), "expected 403 or 404, got %s" % fin.first)
    check(fin.reason and fin.reason.strip(), "empty reason phrase: %r" % fin.first)
    env.wait_no_calls()
    env.assert_no_secrets()


@case
def case_stray_response(env):
    """Issue 11: responses that match no transaction of the proxy, sent from
    127.0.0.2 with the proxy's Via on top and the attacker's listening
    socket in the next Via, are dropped (RFC 3261 section 16.7 forwards only
    responses to our client transactions; a 2xx retransmission only inside a
    recorded dialog, from its callee): nothing reaches that socket, whatever
    the status, even with a live call's Call-ID and tags."""
    env.start_proxy()
    with attacked_call(env) as (c, attacker, sentinel):
        c.caller.quiet(lambda m: True, 0.1)  # what the call setup left (100, 180)
        for status, phrase, cid, ftag, ttag in (
                (200, "OK", attacker.uniq("c"), "f1", "t1"),
                (180, "Ringing", attacker.uniq("c"), "f1", "t1"),
                (486, "Busy Here", attacker.uniq("c"), "f1", "t1"),
                (200, "OK", c.call_id, c.caller_tag, c.callee_tag)):
            attacker.send("SIP/2.0 %d %s\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bK-stray%d\n"
                          "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-victim\n"
                          "From: <sip:door@%s>;tag=%s\nTo: <sip:mon1@%s>;tag=%s\n"
                          "Call-ID: %s\nCSeq: 2 INVITE\nContact: <sip:%s:%d>"
                          % (status, phrase, LOCAL, env.ports.proxy, status, ATTACKER,
                             sentinel.port, DOMAIN, ftag, DOMAIN, ttag, cid, ATTACKER,
                             attacker.port))
        leaked = sentinel.got()
        log("stray responses reflected to %s:%d: %d" % (ATTACKER, sentinel.port, len(leaked)))
        check(not leaked, "stray responses were forwarded to the next Via: %r" % leaked[:3])
        check(not c.caller.quiet(lambda m: m.status, 0.3),
              "the caller received a stray response")
        # The callee's own retransmitted 200 still reaches the caller (RFC 3261
        # section 13.3.1.4, 16.7 step 5), with or without a transaction left.
        c.callee.reply(c.invite_at_callee, 200, "OK", to_tag=c.callee_tag,
                       body=py_sdp(c.callee_rtp.port, owner="mon1"))
        again = c.caller.expect(lambda m: m.status == 200 and m.cseq()[1] == "INVITE",
                                "the callee's retransmitted 200")
        check(again.tag("To") == c.callee_tag, "retransmitted 200 with To tag %s" % again.tag("To"))
        hang_up(env, c)


@case
def case_proxy_require(env):
    """RFC 3261 section 16.3 step 5 / 20.29: a request whose Proxy-Require
    names an extension the proxy does not support gets 420 Bad Extension with
    every such option-tag in Unsupported (section 20.40), before any digest
    challenge, and goes nowhere; without it the same request is challenged."""
    env.start_proxy()
    target = "sip:mon1@%s" % DOMAIN
    for method in ("INVITE", "MESSAGE", "OPTIONS"):
        replies = udp_exchange(env.ports.proxy, _req(method, target, env,
                                                     extra="Proxy-Require: foo, x-bar"),
                               wait=0.7)
        msgs = [SipMessage(r, None) for r in replies]
        log("%s with Proxy-Require: foo, x-bar -> %s (Unsupported %s)"
            % (method, [m.first for m in msgs], [m.hdrs("Unsupported") for m in msgs]))
        check(msgs and msgs[0].status == 420, "%s: expected 420, got %s"
              % (method, [m.first for m in msgs] or "no reply"))
        tags = set(t.strip() for u in msgs[0].hdrs("Unsupported") for t in u.split(","))
        check(tags == {"foo", "x-bar"}, "420 lists Unsupported %s, expected foo and x-bar"
              % msgs[0].hdrs("Unsupported"))
    replies = udp_exchange(env.ports.proxy, _req("INVITE", target, env), wait=0.7)
    check(replies and replies[0].startswith(b"SIP/2.0 407 "),
          "without Proxy-Require the INVITE was not challenged: %r" % replies[:1])


@case
def case_ack_max_forwards_zero(env):
    """RFC 3261 section 17 / 16.3 step 3: an ACK with Max-Forwards: 0 (out of
    dialog and inside one) gets no response at all, where any other request
    gets 483 Too Many Hops."""
    env.start_proxy()
    target = "sip:mon1@%s" % DOMAIN
    for what in ("out of dialog", "with a To tag"):
        payload = _req("ACK", target, env, mf="0")
        if what == "with a To tag":
            payload = (lambda port, f=payload: f(port).replace(
                b"To: <%s>" % target.encode(), b"To: <%s>;tag=t1" % target.encode()))
        replies = udp_exchange(env.ports.proxy, payload, wait=1.0)
        log("ACK %s, Max-Forwards 0 -> %s" % (what, [r.split(b"\r\n")[0] for r in replies]))
        check(not replies, "an ACK (%s) was answered: %r" % (what, replies[:1]))
    replies = udp_exchange(env.ports.proxy, _req("MESSAGE", target, env, mf="0"), wait=0.7)
    check(replies and replies[0].startswith(b"SIP/2.0 483 "),
          "MESSAGE with Max-Forwards 0: expected 483, got %r" % replies[:1])
    check(env.proxy_alive(), "portier-proxy died")


@case
def case_route_by_domain_alias(env):
    """Issue 11: the proxy is "us" by its served domain and by the names in
    [global] aliases as well as by its address (phones whose outbound proxy
    is a DNS name): OPTIONS and REGISTER to sip:<alias> get 200, a REGISTER
    and INVITEs with Route <sip:<alias>;lr> or <sip:home.example;lr> go
    through (no 403 Relaying denied), while a Route to another domain is still
    refused."""
    write = env.write_config

    def with_alias():
        path = write()
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("[global]\n", "[global]\naliases = proxy.lan Portier.Local\n", 1))
        return path

    env.write_config = with_alias
    env.start_proxy()
    ua = PyUA("mon2", LOCAL, env.ports.sip(1), env.ports.proxy)
    try:
        ua.send("OPTIONS sip:proxy.lan SIP/2.0\nVia: %s\nFrom: <sip:mon2@%s>;tag=o1\n"
                "To: <sip:proxy.lan>\nCall-ID: %s\nCSeq: 1 OPTIONS\nMax-Forwards: 70"
                % (ua.via(), DOMAIN, ua.uniq("o")))
        r = ua.response_to("OPTIONS")
        log("OPTIONS sip:proxy.lan -> %s" % r.first)
        check(r.status == 200, "OPTIONS to the alias got %s, expected 200" % r.first)
        ruri = "sip:%s" % DOMAIN
        head = ("REGISTER %s SIP/2.0\nVia: {via}\nRoute: <sip:portier.local;lr>\n"
                "From: <sip:mon2@%s>;tag=r1\nTo: <sip:mon2@%s>\nCall-ID: %s\n"
                "CSeq: {cseq} REGISTER\nContact: <sip:%s:%d>\nExpires: 600\nMax-Forwards: 70\n"
                "{auth}" % (ruri, DOMAIN, DOMAIN, ua.uniq("r"), LOCAL, ua.port))
        r, _ = send_authenticated(ua, "REGISTER", ruri, "mon2", head)
        log("REGISTER with Route <sip:portier.local;lr> -> %s" % r.first)
        check(r.status == 200, "REGISTER via the alias got %s, expected 200" % r.first)
        check(env.bindings_for("mon2"), "no binding for mon2")
        # The registrar named by the alias itself (RFC 3261 section 10.2: the
        # Request-URI names the registrar's domain; a phone may write a host name).
        ruri = "sip:proxy.lan"
        head = ("REGISTER %s SIP/2.0\nVia: {via}\nFrom: <sip:mon2@%s>;tag=r2\nTo: <sip:mon2@%s>\n"
                "Call-ID: %s\nCSeq: {cseq} REGISTER\nContact: <sip:%s:%d>\nExpires: 600\n"
                "Max-Forwards: 70\n{auth}" % (ruri, DOMAIN, DOMAIN, ua.uniq("r"), LOCAL, ua.port))
        r, _ = send_authenticated(ua, "REGISTER", ruri, "mon2", head)
        log("REGISTER sip:proxy.lan -> %s" % r.first)
        check(r.status == 200, "REGISTER to the alias got %s, expected 200" % r.first)
        for route in ("<sip:proxy.lan;lr>", "<sip:%s;lr>" % DOMAIN,
                      "<sip:proxy.lan:%d;lr>" % env.ports.proxy):
            c = py_call(env, route=route)
            log("INVITE with Route %s answered; Record-Route %s" % (route, c.record_route))
            # RFC 3261 section 16.6 step 3: one hop fewer, once.
            mf = c.invite_at_callee.hdrs("Max-Forwards")
            check(mf == ["69"], "mon1 got Max-Forwards %s, expected [69]" % mf)
            hang_up(env, c)
            close_call(c)
        other = PyUA("door", LOCAL, env.ports.sip(4), env.ports.proxy)
        try:
            head = ("INVITE sip:mon1@%s SIP/2.0\nVia: {via}\nRoute: <sip:other.example;lr>\n"
                    "From: <sip:door@%s>;tag=x\nTo: <sip:mon1@%s>\nCall-ID: %s\n"
                    "CSeq: {cseq} INVITE\nMax-Forwards: 70\n{auth}"
                    % (DOMAIN, DOMAIN, DOMAIN, other.uniq("c")))
            other.send(head.format(via=other.via(), cseq=1, auth=""))
            r = other.response_to("INVITE")
            log("INVITE with Route <sip:other.example;lr> -> %s" % r.first)
            check(r.status == 403, "a Route to another domain got %s, expected 403" % r.first)
        finally:
            other.close()
    finally:
        ua.close()
