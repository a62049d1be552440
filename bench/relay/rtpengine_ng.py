#!/usr/bin/env python3
"""Sets up one call in rtpengine through its ng control protocol (bencode over
UDP, as Kamailio's rtpengine module speaks it) for the relay benchmark.

  rtpengine_ng.py NG_PORT CALL_ID RECV_PORT
      offer: the caller's SDP (video on 127.0.0.1:26050), answer: the callee's
      SDP (video on 127.0.0.1:RECV_PORT, where rtpblast counts); prints the
      port on which rtpengine expects the caller's RTP (from the answer SDP that
      rtpengine returns for the caller)
  rtpengine_ng.py NG_PORT CALL_ID --delete
"""
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


def main():
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
