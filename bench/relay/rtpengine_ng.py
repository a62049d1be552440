#!/usr/bin/env python3
"""Sets up one call in rtpengine through its ng control protocol (bencode over
UDP, as Kamailio's rtpengine module speaks it) for the relay benchmark.

  rtpengine_ng.py NG_PORT CALL_ID RECV_PORT
      offer: the caller's SDP (video on 127.0.0.1:26050), answer: the callee's
      SDP (video on 127.0.0.1:RECV_PORT, where rtpblast counts); prints the
      port on which rtpengine expects the caller's RTP (from the answer SDP that
      rtpengine returns for the caller)
  rtpengine_ng.py NG_PORT CALL_ID --delete
  rtpengine_ng.py NG_PORT --calls N [--tag TAG] [--delete]
      N calls of the door (audio PCMU + video VP8) to one device that answers
      183 recvonly, in the port layout of relay_calls.cpp (door call C stream S
      on 18000 + 4C + 2S, its device on 10000 + 2(2C + S)); prints
      "stream C S PORT" (where rtpengine expects the door's RTP) per call and
      stream, as `relay_calls serve` does. With --delete: deletes them. Call-IDs
      are TAG-C (default "calls"): one TAG per set of calls, so that no Call-ID of
      an earlier set is ever reused.
  rtpengine_ng.py NG_PORT --calls N --srtp [--tag TAG]
      the same with SDES-SRTP on both sides (RFC 4568), terminated and re-keyed
      by rtpengine. rtpengine 10.5 knows no `recrypt` flag ("Unknown flag"): in
      an offer it copies every offered a=crypto line, key included, to the other
      side and makes keys of its own only for the suites not offered; when both
      sides then take the same line it passes the packets through undecrypted.
      So the door offers RTP/SAVP with an AES_CM_128_HMAC_SHA1_32 key only
      (RTPE_DOOR_SUITE), the offer goes out with transport-protocol RTP/SAVP and
      DTLS off, and the device takes rtpengine's own AES_CM_128_HMAC_SHA1_80
      line with a key of its own: rtpengine decrypts the door's packets and
      encrypts them again under its key (checked: the script stops if the key
      towards the device is the door's). Also prints "srtp C S -1 SUITE KEY"
      (the door's) and "srtp C S 0 SUITE KEY" (rtpengine's towards the device),
      as `relay_calls serve portier ... --srtp` does. Bench keys, not secrets.
"""
import base64
import os
import re
import socket
import sys


