# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from itertools import pairwise

from ansible.errors import AnsibleFilterError

SERVING = "serving"
DOWN = "stop"


def phase_timings(marks, now):
    """[[phase, started at], ...] -> seconds per phase (a phase lasts until the next mark) and the downtime.

    The mark `stop` starts the downtime and the first `serving` mark after it ends it; `serving` itself is no phase.
    A phase entered twice (a retried step) adds up.
    """
    try:
        points = [(str(name), float(at)) for name, at in marks] + [("", float(now))]
    except (TypeError, ValueError) as error:
        raise AnsibleFilterError("phase_timings needs [[name, timestamp], ...] and a timestamp: %s" % error) from error
    timings = {}
    for (name, started), (dummy_next, ended) in pairwise(points):
        if name != SERVING:
            timings[name] = round(timings.get(name, 0.0) + ended - started, 1)
    downtime = None
    stopped = next((at for name, at in points if name == DOWN), None)
    if stopped is not None:
        serving = next((at for name, at in points if name == SERVING and at >= stopped), None)
        downtime = round((serving if serving is not None else float(now)) - stopped, 1)
    return {"timings": timings, "downtime_seconds": downtime}


class FilterModule:
    def filters(self):
        return {"phase_timings": phase_timings}
