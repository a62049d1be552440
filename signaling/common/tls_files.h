// A TLS server's certificate and private key, checked before a server is built
// on them: TLS libraries (GLib's among them) load a key that does not belong to
// the certificate without a word, and every handshake then fails far from the
// cause.
#pragma once

#include <string>

namespace portier {

// True when certificate_file holds a PEM certificate (a chain: the first is the
// server's) and private_key_file an unencrypted PEM private key that belongs to it.
// Otherwise false and *error names the file at fault ("PATH: ...").
bool check_tls_key_pair(const std::string &certificate_file, const std::string &private_key_file,
                        std::string *error);

}  // namespace portier
