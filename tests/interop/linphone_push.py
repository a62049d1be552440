#!/usr/bin/env python3
"""Interop test: push notifications (RFC 8599) with real Linphone
(linphone-daemon from Debian's linphone-cli, liblinphone 5.1) against
portier-proxy with [module::PushNotification] on, the providers being
tests/push/push_standin.py (FCM HTTP v1 with its OAuth2 endpoint and the
webhook, over HTTP/2 and TLS).

- mon1 asks for pushes with Linphone's own rc keys: `[net] push_notification=1`
  and in `[proxy_0]` `push_notification_allowed=1` and
  `push_parameters=pn-provider=webpush;pn-prid=TOKEN;pn-param=door-app`. It
  registers (LinphoneRegistrationOk); its REGISTER's Contact URI carries the
  three parameters (RFC 8599 section 4.1.1) and the 200 it received carries
  `Feature-Caps: *;+sip.pns="webpush"` (sections 5.4, 8.2); `portierctl
  registrations` lists push webpush; the token is in no proxy log line.
- mon2 is an older app: the legacy parameters `pn-type=firebase;
  app-id=PROJECT;pn-tok=TOKEN2`, which Linphone 5.1 still sends from its
  config (`[proxy_0] contact_uri_parameters`, the key older Linphone apps
  used). The registrar maps them to fcm: the binding lists push fcm, and the
  200 has no Feature-Caps (a legacy app knows none).
- mon3 carries what Linphone's iOS app writes, through the same keys:
  `pn-provider=apns;pn-prid=VOIP:voip&REMOTE:remote;pn-param=TEAM.BUNDLE.voip&remote`
  (RFC 8599 section 10, with Flexisip's two-token extension); its 200 has
  Feature-Caps +sip.pns="apns", the binding lists push apns.
- portier-door rings sip:home with the three Linphones awake (their sockets
  alive): each is pushed (the webhook for mon1, FCM for mon2, an APNs VoIP
  push for mon3, ES256 bearer verified by the stand-in) AND rings
  (LinphoneCallIncomingReceived): a live device is pushed and rung, whichever
  wakes first answers. mon1 answers, the door sees it; mon2 and mon3 are
  CANCELled; mon2 gets an answered-elsewhere FCM push, mon3 an alert at its
  remote token (a follow-up is never a VoIP push); mon1 gets none.

Ports: proxy 127.0.0.1:30300 (UDP+TCP); Linphone mon1 30310-30315, mon2
30320-30325 and mon3 30340-30345 (SIP, audio and video RTP/RTCP);
portier-door 30330 (SIP) and 30331-30339 (RTP); 30346-30349 named as the
relay's, which is off. The stand-in listens on a
free loopback port the kernel picks. No other test uses 30300-30349.

    linphone_push.py --proxy build/signaling/portier-proxy \\
                     --ctl build/signaling/portierctl \\
                     --door build/signaling/portier-door [--keep]

Exit status: 0 pass, 1 fail, 77 skipped (linphone-daemon not installed).
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import linphone_interop as li  # noqa: E402  the daemon and proxy drivers
from portier_py import configs  # noqa: E402  (linphone_interop put scripts/ on the path)
from portier_py.push_standin import PushStandin  # noqa: E402

li.PROXY_PORT = 30300
li.RELAY_PORTS = "30346-30349"  # the relay is off
li.USERS = {"mon1": "secret1", "mon2": "secret2", "mon3": "secret3", "door": "doorpw"}
li.PEERS = {"mon1": ("mon1", "secret1", 30310, "udp"), "mon2": ("mon2", "secret2", 30320, "udp"),
            "mon3": ("mon3", "secret3", 30340, "udp")}
DOOR_SIP, DOOR_RTP = 30330, "30331-30339"
check, log, wait_for = li.check, li.log, li.wait_for

# Distinctive, so the test can tell they never reach a log or a listing.
WEB_TOKEN = "lp-webpush-8599-Vt3Qm8Zr"
FCM_TOKEN = "lp-legacy-fcm-Jw6Pn2Kd"
# An iOS app's two APNs tokens (hex: they go into the path), as Linphone's
# iOS app writes them: "VOIP:voip&REMOTE:remote", pn-param TEAM.BUNDLE.voip&remote.
APNS_VOIP = "8599" + "0a1b2c3d4e5f6789" * 3 + "abcdef012345"
APNS_REMOTE = "8599" + "f9e8d7c6b5a43210" * 3 + "543210fedcba"
BUNDLE = "org.example.door"


class Standin(PushStandin):
    failure = li.TestFailure

    def __init__(self, tmp):
        PushStandin.__init__(self, os.path.join(tmp, "standin"), log)


def account_rc(role, push):
    """[proxy_0] and [auth_info_0] of `role` with the proxy as registrar and
    outbound proxy, plus the push keys `push` (rc lines)."""
    user, password = li.PEERS[role][0], li.PEERS[role][1]
    return ("[proxy_0]\nreg_proxy=<sip:127.0.0.1:{p};transport=udp>\n"
            "reg_route=<sip:127.0.0.1:{p};transport=udp;lr>\nreg_identity=sip:{u}@{d}\n"
            "reg_expires=3600\nreg_sendregister=1\n{push}"
            "[auth_info_0]\nusername={u}\nuserid={u}\npasswd={pw}\nrealm={d}\n").format(
                p=li.PROXY_PORT, u=user, d=li.DOMAIN, pw=password, push=push)


def push_linphone(tmp, exe, role, push, core_push):
    lp = li.Linphone(role, tmp, exe, account_rc(role, push), "default_proxy=0\n")
    with open(lp.rc) as f:
        text = f.read()
    # The core's switch: without it liblinphone adds no push parameters.
    text = text.replace("[net]\n", "[net]\npush_notification=%d\n" % core_push)
    with open(lp.rc, "w") as f:
        f.write(text)
    return lp


def register_200(lp):
    """The 200 to Linphone's last REGISTER, as its log shows it."""
    oks = [m for d, t, m in li.sip_messages(lp)
           if d == "in" and m.startswith("SIP/2.0 200") and re.search(r"(?im)^CSeq:.*REGISTER", m)]
    return oks[-1] if oks else ""


