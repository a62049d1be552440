"""One sipp run and what it sent and received."""

import os
import signal

from portier_sip.base import TestFailure, log
from portier_sip.sipmsg import attach_raw, parse_message_log


class Sipp:
    """One sipp run. Always bounded: -m, -timeout (+ -timeout_error) and a
    subprocess timeout above it."""

    def __init__(self, env, name, proc, timeout, scenario):
        self.env = env
        self.name = name
        self.proc = proc
        self.timeout = timeout
        self.scenario = scenario
        self.rc = None
        d = env.dir
        self.msg_log = os.path.join(d, name + "_messages.log")
        self.err_log = os.path.join(d, name + "_errors.log")
        self.out_log = os.path.join(d, name + ".out")

    def wait(self):
        rc = self.proc.wait(self.timeout + 10)
        if rc is None:
            log("%s: still running after %ds: killing it" % (self.name, self.timeout + 10))
            self.proc.stop(signal.SIGKILL)
            rc = -9
        self.proc.out.close()
        self.rc = rc
        return rc

    def messages(self, raw=False):
        msgs = parse_message_log(self.msg_log)
        return attach_raw(msgs, self.msg_log) if raw else msgs

    def received(self, pred=lambda m: True, raw=False):
        return [m for m in self.messages(raw) if m.direction == "received" and pred(m)]

    def sent(self, pred=lambda m: True, raw=False):
        return [m for m in self.messages(raw) if m.direction == "sent" and pred(m)]

    def expect_ok(self):
        rc = self.rc if self.rc is not None else self.wait()
        if rc != 0:
            raise TestFailure("sipp %s (%s) exited with %s (expected 0)"
                              % (self.name, self.scenario, rc))
