"""Configs of portier's programs as the tests and benchmarks run them on this
machine: a proxy with digest on and the group address, a door with the test
pattern and no sound card, a headless monitor with a test tone. Each builder
takes what differs from one run to the next, `more`: {section: {key: value}}
added or overriding (a value None drops the key), and `text`: INI text put at
the end (a later `[section]` continues it; the last value of a key counts)."""

DOMAIN = "home.example"


def ini(sections):
    """INI text of {section: {key: value}}, in order; None values left out."""
    out = []
    for name, keys in sections.items():
        out.append("[%s]" % name)
        out += ["%s = %s" % (k, v) for k, v in keys.items() if v is not None]
    return "\n".join(out) + "\n"


def _with(sections, more, text):
    for name, keys in (more or {}).items():
        sections.setdefault(name, {}).update(keys)
    return ini(sections) + text


def users_file(path, users, domain=DOMAIN):
    """A users file in Flexisip's format with clear-text passwords, {user: password}."""
    with open(path, "w") as f:
        f.write("version:1\n" + "".join("%s@%s clrtxt:%s ;\n" % (u, domain, pw)
                                        for u, pw in users.items()))
    return path


def proxy_conf(address, port, state_dir, sock, users, relay_ports, domain=DOMAIN,
               group="home", more=None, text=""):
    """portier-proxy on address:port (UDP and TCP): registrar and digest for
    `domain` (users: the users file), the group address sip:GROUP@DOMAIN, the
    media relay on relay_ports ("first-last")."""
    return _with({
        "global": {"transports": "sip:{a}:{p} sip:{a}:{p};transport=tcp".format(a=address, p=port),
                   "log-level": "debug", "state-directory": state_dir, "control-socket": sock},
        "module::Registrar": {"reg-domains": domain,
                              "group-addresses": "sip:%s@%s" % (group, domain)},
        "module::Authentication": {"enabled": "true", "auth-domains": domain, "file-path": users,
                                   "available-algorithms": "MD5 SHA-256"},
        "module::MediaRelay": {"port-range": relay_ports},
    }, more, text)


def account(aor, password, proxy, bind, transport="udp"):
    """An [account] section: aor, password, and the proxy and bind addresses
    ("host:port") over `transport`."""
    return {"aor": aor, "password": password,
            "proxy": "sip:%s;transport=%s" % (proxy, transport),
            "bind": "sip:%s;transport=%s" % (bind, transport), "register-expires": 600}


def door_conf(sock, account, target, address, port_range, events_dir, more=None, text=""):
    """portier-door calling `target`: test pattern (camera none), VP8 320x240 at
    15 fps, no sound card, event lines and snapshots in events_dir."""
    return _with({
        "global": {"log-level": "debug", "control-socket": sock},
        "account": account,
        "call": {"target": target, "ring-timeout": 30},
        "events": {"dir": events_dir},
        "media": {"address": address, "port-range": port_range, "video-codec": "vp8",
                  "width": 320, "height": 240, "framerate": 15, "camera": "none",
                  "audio-source": "none", "audio-sink": "none"},
    }, more, text)


def monitor_conf(sock, account, address, port_range, domain=DOMAIN, events_file=None,
                 more=None, text=""):
    """portier-monitor, headless, a test tone as its microphone and no speaker;
    the door sip:door@DOMAIN as `front` in its doors list."""
    return _with({
        "global": {"log-level": "debug", "control-socket": sock, "events-file": events_file},
        "account": account,
        "media": {"address": address, "port-range": port_range, "microphone": "test",
                  "speaker": "none"},
        "doors": {"front": "sip:door@%s" % domain},
        "ui": {"mode": "headless"},
    }, more, text)
