#!/usr/bin/env python3
"""Interop test (issue 11): portier-door and portier-monitor with Kamailio 5.6
(Debian package kamailio) as registrar and proxy. Python 3 stdlib only.

Kamailio challenges with MD5 alone (what it, Asterisk and most deployed
proxies send; RFC 2617 / RFC 7616 §3.3, qop=auth) against a db_text
subscriber table. The door and a monitor must register (401 answered): the
bindings show in Kamailio's own location table (`kamcmd ul.dump` over its
ctl socket). Then the door rings the monitor through Kamailio (the INVITE's
407 answered) and the monitor rings with the door's early media (183 with
SDP); the door gives up and the monitor's ringing ends.

Ports: Kamailio 127.0.0.1:39060; the door 39140 (SIP) and 39150-39159
(RTP); the monitor 39170 (SIP) and 39180-39199 (RTP). No other test uses them.

    kamailio_registrar.py --ctl build/signaling/portierctl \\
        --door build/signaling/portier-door --monitor build/signaling/portier-monitor

Exit status: 0 pass, 1 fail, 77 skipped (kamailio or kamcmd not installed).
"""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linphone_interop as li  # noqa: E402  log, check, wait_for, stop_group
import portier_devices as pd  # noqa: E402

KAM_PORT = 39060
DOOR_SIP, DOOR_RTP = 39140, "39150-39159"
MON_SIP, MON_RTP = 39170, "39180-39199"
USERS = {"door": "door-Kam-5521", "mon1": "mon1-Kam-8830"}
check, log, wait_for = li.check, li.log, li.wait_for

KAMAILIO_CFG = """#!KAMAILIO
# Kamailio as the home's registrar and proxy for the interop test: MD5 digest
# (qop=auth) against a db_text subscriber table, contacts in memory, parallel
# fork to every contact of the AOR, record-routed INVITEs.
debug=2
log_stderror=yes
children=1
disable_tcp=yes
disable_sctp=yes
enable_tls=no
auto_aliases=no
dns=no
rev_dns=no
listen=udp:127.0.0.1:{port}
alias="{domain}"

mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "db_text.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
loadmodule "ctl.so"

modparam("ctl", "binrpc", "unix:{dir}/kamailio_ctl")
modparam("usrloc", "db_mode", 0)
modparam("registrar", "min_expires", 60)
modparam("registrar", "max_expires", 3600)
modparam("auth", "nonce_count", 1)
modparam("auth", "secret", "portier-interop-secret")
modparam("auth_db", "db_url", "text://{dir}/db")
modparam("auth_db", "calculate_ha1", 1)
modparam("auth_db", "password_column", "password")
modparam("auth_db", "use_domain", 1)
modparam("auth_db", "load_credentials", "")

request_route {{
	if (!mf_process_maxfwd_header("10")) {{
		sl_send_reply("483", "Too Many Hops");
		exit;
	}}
	if (has_totag()) {{
		if (loose_route()) {{
			route(RELAY);
		}}
		if (is_method("ACK")) {{
			if (t_check_trans()) {{
				t_relay();
			}}
			exit;
		}}
		sl_send_reply("404", "Not Here");
		exit;
	}}
	if (is_method("CANCEL")) {{
		if (t_check_trans()) {{
			route(RELAY);
		}}
		exit;
	}}
	if (!is_method("ACK")) {{
		t_check_trans();
	}}
	# 401 for REGISTER, 407 for the rest; MD5 with qop=auth
	if (!auth_check("{domain}", "subscriber", "1")) {{
		auth_challenge("{domain}", "1");
		exit;
	}}
	consume_credentials();
	if (is_method("REGISTER")) {{
		if (!save("location")) {{
			sl_reply_error();
		}}
		exit;
	}}
	if (is_method("INVITE")) {{
		record_route();
	}}
	if (!lookup("location")) {{
		sl_send_reply("404", "Not Found");
		exit;
	}}
	route(RELAY);
}}

route[RELAY] {{
	if (!t_relay()) {{
		sl_reply_error();
	}}
	exit;
}}
"""


