#!/usr/bin/python3
"""Stand-ins for the push providers that cannot run here: FCM HTTP v1 (with its
OAuth2 token endpoint), APNs and a webhook, on one HTTP/2-over-TLS port (h2 by
ALPN only, RFC 9113 §3.2), with a throwaway CA.

    push_standin.py DIR

makes in DIR a CA (pki/ca.pem), the server's certificate for "localhost", a
Google service-account JSON (RSA key; its token_uri points here), an APNs .p8
key (P-256), an APNs client certificate (cert and key in one PEM) and one
from another CA, writes
DIR/standin.json (the port, the files, the ids the keys belong to), prints
"READY PORT" and serves until stdin closes or it is killed.

What it checks, as the providers document them (an error answer and an
"error" field in the log when a check fails):
- POST /token (Google OAuth2 for service accounts, RFC 7523 §2.1): a
  form body with grant_type jwt-bearer and an RS256 assertion (RFC 7518 §3.3)
  signed by the service account's key: iss = client_email, scope has
  firebase.messaging, aud = token_uri, iat now, exp - iat <= 3600. Answers
  {"access_token","expires_in","token_type"} (RFC 6749 §5.1).
- POST /v1/projects/P/messages:send (FCM HTTP v1): "authorization: Bearer" with
  a token issued here and not expired, a JSON Message with token, string-only
  data, android.priority HIGH and android.ttl "Ns".
- POST /3/device/TOKEN (APNs "Sending notification requests"): apns-push-type
  voip or alert, apns-topic (BUNDLE.voip for voip), apns-priority, a numeric
  apns-expiration, a JSON body with "aps"; and either a client certificate
  from our CA or "authorization: bearer" with an ES256 JWT (RFC 7518 §3.4)
  whose kid and iss are the key's, iat within the hour, signed by the .p8.
- POST /webhook: a JSON object with kind, call_id, prid.

Replies are scripted per device token in DIR/replies.json, read at every
request: {"tokens": {"TOKEN": [{"status": 503, "retry_after": 1}, {"status":
200}]}, "token_expires_in": 3600, "delay": 0.0}: a token's list is used in
order, its last entry for ever; no entry is 200. An APNs entry may carry
"raw_body" (sent as is) or "body_bytes" (that many bytes of junk). "delay" holds every answer
back that many seconds (so requests overlap on a connection); "goaway_after": N
ends each connection with GOAWAY after N answers. Every TLS
connection and every request is one JSON line in DIR/log.jsonl.
"""
import base64
import json
import os
import re
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
from portier_py import pki  # noqa: E402

PROJECT = "portier-standin"
CLIENT_EMAIL = "push@portier-standin.iam.gserviceaccount.com"
APNS_KEY_ID = "STANDINKEY"
APNS_TEAM_ID = "STANDINTEAM"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class State:
    def __init__(self, directory, port):
        self.dir = directory
        self.port = port
        self.lock = threading.Lock()
        self.log_file = open(os.path.join(directory, "log.jsonl"), "a")
        self.connections = 0
        self.tokens_issued = {}  # access token -> expiry (time.time())
        self.token_count = 0
        self.replies_used = {}  # device token -> how many answers it had
        self.script_stamp = None
        self.verified_tokens = {}  # APNs provider token -> (header, claims)
        with open(os.path.join(directory, "pki", "sa.key"), "rb") as f:
            self.sa_public = serialization.load_pem_private_key(f.read(), None).public_key()
        with open(os.path.join(directory, "pki", "apns.p8"), "rb") as f:
            self.apns_public = serialization.load_pem_private_key(f.read(), None).public_key()
        self.token_uri = "https://localhost:%d/token" % port

    def verified_provider_token(self, token):
        """verify_jws for APNs provider tokens, each distinct token checked once
        (APNs too validates a token once, not per request); its age is checked
        by the caller at every request."""
        with self.lock:
            known = self.verified_tokens.get(token)
        if known:
            return known
        result = verify_jws(token, "ES256", self.apns_public)
        with self.lock:
            self.verified_tokens[token] = result
        return result

    def log(self, **fields):
        with self.lock:
            self.log_file.write(json.dumps(fields, sort_keys=True) + "\n")
            self.log_file.flush()

    def script(self):
        """The replies file; a new one (a new write) starts every token's list again."""
        path = os.path.join(self.dir, "replies.json")
        try:
            stamp = os.stat(path).st_mtime_ns
            with open(path) as f:
                text = f.read()
            stamp = (stamp, text)
            script = json.loads(text)
        except (OSError, ValueError):
            return {}
        with self.lock:
            if stamp != self.script_stamp:
                self.script_stamp = stamp
                self.replies_used = {}
        return script

    def reply_for(self, token):
        script = self.script()
        entries = script.get("tokens", {}).get(token)
        with self.lock:
            n = self.replies_used.get(token, 0)
            self.replies_used[token] = n + 1
        if not entries:
            return {"status": 200}
        return entries[min(n, len(entries) - 1)]


