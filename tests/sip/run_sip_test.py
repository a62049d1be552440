#!/usr/bin/env python3
"""SIP conformance tests: one run = one case (`--list` names them).

    run_sip_test.py --proxy build/signaling/portier-proxy \
                    --ctl build/signaling/portierctl --case register_auth

The toolbox and the command line are the package portier_sip/, the cases are
the files of cases/ (one per daemon and area). Exit status: 0 pass, 1 fail,
2 usage/setup error. See README.md.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from portier_sip.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