class Kamailio:
    def __init__(self, exe, tmp):
        self.exe, self.dir = exe, tmp
        self.conf = os.path.join(tmp, "kamailio.cfg")
        self.logfile = os.path.join(tmp, "kamailio.log")
        self.proc = None
        db = os.path.join(tmp, "db")
        os.makedirs(db)
        os.makedirs(os.path.join(tmp, "run"))
        with open(os.path.join(db, "version"), "w") as f:
            f.write("id(int,auto) table_name(string) table_version(int) \nsubscriber:7\n")
        with open(os.path.join(db, "subscriber"), "w") as f:
            f.write("id(int,auto) username(string) domain(string) password(string) "
                    "ha1(string,null) ha1b(string,null) \n")
            for i, (u, pw) in enumerate(sorted(USERS.items()), 1):
                f.write("%d:%s:%s:%s::\n" % (i, u, li.DOMAIN, pw))
        with open(self.conf, "w") as f:
            f.write(KAMAILIO_CFG.format(port=KAM_PORT, domain=li.DOMAIN, dir=tmp))

    def start(self):
        r = subprocess.run([self.exe, "-c", "-f", self.conf], capture_output=True, text=True,
                           timeout=20)
        if r.returncode != 0:
            raise li.TestFailure("kamailio -c refuses the config: %s" % r.stderr[-800:])
        with open(self.logfile, "w") as out:
            self.proc = subprocess.Popen(
                [self.exe, "-f", self.conf, "-DD", "-E", "-m", "32", "-M", "8",
                 "-Y", os.path.join(self.dir, "run"),
                 "-P", os.path.join(self.dir, "run", "kamailio.pid")],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        wait_for(lambda: self.ul_dump() is not None, 10, "Kamailio's ctl socket")

    def ul_dump(self):
        """`kamcmd ul.dump`: Kamailio's location table, or None."""
        if self.proc.poll() is not None:
            raise li.TestFailure("kamailio exited with status %s" % self.proc.returncode)
        try:
            r = subprocess.run(["kamcmd", "-s", "unix:%s/kamailio_ctl" % self.dir, "ul.dump"],
                               capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.stdout if r.returncode == 0 else None

    def stop(self):
        if self.proc is not None:
            li.stop_group(self.proc)


def binding(dump, user, port):
    """True when Kamailio's location table holds user's contact on port."""
    aor = None
    for line in dump.splitlines():
        line = line.strip()
        if line.startswith("AoR:"):
            aor = line.split(":", 1)[1].strip()
        elif line.startswith("Address:") and aor in (user, "%s@%s" % (user, li.DOMAIN)):
            if ":%d" % port in line:
                return True
    return False


def run(args, tmp, procs):
    kam = Kamailio(args.kamailio, tmp)
    procs["kamailio"] = kam
    kam.start()
    log("Kamailio up: %s" % subprocess.run([args.kamailio, "-v"], capture_output=True,
                                           text=True).stdout.splitlines()[0])
    # Kamailio adds no portier identity proof (P-Portier-Proof): the devices
    # behind it take the asserted identity from their trusted hop alone.
    no_proof = "identity-proof = false\n"
    door = pd.door(args.door, args.ctl, tmp, USERS["door"], KAM_PORT, DOOR_SIP, DOOR_RTP,
                   "sip:mon1@%s" % li.DOMAIN, account_extra=no_proof)
    procs["door"] = door
    mon = pd.monitor(args.monitor, args.ctl, tmp, "mon1", "mon1", USERS["mon1"], KAM_PORT,
                     MON_SIP, MON_RTP, account_extra=no_proof)
    procs["mon1"] = mon
    door.start()
    mon.start()
    log("portier-door and portier-monitor registered, by their own account")
    dump = wait_for(lambda: (lambda d: d if d and binding(d, "door", DOOR_SIP)
                             and binding(d, "mon1", MON_SIP) else None)(kam.ul_dump()),
                    5, "both bindings in `kamcmd ul.dump`")
    check(binding(dump, "door", DOOR_SIP) and binding(dump, "mon1", MON_SIP),
          "Kamailio's location table holds door@:%d and mon1@:%d" % (DOOR_SIP, MON_SIP))

    # The door rings the monitor through Kamailio: its INVITE is challenged
    # (407, MD5) and must come again with credentials to get through.
    r = door.ctl("ring", errors=True)
    check(r and r.get("result") == "calling", "the door's button starts a call (%s)" % r)
    st = wait_for(lambda: (lambda s: s if s and s.get("call") == "early" else None)(mon.status()),
                  10, "the monitor ringing with early media")
    check(st.get("peer") == "sip:door@%s" % li.DOMAIN, "the monitor rings for the door (%s)"
          % st.get("peer"))
    r = door.ctl("hangup", errors=True)
    check(r and r.get("result") == "hung up", "the door gives up (%s)" % r)
    wait_for(lambda: (mon.status() or {}).get("call") == "ended", 10, "the monitor's ringing to end")
    for dev in (door, mon):
        bad = [l for l in dev.log_text().splitlines() if "cannot answer" in l or "refused" in l]
        check(not bad, "%s answered every challenge (%s)" % (dev.name, bad[:2]))
        check(USERS[dev.name] not in dev.log_text(), "%s's password is not in its log" % dev.name)


def kamailio_found(args):
    args.kamailio = shutil.which(args.kamailio) or shutil.which("/usr/sbin/kamailio")
    return args.kamailio and shutil.which("kamcmd")


def main():
    return pd.main(__doc__, run, ("ctl", "door", "monitor"), (KAM_PORT, DOOR_SIP, MON_SIP),
                   "portier-kamailio-", kamailio_found,
                   "kamailio or kamcmd not found (Debian package kamailio)", "kamailio")


if __name__ == "__main__":
    sys.exit(main())
