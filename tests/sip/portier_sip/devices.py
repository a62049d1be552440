"""portier-door and portier-monitor seen from the outside: their access config, their
logs, the SIP messages they logged, their media counters."""

import re
import time

from portier_sip.base import ATTACKER, DOMAIN, DOOR_CODE, USERS, check, log


def door_with_monitor_access(env, codec="vp8", extra="", account_extra=""):
    env.start_door(video_codec=codec, auto_answer="sip:mon1@%s sip:mon2@%s" % (DOMAIN, DOMAIN),
                   account_extra=account_extra,
                   extra="[actions]\ndoor = %s log\n[access]\nallow = sip:mon1@%s sip:mon2@%s\n%s"
                   % (DOOR_CODE, DOMAIN, DOMAIN, extra))


def check_no_code_in_logs(env, *names):
    for n in names:
        text = env.monitor_log_text(n) + open(env.monitor_events_file(n)).read()
        check(DOOR_CODE not in text.replace("sip:", ""), "the door code is in %s's log" % n)
        check(USERS.get(n, "no-such-password") not in text, "%s's password is in its log" % n)


def wire_messages(text):
    """The SIP messages in a device's log written with TPORT_LOG=1 (sofia-sip
    logs each message it sends or receives between two dashed lines, each
    line indented): what a sniffer on the LAN sees. Returns (direction,
    [lines]) pairs, direction "recv" or "send"."""
    out, cur, direction = [], None, None
    for line in text.splitlines():
        prefixed = re.match(r"^\S+ \S+\[\d+\] \w+: (.*)$", line)  # our log's own prefix
        if prefixed:
            line = prefixed.group(1)
        m = re.match(r"^(recv|send) \d+ bytes (from|to) ", line)
        if m:
            direction = m.group(1)
            continue
        if re.match(r"^\s+-{20,}\s*$", line):
            if cur is None:
                cur = []
            else:
                out.append((direction, cur))
                cur = None
            continue
        if cur is not None:
            cur.append(line.strip())
    return out


def wire_header(lines, name):
    for line in lines:
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def in_dialog_request(method, ruri, from_hdr, to_hdr, call_id, cseq, tag):
    """build(local_port) for _attack: an in-dialog request from the attacker's
    socket with the sniffed ids (RFC 3261 section 12.2.1.1)."""
    def build(p):
        lines = ["%s %s SIP/2.0" % (method, ruri),
                 "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-%s-%d" % (ATTACKER, p, tag, p),
                 "From: %s" % from_hdr, "To: %s" % to_hdr, "Call-ID: %s" % call_id,
                 "CSeq: %d %s" % (cseq, method), "Max-Forwards: 70", "Content-Length: 0"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()
    return build


def media_counters(env, name):
    door, mon = env.door_ctl("status"), env.mon_ctl(name, "status")
    return (door.get("video_packets_sent", 0), door.get("audio_packets_received", 0),
            mon.get("video_packets_received", 0), mon.get("audio_packets_received", 0))


def media_still_flows(env, name, within=5):
    """True when every counter of media_counters grows within `within` s."""
    before = media_counters(env, name)
    deadline = time.time() + within
    now = before
    while time.time() < deadline:
        time.sleep(0.3)
        now = media_counters(env, name)
        if all(b > a for a, b in zip(before, now)):
            return True
    log("media counters (door video sent, door audio received, %s video received, "
        "%s audio received): %s -> %s" % (name, name, before, now))
    return False


def check_answered_with_audio(env, answerer, other):
    """After `answerer` answered the door's call: `other` stopped ringing with
    "answered elsewhere", `answerer` sends and receives audio, and its audio
    reaches the door."""
    st = env.wait_monitor(other, lambda st: st.get("call") == "ended", "the end of its ringing")
    check(st.get("reason") == "answered elsewhere",
          "%s ended with %r, not 'answered elsewhere'" % (other, st.get("reason")))
    st = env.wait_monitor(answerer, lambda st: st.get("audio_packets_sent", 0) > 25 and
                          st.get("audio_packets_received", 0) > 25, "two-way audio", 10)
    check(st.get("call") == "answered", "%s is %s after answering" % (answerer, st.get("call")))
    deadline = time.time() + 5
    while time.time() < deadline and env.door_ctl("status").get("audio_packets_received", 0) == 0:
        time.sleep(0.1)
    check(env.door_ctl("status").get("audio_packets_received", 0) > 0,
          "%s's audio never reached the door" % answerer)
