# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from itertools import pairwise

from ansible.errors import AnsibleFilterError

SERVING = "serving"
# Marks where the stack goes down: the upgrade's stop, and the stop of a rollback after the new version served.
DOWN = ("stop", "rollback stop")


def phase_timings(marks, now):
    """[[phase, started at], ...] -> seconds per phase (a phase lasts until the next mark) and the downtime.

    A `stop` or `rollback stop` mark starts an outage (unless one is going on) and the next `serving` mark ends
    it; the downtime is the sum of the outages. `serving` itself is no phase. A phase entered twice adds up.
    """
    try:
        points = [(str(name), float(at)) for name, at in marks] + [("", float(now))]
    except (TypeError, ValueError) as error:
        raise AnsibleFilterError("phase_timings needs [[name, timestamp], ...] and a timestamp: %s" % error) from error
    timings = {}
    for (name, started), (dummy_next, ended) in pairwise(points):
        if name != SERVING:
            timings[name] = round(timings.get(name, 0.0) + ended - started, 1)
    downtime, down_since = None, None
    for name, at in points[:-1]:
        if name in DOWN and down_since is None:
            down_since = at
        elif name == SERVING and down_since is not None:
            downtime = (downtime or 0.0) + at - down_since
            down_since = None
    if down_since is not None:
        downtime = (downtime or 0.0) + float(now) - down_since
    return {"timings": timings, "downtime_seconds": None if downtime is None else round(downtime, 1)}


class FilterModule:
    def filters(self):
        return {"phase_timings": phase_timings}