def benc(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(benc(x) for x in v) + b"e"
    if isinstance(v, dict):
        return b"d" + b"".join(benc(k) + benc(v[k]) for k in sorted(v)) + b"e"
    raise TypeError(v)


def bdec(b, i=0):
    c = b[i:i + 1]
    if c == b"i":
        j = b.index(b"e", i)
        return int(b[i + 1:j]), j + 1
    if c in (b"l", b"d"):
        i += 1
        out = [] if c == b"l" else {}
        while b[i:i + 1] != b"e":
            if c == b"l":
                v, i = bdec(b, i)
                out.append(v)
            else:
                k, i = bdec(b, i)
                v, i = bdec(b, i)
                out[k.decode()] = v
        return out, i + 1
    j = b.index(b":", i)
    n = int(b[i:j])
    return b[j + 1:j + 1 + n], j + 1 + n


def ng(port, cmd, cookie):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(cookie.encode() + b" " + benc(cmd), ("127.0.0.1", port))
    data, _ = s.recvfrom(65536)
    _, _, body = data.partition(b" ")
    reply, _ = bdec(body)
    if reply.get("result") != b"ok":
        sys.exit("rtpengine: %r" % reply)
    return reply


def sdp(port):
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=video %d RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=sendrecv\r\n" % port)


DOOR_BASE, DEV_BASE = 18000, 10000


def door_sdp(c, origin, ports, direction, crypto=None):
    """crypto: one a=crypto value per stream (SRTP, RTP/SAVP), or None (RTP/AVP)."""
    proto = "RTP/SAVP" if crypto else "RTP/AVP"
    media = "".join("m=%s %d %s %s\r\na=rtpmap:%s\r\na=%s\r\n%s"
                    % (kind, port, proto, pt, rtpmap, direction,
                       "a=crypto:%s\r\n" % crypto[s] if crypto else "")
                    for s, ((kind, pt, rtpmap), port) in enumerate(zip(
                        [("audio", "0", "0 PCMU/8000"), ("video", "96", "96 VP8/90000")], ports)))
    return ("v=0\r\no=%s %d 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            % (origin, c)) + media


def sdes_key():
    """A fresh AES_CM_128_HMAC_SHA1_80 master key || salt (RFC 4568 section 6.2.1)."""
    return base64.b64encode(os.urandom(30)).decode()


def srtp_calls(port, n, tag):
    suite = "AES_CM_128_HMAC_SHA1_80"
    door_suite = os.environ.get("RTPE_DOOR_SUITE", "AES_CM_128_HMAC_SHA1_32")
    for c in range(n):
        call = "%s-%d" % (tag, c)
        door = [DOOR_BASE + 4 * c + 2 * s for s in range(2)]
        dev = [DEV_BASE + 2 * (2 * c + s) for s in range(2)]
        door_keys = [sdes_key() for _ in range(2)]
        r = ng(port, {"command": "offer", "call-id": call, "from-tag": "door",
                      "sdp": door_sdp(c, "door", door, "sendrecv",
                                      ["1 %s inline:%s" % (door_suite, k) for k in door_keys]),
                      "replace": ["origin"], "transport-protocol": "RTP/SAVP", "DTLS": "off",
                      }, "o" + call)
        # rtpengine's lines towards the device, per m= line: the first of our suite
        offered = []
        for block in re.split(rb"\r?\nm=", r["sdp"])[1:]:
            m = re.search(rb"a=crypto:(\d+) " + suite.encode() + rb" inline:([A-Za-z0-9+/=]+)", block)
            if not m:
                sys.exit("rtpengine offered no %s line: %r" % (suite, r["sdp"]))
            offered.append((m.group(1).decode(), m.group(2).decode()))
        for s, (t, k) in enumerate(offered):
            if k == door_keys[s]:
                sys.exit("rtpengine passed the door's key through (no re-keying)")
        dev_lines = ["%s %s inline:%s" % (t, suite, sdes_key()) for t, _ in offered]
        r = ng(port, {"command": "answer", "call-id": call, "from-tag": "door", "to-tag": "dev",
                      "sdp": door_sdp(c, "dev", dev, "recvonly", dev_lines),
                      "transport-protocol": "RTP/SAVP", "DTLS": "off"},
               "a" + call)
        ports = re.findall(rb"m=(?:audio|video) (\d+)", r["sdp"])
        for s, p in enumerate(ports):
            print("srtp %d %d -1 %s %s" % (c, s, door_suite, door_keys[s]))
            print("srtp %d %d 0 %s %s" % (c, s, suite, offered[s][1]))
            print("stream %d %d %s" % (c, s, p.decode()))


def calls(port, n, tag, delete):
    for c in range(n):
        call = "%s-%d" % (tag, c)
        if delete:
            ng(port, {"command": "delete", "call-id": call}, "d" + call)
            continue
        door = [DOOR_BASE + 4 * c + 2 * s for s in range(2)]
        dev = [DEV_BASE + 2 * (2 * c + s) for s in range(2)]
        ng(port, {"command": "offer", "call-id": call, "from-tag": "door",
                  "sdp": door_sdp(c, "door", door, "sendrecv"), "replace": ["origin"]},
           "o" + call)
        r = ng(port, {"command": "answer", "call-id": call, "from-tag": "door", "to-tag": "dev",
                      "sdp": door_sdp(c, "dev", dev, "recvonly")}, "a" + call)
        ports = re.findall(rb"m=(?:audio|video) (\d+)", r["sdp"])
        for s, p in enumerate(ports):
            print("stream %d %d %s" % (c, s, p.decode()))


def main():
    if sys.argv[2] == "--calls":
        rest = sys.argv[4:]
        tag = rest[rest.index("--tag") + 1] if "--tag" in rest else "calls"
        if "--srtp" in rest and "--delete" not in rest:
            srtp_calls(int(sys.argv[1]), int(sys.argv[3]), tag)
            return
        calls(int(sys.argv[1]), int(sys.argv[3]), tag, "--delete" in rest)
        return
    port, call = int(sys.argv[1]), sys.argv[2]
    if sys.argv[3] == "--delete":
        ng(port, {"command": "delete", "call-id": call}, "d" + call)
        return
    recv = int(sys.argv[3])
    ng(port, {"command": "offer", "call-id": call, "from-tag": "caller", "sdp": sdp(26050),
              "replace": ["origin"]}, "o" + call)
    r = ng(port, {"command": "answer", "call-id": call, "from-tag": "caller", "to-tag": "callee",
                  "sdp": sdp(recv)}, "a" + call)
    m = re.search(rb"m=video (\d+)", r["sdp"])
    print(m.group(1).decode())


if __name__ == "__main__":
    main()
