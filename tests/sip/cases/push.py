"""Push notifications, RFC 8599, at the registrar (issue 14): Contact URIs with
pn-provider / pn-prid / pn-param (and the legacy Linphone pn-type / app-id /
pn-tok) from hand-driven UDP endpoints (PyUA). The proxy has
[module::PushNotification] enabled with a webhook only (no FCM service account,
no APNs key), so webpush is served and fcm is not. Nothing is pushed here: the
webhook URL is never contacted at registration."""

import re

from portier_sip.base import LOCAL, USERS, DOMAIN, check, log
from portier_sip.registry import case
from portier_sip.sipmsg import PyUA, digest_auth, find_challenge

# Distinctive, so the case can tell it never reaches a log or a listing.
TOKEN = "devtok-8599-Qx7Zr2Lk9"


def _push_config(env):
    """The case's proxy config, plus [module::PushNotification] with a webhook."""
    plain = env.write_config

    def write_config():
        path = plain()
        with open(path, "a") as f:
            f.write("\n[module::PushNotification]\nenabled = true\n"
                    "webhook-url = https://127.0.0.1:%d/webhook\n" % env.ports.base)
        return path
    env.write_config = write_config


class _Phone(PyUA):
    """user@home.example registering a Contact with the URI parameters given."""

    def __init__(self, env, user):
        PyUA.__init__(self, user, LOCAL, 0, env.ports.proxy)
        self.user, self.password = user, USERS[user]
        self.aor = "sip:%s@%s" % (user, DOMAIN)
        self.call_id = self.uniq("reg") + "@" + LOCAL
        self.tag = self.uniq("t")
        self.cseq = 0

    def _send_register(self, params, expires, auth):
        self.cseq += 1
        lines = ["REGISTER sip:%s SIP/2.0" % DOMAIN, "Via: %s" % self.via(),
                 "From: <%s>;tag=%s" % (self.aor, self.tag), "To: <%s>" % self.aor,
                 "Call-ID: %s" % self.call_id, "CSeq: %d REGISTER" % self.cseq,
                 "Contact: <sip:%s@%s:%d%s>" % (self.user, self.ip, self.port, params),
                 "Max-Forwards: 70", "Expires: %d" % expires]
        if auth:
            lines.append(auth)
        self.send("\n".join(lines))

    def register(self, params, expires=600):
        """REGISTER with `params` (";pn-provider=..."), answering the 401 once;
        the final response."""
        self._send_register(params, expires, None)
        resp = self.response_to("REGISTER")
        if resp.status == 401:
            ch = find_challenge(resp.hdrs("WWW-Authenticate"))
            check(ch, "%s: no MD5 challenge in %s" % (self.name, resp.first))
            cred = digest_auth(self.user, self.password, ch, "REGISTER", "sip:" + DOMAIN)
            self._send_register(params, expires, "Authorization: " + cred)
            resp = self.response_to("REGISTER")
        return resp


def _binding(env, user):
    regs = env.bindings_for(user)
    check(len(regs) == 1, "%s: %d bindings, expected 1: %r" % (user, len(regs), regs))
    return regs[0]


@case
def case_push_register(env):
    """RFC 8599 at the registrar: a webpush contact gets 200 with Feature-Caps
    *;+sip.pns="webpush" (RFC 8599 section 5, RFC 6809), its binding lists
    push = webpush and a contact without the pn-* parameters, and it survives a
    restart; fcm without a service account gets 555 and no binding; a legacy
    pn-type contact registers (its type unserved: without push, no 555); a
    refresh without pn-* clears the push; the device token is in no log and no
    listing."""
    _push_config(env)
    env.start_proxy()
    alice, mon1, mon2 = _Phone(env, "alice"), _Phone(env, "mon1"), _Phone(env, "mon2")
    try:
        pn = ";pn-provider=webpush;pn-prid=%s;pn-param=door-app" % TOKEN
        resp = alice.register(pn)
        check(resp.status == 200, "alice with webpush: %s, expected 200" % resp.first)
        caps = resp.hdrs("Feature-Caps")
        check(caps == ['*;+sip.pns="webpush"'],
              "alice's 200: Feature-Caps %r, expected ['*;+sip.pns=\"webpush\"']" % caps)
        contacts = ",".join(resp.hdrs("Contact"))
        check("pn-" not in contacts and TOKEN not in contacts,
              "alice's 200 lists the push parameters in its Contact: %s" % contacts)
        b = _binding(env, "alice")
        check(b.get("push") == "webpush", "alice's binding: push %r, expected webpush" % b)
        check("pn-" not in b.get("contact", ""), "alice's stored contact: %r" % b)
        log("alice: 200, Feature-Caps %s, binding %s push=%s" % (caps[0], b["contact"], b["push"]))

        resp = mon1.register(";pn-provider=fcm;pn-prid=%s;pn-param=door-app" % TOKEN)
        check(resp.status == 555 and resp.first.endswith("Push Notification Service Not Supported"),
              "mon1 with fcm (no service account): %s, expected 555" % resp.first)
        check(env.bindings_for("mon1") == [], "mon1 has a binding after its 555")
        log("mon1 (fcm, not configured): %s" % resp.first)

        resp = mon2.register(";pn-type=apple;app-id=org.example.door.voip.prod;pn-tok=%s" % TOKEN)
        check(resp.status == 200, "mon2 with legacy pn-type=apple: %s, expected 200" % resp.first)
        check(resp.hdrs("Feature-Caps") == [], "mon2's 200 (legacy) has a Feature-Caps: %r"
              % resp.hdrs("Feature-Caps"))
        b = _binding(env, "mon2")
        check(b.get("push") == "", "mon2 (apns not configured): push %r, expected none" % b)
        log("mon2 (legacy apple, apns not configured): 200, registered without push")

        # The push parameters are in the state file: a restart still knows how
        # to wake alice.
        env.stop_proxy()
        env.start_proxy()
        b = _binding(env, "alice")
        check(b.get("push") == "webpush", "after a restart alice's binding: %r" % b)
        log("after a restart: alice push=%s" % b["push"])

        resp = alice.register("")
        check(resp.status == 200 and resp.hdrs("Feature-Caps") == [],
              "alice's refresh without pn-*: %s, Feature-Caps %r"
              % (resp.first, resp.hdrs("Feature-Caps")))
        b = _binding(env, "alice")
        check(b.get("push") == "", "alice's refresh without pn-* kept push: %r" % b)

        listing = str(env.registrations())
        check(TOKEN not in listing, "portierctl registrations shows the device token")
        text = env.proxy_log_text()
        check(TOKEN not in text, "the proxy log has the device token: %s"
              % [l for l in text.splitlines() if TOKEN in l][:3])
    finally:
        for p in (alice, mon1, mon2):
            p.close()