def verify_jws(token, alg, public_key):
    """(header, claims) of a compact JWS after checking its signature, or raise."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS")
    header = json.loads(b64url_decode(parts[0]))
    claims = json.loads(b64url_decode(parts[1]))
    if header.get("alg") != alg:
        raise ValueError("alg is %r, not %s" % (header.get("alg"), alg))
    signed = (parts[0] + "." + parts[1]).encode()
    sig = b64url_decode(parts[2])
    try:
        if alg == "RS256":
            public_key.verify(sig, signed, padding.PKCS1v15(), hashes.SHA256())
        else:
            if len(sig) != 64:
                raise ValueError("ES256 signature is %d bytes, not 64" % len(sig))
            der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                             int.from_bytes(sig[32:], "big"))
            public_key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ValueError("bad signature")
    return header, claims


def json_reply(status, obj, extra=()):
    body = json.dumps(obj).encode()
    return status, [("content-type", "application/json")] + list(extra), body


def handle_token(state, req):
    now = time.time()
    form = urllib.parse.parse_qs(req["body"].decode(errors="replace"))
    if req["headers"].get("content-type") != "application/x-www-form-urlencoded":
        raise ValueError("content-type is not a form")
    if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
        raise ValueError("grant_type is not jwt-bearer")
    header, claims = verify_jws(form.get("assertion", [""])[0], "RS256", state.sa_public)
    if claims.get("iss") != CLIENT_EMAIL:
        raise ValueError("iss is not the client_email")
    if FCM_SCOPE not in str(claims.get("scope", "")).split():
        raise ValueError("scope lacks firebase.messaging")
    if claims.get("aud") != state.token_uri:
        raise ValueError("aud is not the token_uri")
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or abs(iat - now) > 300:
        raise ValueError("iat is not now")
    if not isinstance(exp, int) or exp <= now or exp - iat > 3600:
        raise ValueError("exp is past or more than an hour after iat")
    expires_in = int(state.script().get("token_expires_in", 3600))
    with state.lock:
        state.token_count += 1
        token = "ya29.standin-%d-%s" % (state.token_count, os.urandom(8).hex())
        state.tokens_issued[token] = now + expires_in
    return {"n": state.token_count, "expires_in": expires_in}, json_reply(
        200, {"access_token": token, "expires_in": expires_in, "token_type": "Bearer"})


def fcm_error(status, code):
    names = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
             429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
    return {"error": {"code": status, "message": code, "status": names.get(status, "UNKNOWN"),
                      "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                   "errorCode": code}]}}


def handle_fcm(state, req, project):
    auth = req["headers"].get("authorization", "")
    token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
    with state.lock:
        expiry = state.tokens_issued.get(token)
    info = {"project": project, "access_token_n": token.split("-")[1] if token.count("-") >= 2 else ""}
    if expiry is None or expiry < time.time():
        info["error"] = "unknown or expired access token"
        return info, json_reply(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
    if project != PROJECT:
        raise ValueError("unknown project")
    if req["headers"].get("content-type") != "application/json":
        raise ValueError("content-type is not application/json")
    msg = json.loads(req["body"])["message"]
    info["device"] = msg.get("token", "")
    info["data"] = msg.get("data")
    info["android"] = msg.get("android")
    if not info["device"]:
        raise ValueError("no token")
    if not isinstance(msg.get("data"), dict) or not all(
            isinstance(v, str) for v in msg["data"].values()):
        raise ValueError("data is not a map of strings")
    android = msg.get("android") or {}
    if android.get("priority") != "HIGH":
        raise ValueError("android.priority is not HIGH")
    if not re.fullmatch(r"\d+(\.\d{1,9})?s", str(android.get("ttl", ""))):
        raise ValueError("android.ttl is not a duration")
    r = state.reply_for(info["device"])
    info["status"] = r["status"]
    extra = [("retry-after", str(r["retry_after"]))] if "retry_after" in r else []
    if r["status"] == 200:
        return info, json_reply(200, {"name": "projects/%s/messages/%d" % (project, time.time_ns())})
    return info, json_reply(r["status"], fcm_error(r["status"], r.get("reason", "UNREGISTERED")),
                            extra)


def handle_apns(state, req, device, client_cert):
    h = req["headers"]
    info = {"device": device, "auth": "certificate" if client_cert else "token",
            "headers": {k: v for k, v in h.items() if k.startswith("apns-")}}
    if not client_cert:
        auth = h.get("authorization", "")
        if not auth.startswith("bearer "):
            info["error"] = "no provider token"
            return info, json_reply(403, {"reason": "MissingProviderToken"})
        try:
            header, claims = state.verified_provider_token(auth[len("bearer "):])
        except ValueError as e:
            info["error"] = "provider token: %s" % e
            return info, json_reply(403, {"reason": "InvalidProviderToken"})
        if header.get("kid") != APNS_KEY_ID or claims.get("iss") != APNS_TEAM_ID:
            info["error"] = "kid or iss is not the key's"
            return info, json_reply(403, {"reason": "InvalidProviderToken"})
        if not isinstance(claims.get("iat"), int) or claims["iat"] < time.time() - 3600:
            info["error"] = "provider token older than an hour"
            return info, json_reply(403, {"reason": "ExpiredProviderToken"})
        info["jwt_iat"] = claims["iat"]
        info["jwt_id"] = auth[-16:]  # tells one token from another without keeping it
    push_type = h.get("apns-push-type")
    topic = h.get("apns-topic", "")
    if push_type not in ("voip", "alert"):
        raise ValueError("apns-push-type is %r" % push_type)
    if push_type == "voip" and not topic.endswith(".voip"):
        raise ValueError("a voip push's topic must end in .voip")
    if h.get("apns-priority") not in ("10", "5"):
        raise ValueError("apns-priority is %r" % h.get("apns-priority"))
    if not re.fullmatch(r"\d+", h.get("apns-expiration", "")):
        raise ValueError("apns-expiration is not a UNIX time")
    payload = json.loads(req["body"])
    if not isinstance(payload.get("aps"), dict):
        raise ValueError("no aps dictionary")
    info["payload"] = payload
    if not re.fullmatch(r"[0-9a-fA-F]+", device):
        info["status"] = 400
        return info, json_reply(400, {"reason": "BadDeviceToken"})
    r = state.reply_for(device)
    info["status"] = r["status"]
    apns_id = [("apns-id", "%08x-0000-4000-8000-%012x" % (os.getpid(), time.time_ns() % 10**12))]
    extra = [("retry-after", str(r["retry_after"]))] if "retry_after" in r else []
    if "raw_body" in r or "body_bytes" in r:
        # A broken or hostile provider: a body that is not JSON, or a huge one.
        raw = r["raw_body"].encode() if "raw_body" in r else b"x" * int(r["body_bytes"])
        return info, (r["status"], apns_id + extra, raw)
    if r["status"] == 200:
        return info, (200, apns_id, b"")
    body = {"reason": r.get("reason", "Unregistered")}
    if r["status"] == 410:
        body["timestamp"] = int(time.time() * 1000)
    return info, json_reply(r["status"], body, apns_id + extra)


def handle_webhook(state, req):
    body = json.loads(req["body"])
    info = {"body": body}
    for key in ("kind", "call_id", "prid"):
        if not isinstance(body.get(key), str):
            raise ValueError("no %s" % key)
    r = state.reply_for(body["prid"])
    info["status"] = r["status"]
    extra = [("retry-after", str(r["retry_after"]))] if "retry_after" in r else []
    return info, json_reply(r["status"], {}, extra)


def handle(state, req, client_cert):
    path, method = req["headers"].get(":path", ""), req["headers"].get(":method")
    kind = "unknown"
    try:
        if method != "POST":
            raise ValueError("method %s" % method)
        if path == "/token":
            kind = "token"
            info, reply = handle_token(state, req)
        elif re.fullmatch(r"/v1/projects/[^/]+/messages:send", path):
            kind = "fcm"
            info, reply = handle_fcm(state, req, path.split("/")[3])
        elif path.startswith("/3/device/"):
            kind = "apns"
            info, reply = handle_apns(state, req, path[len("/3/device/"):], client_cert)
        elif path == "/webhook":
            kind = "webhook"
            info, reply = handle_webhook(state, req)
        else:
            raise ValueError("unknown path")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        info = {"error": str(e)}
        if kind == "token":
            reply = json_reply(400, {"error": "invalid_grant", "error_description": str(e)})
        elif kind == "apns":
            reply = json_reply(400, {"reason": "BadRequest"})
        else:
            reply = json_reply(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT"}})
    return kind, info, reply


def serve_connection(state, ctx, sock, cid):
    try:
        sock.settimeout(10)
        tls = ctx.wrap_socket(sock, server_side=True)
        tls.settimeout(None)
    except (ssl.SSLError, OSError) as e:
        state.log(event="connection", id=cid, error="handshake: %s" % e)
        sock.close()
        return
    alpn = tls.selected_alpn_protocol()
    client_cert = tls.getpeercert() is not None and tls.getpeercert() != {}
    state.log(event="connection", id=cid, alpn=alpn, client_cert=client_cert)
    if alpn != "h2":
        tls.close()
        return
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                header_encoding="utf-8"))
    conn.initiate_connection()
    tls.sendall(conn.data_to_send())
    streams, due = {}, []  # due: (time, stream_id, (status, headers, body))
    open_requests = 0
    answered = 0
    try:
        while True:
            timeout = max(0.0, min(d[0] for d in due) - time.time()) if due else 1.0
            readable = tls.pending() > 0 or select.select([tls], [], [], timeout)[0]
            if readable:
                data = tls.recv(65536)
                if not data:
                    break
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        streams[ev.stream_id] = {"headers": dict(ev.headers), "body": b""}
                        open_requests += 1
                    elif isinstance(ev, h2.events.DataReceived):
                        if ev.stream_id in streams:
                            streams[ev.stream_id]["body"] += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        req = streams.pop(ev.stream_id, None)
                        if req is None:
                            continue
                        kind, info, reply = handle(state, req, client_cert)
                        state.log(event=kind, conn=cid, stream=ev.stream_id,
                                  concurrent=open_requests, **info)
                        delay = float(state.script().get("delay", 0.0))
                        due.append((time.time() + delay, ev.stream_id, reply))
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        raise EOFError
            now = time.time()
            for item in sorted(d for d in due if d[0] <= now):
                due.remove(item)
                _, sid, (status, headers, body) = item
                open_requests -= 1
                answered += 1
                conn.send_headers(sid, [(":status", str(status)),
                                        ("content-length", str(len(body)))] + headers,
                                  end_stream=not body)
                step = conn.max_outbound_frame_size
                for at in range(0, len(body), step):
                    conn.send_data(sid, body[at:at + step], end_stream=at + step >= len(body))
            out = conn.data_to_send()
            if out:
                tls.sendall(out)
            goaway_after = int(state.script().get("goaway_after", 0))
            if goaway_after and answered >= goaway_after and not due:
                # What APNs does to a connection it wants gone (RFC 9113 §6.8).
                conn.close_connection()
                tls.sendall(conn.data_to_send())
                state.log(event="goaway", conn=cid)
                # Closed only when the client has read it all and closed its
                # side (or after 2 s): closing on unread input would reset the
                # connection and lose the answers still in flight.
                end = time.time() + 2
                while time.time() < end:
                    if select.select([tls], [], [], 0.1)[0] and not tls.recv(65536):
                        break
                break
    except (EOFError, OSError, ssl.SSLError, h2.exceptions.ProtocolError):
        pass
    finally:
        try:
            tls.close()
        except OSError:
            pass


def make_files(directory, port):
    p = pki.Pki(directory)
    if not os.path.exists(p.path("server.pem")):
        p.root("ca", "Push Stand-in Test CA")
        p.issue("server", "localhost", "ca", dns=("localhost",))
        p.issue("apns-client", "APNs client", "ca")
        with open(p.path("apns-client-full.pem"), "w") as out:
            for part in ("apns-client.pem", "apns-client.key"):
                with open(p.path(part)) as f:
                    out.write(f.read())
        pki.openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", p.path("sa.key"))
        pki.openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", p.path("apns.p8"))
        p.root("other-ca", "Someone Else")
        p.issue("other-client", "not ours", "other-ca")
        with open(p.path("other-client-full.pem"), "w") as out:
            for part in ("other-client.pem", "other-client.key"):
                with open(p.path(part)) as f:
                    out.write(f.read())
    with open(p.path("sa.key")) as f:
        sa = {"type": "service_account", "project_id": PROJECT, "private_key_id": "standin",
              "private_key": f.read(), "client_email": CLIENT_EMAIL, "client_id": "1",
              "token_uri": "https://localhost:%d/token" % port}
    sa_path = os.path.join(directory, "service-account.json")
    with open(sa_path, "w") as f:
        json.dump(sa, f)
    info = {"port": port, "ca_file": p.path("ca.pem"), "service_account": sa_path,
            "project": PROJECT, "apns_key_file": p.path("apns.p8"), "apns_key_id": APNS_KEY_ID,
            "apns_team_id": APNS_TEAM_ID, "apns_certificate_file": p.path("apns-client-full.pem"),
            "untrusted_certificate_file": p.path("other-client-full.pem"),
            "log": os.path.join(directory, "log.jsonl")}
    with open(os.path.join(directory, "standin.json"), "w") as f:
        json.dump(info, f)
    return p


def main():
    directory = os.path.abspath(sys.argv[1])
    os.makedirs(directory, exist_ok=True)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    p = make_files(directory, port)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(p.path("server.pem"), p.path("server.key"))
    ctx.load_verify_locations(p.path("ca.pem"))
    ctx.verify_mode = ssl.CERT_OPTIONAL  # APNs' certificate authentication
    ctx.set_alpn_protocols(["h2"])
    state = State(directory, port)
    print("READY %d" % port, flush=True)

    def accept_loop():
        cid = 0
        while True:
            sock, _ = listener.accept()
            cid += 1
            threading.Thread(target=serve_connection, args=(state, ctx, sock, cid),
                             daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    # Ends with its parent: stdin closes when the test that started it goes.
    sys.stdin.read()


if __name__ == "__main__":
    main()
