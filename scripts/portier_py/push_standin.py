"""Runs tests/push/push_standin.py (FCM with its OAuth2 token endpoint, APNs
and a webhook over HTTP/2 and TLS) for a test, and reads its JSON-lines log.
The SIP push cases and the Linphone push interop test share it."""

import json
import os
import select
import subprocess
import time

STANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "push",
                       "push_standin.py")
# The stand-in needs python3-h2 and python3-cryptography: Debian's python3
# has them (the first python3 in PATH may be another one).
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"


class PushStandin:
    """The stand-in serving from `directory` (its PKI, keys and log) on a free
    loopback port until stop() closes its stdin. `failure` is the exception a
    failed wait raises (each harness has its own)."""

    failure = AssertionError

    def __init__(self, directory, log=print, prefix=()):
        """prefix: argv the stand-in runs under (e.g. ip netns exec NS: it then
        serves on that namespace's loopback, for a proxy in it)."""
        self.dir = directory
        self.popen = subprocess.Popen(list(prefix) + [PYTHON, STANDIN, self.dir],
                                      stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        ready = select.select([self.popen.stdout], [], [], 30)[0]
        line = self.popen.stdout.readline().decode() if ready else ""
        if not line.startswith("READY "):
            self.stop()
            raise self.failure("push stand-in did not start: %r" % line)
        with open(os.path.join(self.dir, "standin.json")) as f:
            self.info = json.load(f)
        self.url = "https://localhost:%d" % self.info["port"]
        log("push stand-in on %s (pid %d)" % (self.url, self.popen.pid))

    def script(self, replies):
        """The scripted answers (push_standin.py's replies.json)."""
        with open(os.path.join(self.dir, "replies.json"), "w") as f:
            json.dump(replies, f)

    def events(self, kind):
        """Every logged request of `kind` (token, fcm, apns, webhook), in order."""
        try:
            with open(self.info["log"]) as f:
                return [e for e in map(json.loads, f) if e.get("event") == kind]
        except OSError:
            return []

    def wait_for(self, kind, pred, what, timeout=10.0):
        """The first `kind` request for which pred holds, waiting up to timeout."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for e in self.events(kind):
                if pred(e):
                    return e
            time.sleep(0.1)
        raise self.failure("push stand-in: no %s within %.0f s (its %s requests: %s)"
                           % (what, timeout, kind, self.events(kind)[-3:]))

    def stop(self):
        if self.popen.poll() is None:
            self.popen.stdin.close()
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.popen.stdout.close()

    def proxy_section(self, apns=False):
        """[module::PushNotification] for portier-proxy: FCM (the stand-in's
        service account and project), the webhook, the stand-in's CA; with
        `apns`, APNs token authentication with the stand-in's .p8 key, key id
        and team id, production and sandbox both pointing at the stand-in."""
        i = self.info
        text = ("\n[module::PushNotification]\nenabled = true\n"
                "firebase-service-accounts = %s:%s\nfirebase-base-url = %s\n"
                "webhook-url = %s/webhook\nca-file = %s\n"
                "retransmission-count = 2\nretransmission-interval = 1\n"
                % (i["project"], i["service_account"], self.url, self.url, i["ca_file"]))
        if apns:
            text += ("apns-base-url = %s\napns-dev-base-url = %s\napns-key-file = %s\n"
                     "apns-key-id = %s\napns-team-id = %s\n"
                     % (self.url, self.url, i["apns_key_file"], i["apns_key_id"],
                        i["apns_team_id"]))
        return text