def binding(proxy, user):
    b = [r for r in proxy.registrations() if r.get("aor") == "sip:%s@%s" % (user, li.DOMAIN)]
    check(len(b) == 1, "one binding for %s: %s" % (user, b))
    return b[0]


def run(args, tmp, procs):
    check(args.door, "--door given")
    standin = Standin(tmp)
    procs["standin"] = standin
    proxy = li.Proxy(args.proxy, args.ctl, tmp)
    proxy.write_conf(configs.proxy_conf(
        "127.0.0.1", li.PROXY_PORT, tmp + "/state", proxy.sock,
        os.path.join(tmp, "users.conf"), li.RELAY_PORTS, li.DOMAIN,
        # The relay is off: this test is about pushes, and ten ports would
        # not serve two ringing branches.
        more={"module::Router": {"call-fork-timeout": 30},
              "module::MediaRelay": {"enabled": "false"}}, text=standin.proxy_section(apns=True)))
    procs["proxy"] = proxy
    proxy.start()
    project = standin.info["project"]

    mon1 = push_linphone(tmp, args.linphone, "mon1",
                         "push_notification_allowed=1\n"
                         "push_parameters=pn-provider=webpush;pn-prid=%s;pn-param=door-app\n"
                         % WEB_TOKEN, 1)
    mon2 = push_linphone(tmp, args.linphone, "mon2",
                         "contact_uri_parameters=pn-type=firebase;app-id=%s;pn-tok=%s\n"
                         % (project, FCM_TOKEN), 0)
    mon3 = push_linphone(tmp, args.linphone, "mon3",
                         "push_notification_allowed=1\n"
                         "push_parameters=pn-provider=apns;pn-prid=%s:voip&%s:remote;"
                         "pn-param=%s.%s.voip&remote\n"
                         % (APNS_VOIP, APNS_REMOTE, standin.info["apns_team_id"], BUNDLE), 1)
    li.start_linphones({"mon1": mon1, "mon2": mon2, "mon3": mon3}, procs)

    # ---- mon1: RFC 8599 from Linphone's own push keys
    reg = li.sent_register(mon1)
    contact = li.header(reg, "Contact") or ""
    check(re.search(r"pn-provider=webpush", contact) and WEB_TOKEN in contact and
          "pn-param=door-app" in contact,
          "Linphone's REGISTER carries pn-provider, pn-prid, pn-param: %s" % contact)
    ok = register_200(mon1)
    caps = li.header(ok, "Feature-Caps") or ""
    check('+sip.pns="webpush"' in caps,
          "the 200 Linphone received has Feature-Caps +sip.pns=\"webpush\": %r" % caps)
    check(WEB_TOKEN not in (li.header(ok, "Contact") or ""),
          "the 200's Contact carries no device token")
    b = binding(proxy, "mon1")
    check(b.get("push") == "webpush" and "pn-" not in b.get("contact", ""),
          "portierctl registrations: mon1 push=%s contact %s" % (b.get("push"), b.get("contact")))

    # ---- mon2: the legacy parameters, from contact_uri_parameters
    contact2 = li.header(li.sent_register(mon2), "Contact") or ""
    check("pn-type=firebase" in contact2 and FCM_TOKEN in contact2,
          "Linphone 5.1 sends the legacy pn-type/app-id/pn-tok from its config: %s" % contact2)
    caps2 = li.header(register_200(mon2), "Feature-Caps")
    check(caps2 is None, "no Feature-Caps for the legacy contact: %r" % caps2)
    b2 = binding(proxy, "mon2")
    check(b2.get("push") == "fcm", "portierctl registrations: mon2 (legacy) push=%s"
          % b2.get("push"))

    # ---- mon3: an iOS app's APNs parameters, both tokens, as Linphone sends them
    contact3 = li.header(li.sent_register(mon3), "Contact") or ""
    check("pn-provider=apns" in contact3 and APNS_VOIP in contact3,
          "Linphone sends the APNs parameters: %s" % contact3)
    caps3 = li.header(register_200(mon3), "Feature-Caps") or ""
    check('+sip.pns="apns"' in caps3, "mon3's 200 has Feature-Caps +sip.pns=\"apns\": %r" % caps3)
    check(binding(proxy, "mon3").get("push") == "apns", "portierctl registrations: mon3 push=apns")

    # ---- the door rings sip:home: all pushed and all rung
    door = li.Daemon(args.door, args.ctl, tmp, "door")
    account = configs.account("sip:door@" + li.DOMAIN, li.USERS["door"],
                              "127.0.0.1:%d" % li.PROXY_PORT, "127.0.0.1:%d" % DOOR_SIP)
    door.write_conf(configs.door_conf(door.sock, account, li.GROUP, "127.0.0.1", DOOR_RTP,
                                      os.path.join(tmp, "door-events")))
    procs["door"] = door
    door.start()
    wait_for(lambda: door.status().get("registered"), 10, "portier-door registered")
    r = door.ctl("ring")
    check(r and r.get("result") == "calling", "the door rings %s: %s" % (li.GROUP, r))
    web = standin.wait_for("webhook", lambda e: e["body"].get("prid") == WEB_TOKEN,
                           "the webhook push to mon1")
    call_id = web["body"].get("call_id")
    check(web["body"].get("kind") == "call" and call_id and "error" not in web,
          "mon1 pushed (webhook): %s" % web["body"].get("kind"))
    fcm = standin.wait_for("fcm", lambda e: e.get("device") == FCM_TOKEN,
                           "the FCM push to mon2")
    check("error" not in fcm and (fcm.get("data") or {}).get("call-id") == call_id and
          (fcm.get("data") or {}).get("kind") == "call",
          "mon2 pushed (FCM HTTP v1) for the same call: %s" % fcm.get("data"))
    voip = standin.wait_for("apns", lambda e: e.get("device") == APNS_VOIP,
                            "the APNs VoIP push to mon3")
    h = voip.get("headers", {})
    check("error" not in voip and voip.get("status") == 200 and
          h.get("apns-push-type") == "voip" and h.get("apns-topic") == BUNDLE + ".voip" and
          (voip.get("payload") or {}).get("call-id") == call_id,
          "mon3 pushed (APNs VoIP, ES256 bearer verified) for the same call: %s" % h)
    cid1 = mon1.wait_call_event("LinphoneCallIncomingReceived", 10)
    mon2.wait_call_event("LinphoneCallIncomingReceived", 10)
    mon3.wait_call_event("LinphoneCallIncomingReceived", 10)
    log("the three Linphones pushed and ringing (call-id %s)" % call_id)

    ok, f, raw = mon1.cmd("answer %s" % cid1)
    check(ok, "mon1: `answer` accepted")
    wait_for(lambda: door.events("answered") or None, 10, "the door sees mon1's answer")
    mon2.wait_call_event("LinphoneCallReleased", 10)
    follow = standin.wait_for("fcm", lambda e: e.get("device") == FCM_TOKEN and
                              (e.get("data") or {}).get("kind") == "answered-elsewhere",
                              "the answered-elsewhere push to mon2")
    check((follow.get("data") or {}).get("call-id") == call_id,
          "mon2's answered-elsewhere push names the call")
    mon3.wait_call_event("LinphoneCallReleased", 10)
    alert = standin.wait_for("apns", lambda e: e.get("device") == APNS_REMOTE,
                             "the answered-elsewhere alert to mon3's remote token")
    check(alert.get("headers", {}).get("apns-push-type") == "alert" and
          (alert.get("payload") or {}).get("kind") == "answered-elsewhere",
          "mon3's follow-up is an alert at its remote token, not a VoIP push: %s"
          % alert.get("headers"))
    voips = [e for e in standin.events("apns") if e.get("device") == APNS_VOIP]
    check(len(voips) == 1, "mon3's VoIP token got the call's push only (%d)" % len(voips))
    ok, f, raw = mon1.cmd("terminate")
    check(ok, "mon1: `terminate` accepted")
    wait_for(lambda: door.events("ended") or None, 10, "the call to end")
    again = [e["body"] for e in standin.events("webhook") if e["body"].get("prid") == WEB_TOKEN and
             e["body"].get("kind") != "call"]
    check(not again, "mon1, who answered, got no follow-up push (%s)" % again)

    text = proxy.log_text()
    leaked = [t for t in (WEB_TOKEN, FCM_TOKEN, APNS_VOIP, APNS_REMOTE) if t in text]
    check(not leaked, "no device token in the proxy log (%s)" % leaked)
    check(not [t for t in (WEB_TOKEN, FCM_TOKEN, APNS_VOIP, APNS_REMOTE)
               if t in str(proxy.registrations())],
          "no device token in portierctl registrations")
    check(proxy.alive(), "portier-proxy still running")


if __name__ == "__main__":
    li.run = run
    sys.exit(li.main())
