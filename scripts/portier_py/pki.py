"""A small PKI made with the openssl CLI: roots, intermediates and server
certificates with DNS subjectAltNames (sofia-sip never matches an IP one:
docs/TLS.md section 3). The tests make a throwaway one per case (standard());
the demo keeps its own under its build folder (home()).  Python 3 stdlib only."""

import os
import subprocess

from portier_py.daemons import Failure


def openssl(*argv, cwd=None):
    r = subprocess.run(["openssl"] + list(argv), capture_output=True, text=True, timeout=30,
                       cwd=cwd)
    if r.returncode != 0:
        raise Failure("openssl %s: %s" % (" ".join(argv[:2]), r.stderr[-800:]))
    return r.stdout


class Pki:
    def __init__(self, directory, sub="pki"):
        self.dir = os.path.join(directory, sub)
        os.makedirs(self.dir, mode=0o700, exist_ok=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def _key(self, name):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", self.path(name + ".key"))
        return self.path(name + ".key")

    def root(self, name, cn, days=30):
        """A self-signed CA: NAME.pem, NAME.key."""
        key = self._key(name)
        openssl("req", "-x509", "-new", "-key", key, "-out", self.path(name + ".pem"),
                "-days", str(days), "-subj", "/CN=" + cn,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return self.path(name + ".pem")

    def issue(self, name, cn, issuer, dns=(), ca=False, days=5, expired=False):
        """NAME.pem signed by `issuer` (a root() or an issue(ca=True) name), with
        subjectAltName DNS entries `dns`; NAME.key. An expired one ran out in 2021."""
        key = self._key(name)
        csr = self.path(name + ".csr")
        openssl("req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + cn)
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            if ca:
                f.write("basicConstraints=critical,CA:TRUE,pathlen:0\n"
                        "keyUsage=critical,keyCertSign,cRLSign\n")
            else:
                f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n")
            if dns:
                f.write("subjectAltName=" + ",".join("DNS:" + d for d in dns) + "\n")
        out = self.path(name + ".pem")
        if expired:
            # openssl x509 cannot date a certificate in the past; openssl ca can.
            db = self.path("ca-db")
            os.makedirs(db, exist_ok=True)
            open(os.path.join(db, "index.txt"), "a").close()
            with open(os.path.join(db, "serial"), "w") as f:
                f.write("1000\n")
            cnf = self.path("ca.cnf")
            with open(cnf, "w") as f:
                f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\n"
                        "new_certs_dir = %s\nserial = %s/serial\ndefault_md = sha256\n"
                        "policy = p\n[p]\ncommonName = supplied\n" % (db, db, db))
            openssl("ca", "-batch", "-config", cnf, "-cert", self.path(issuer + ".pem"),
                    "-keyfile", self.path(issuer + ".key"), "-in", csr, "-out", out,
                    "-extfile", ext, "-startdate", "20200101000000Z",
                    "-enddate", "20210101000000Z", "-notext")
        else:
            openssl("x509", "-req", "-in", csr, "-CA", self.path(issuer + ".pem"),
                    "-CAkey", self.path(issuer + ".key"), "-CAcreateserial", "-out", out,
                    "-days", str(days), "-extfile", ext)
        return out

    def chain(self, name, *parts):
        """NAME.pem: the named certificates one after the other (a fullchain)."""
        with open(self.path(name + ".pem"), "w") as out:
            for p in parts:
                with open(self.path(p + ".pem")) as f:
                    out.write(f.read())
        return self.path(name + ".pem")

    def valid(self, name, seconds=0):
        """NAME.pem and NAME.key are there and the certificate is valid for
        `seconds` more."""
        if not (os.path.exists(self.path(name + ".pem")) and
                os.path.exists(self.path(name + ".key"))):
            return False
        r = subprocess.run(["openssl", "x509", "-in", self.path(name + ".pem"), "-noout",
                            "-checkend", str(seconds)], capture_output=True, timeout=30)
        return r.returncode == 0

    def serial(self, name):
        return openssl("x509", "-in", self.path(name + ".pem"), "-noout",
                       "-serial").strip().split("=", 1)[1]


def standard(directory):
    """The set most cases use: root `ca`, intermediate `mid`, the proxy's
    fullchain `proxy-full` (leaf `proxy`, named 127.0.0.1 and proxy.test, from
    `mid`) with key proxy.key; `proxy2` the same names, a new serial; `expired`,
    `othername` (other.test) from the root;
    `nameonly-full` (proxy.test alone, key nameonly.key) from `mid`; `evil-ca` and `evil` signed by it."""
    p = Pki(directory)
    p.root("ca", "Portier Test Root")
    p.issue("mid", "Portier Test Intermediate", "ca", ca=True)
    p.issue("proxy", "127.0.0.1", "mid", dns=("127.0.0.1", "proxy.test"))
    p.chain("proxy-full", "proxy", "mid")
    p.issue("proxy2", "127.0.0.1", "mid", dns=("127.0.0.1", "proxy.test"))
    p.chain("proxy2-full", "proxy2", "mid")
    p.issue("expired", "127.0.0.1", "ca", dns=("127.0.0.1", "proxy.test"), expired=True)
    p.issue("othername", "other.test", "ca", dns=("other.test",))
    p.issue("nameonly", "proxy.test", "mid", dns=("proxy.test",))
    p.chain("nameonly-full", "nameonly", "mid")
    p.root("evil-ca", "Someone Else")
    p.issue("evil", "127.0.0.1", "evil-ca", dns=("127.0.0.1", "proxy.test"))
    return p


DAY = 86400


def home(directory, proxy_name):
    """The demo's PKI in DIRECTORY/tls, kept across runs: a root `ca` (ca.pem,
    what door and monitors trust) and the proxy's certificate for the DNS name
    `proxy_name` (proxy.pem, proxy.key), each made again when missing or within
    a day of its end, the proxy's also when the root was remade or it names
    another host. Returns the Pki."""
    p = Pki(directory, "tls")
    remade = False
    if not p.valid("ca", DAY):
        p.root("ca", "portier demo home CA", days=3650)
        remade = True
    names = ""
    if p.valid("proxy", DAY):
        names = openssl("x509", "-in", p.path("proxy.pem"), "-noout", "-ext", "subjectAltName")
    if remade or "DNS:%s" % proxy_name not in names:
        p.issue("proxy", proxy_name, "ca", dns=(proxy_name,), days=397)
    return p
