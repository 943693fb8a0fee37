"""Stands in for ansible-test's pip bootstrap script (get-pip), which ansible-test
downloads from a host these machines cannot reach. It installs pip from Python's
bundled ensurepip and then runs `pip install` with the arguments ansible-test gives
(from PyPI, which is reachable). scripts/sanity places it in ansible-test's cache.
"""

import ensurepip
import os
import subprocess
import sys

GET_PIP_ONLY_OPTIONS = ("--no-setuptools", "--no-wheel")

# ensurepip points PIP_CONFIG_FILE at /dev/null in this process; pip install must see the host's pip config.
environment = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
arguments = [argument for argument in sys.argv[1:] if argument not in GET_PIP_ONLY_OPTIONS]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *arguments], env=environment))
