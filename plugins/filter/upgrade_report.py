# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible.errors import AnsibleFilterError

FAILURE_LIMIT = 300


def phase_line(timings):
    return ", ".join("%s %.1f s" % (name, seconds) for name, seconds in timings.items())


def summary(report):
    host, result = report["host"], report["result"]
    if result == "already-current":
        return "%s: already-current (%s runs, nothing changed)" % (host, report["to"])
    line = "%s: %s %s -> %s" % (host, result, report["from"], report["to"])
    if result == "upgraded":
        line += " via %s" % " -> ".join(report["hops"])
    else:
        failure = report["failure"] or "failed"
        line += ": %s" % (failure if len(failure) <= FAILURE_LIMIT else failure[: FAILURE_LIMIT - 3] + "...")
    if report.get("downtime_seconds") is not None:
        line += ", downtime %.1f s" % report["downtime_seconds"]
    if report.get("timings"):
        line += " (%s)" % phase_line(report["timings"])
    if report.get("backup"):
        line += ", backup %s" % report["backup"]["path"]
    return line


def sentence(text):
    """The text ending as a sentence, for one that another sentence follows."""
    text = (text or "").rstrip()
    return text if text.endswith((".", "!", "?")) else text + "."


def failure_message(report, snapshot, rollback_enabled):
    where = "%s (%s)" % (report["host"], report["project_dir"])
    failure = report["failure"]
    if not report["stopped"]:
        return "The upgrade of %s to %s failed before anything was stopped or changed: %s" % (
            where,
            report["to"],
            failure,
        )
    if report["result"] == "rolled-back":
        return (
            "The upgrade of %s from %s to %s failed at %s It was ROLLED BACK: %s runs again%s (downtime %.1f s).%s"
            % (
                where,
                report["from"],
                report["to"],
                sentence(failure),
                report["from"],
                " with the data captured before the upgrade"
                if report["captured"]
                else " (nothing had been changed yet)",
                report["downtime_seconds"] or 0,
                " The backup taken before the upgrade is %s." % report["backup"]["path"]
                if report.get("backup")
                else "",
            )
        )
    if report["captured"]:
        parts = "the backup %s%s" % (
            report["backup"]["path"] if report.get("backup") else "of this run",
            ": restore it with lorawan.tts.restore (tts_restore_from)" if report.get("backup") else "",
        )
        if snapshot and not report.get("backup"):
            parts = (
                "the pre-upgrade database is Postgres database %s (put it back with lorawan.tts.postgres_snapshot, "
                "state=restored), Redis and the files are in this run's backup directory (lorawan.tts.redis_restore, "
                "lorawan.tts.backup_files state=restored)" % snapshot
            )
        data = "Nothing was lost: %s." % parts
    else:
        data = "No backup was needed yet: the compose file and the databases were not changed; start the stack again."
    if not rollback_enabled:
        return (
            "The upgrade of %s from %s to %s failed at %s It was NOT rolled back (tts_rollback_on_failure=false): the "
            "stack is stopped or half migrated. %s" % (where, report["from"], report["to"], sentence(failure), data)
        )
    return "ROLLBACK FAILED on %s: the upgrade from %s to %s failed at %s and then the rollback failed: %s The " % (
        where,
        report["from"],
        report["to"],
        failure,
        sentence(report["rollback_failure"]),
    ) + (
        "stack is stopped. Fix the cause, then run the upgrade again (the same playbook and inventory): it takes this "
        "run over from the journal %s/.lorawan-tts.journal and finishes the rollback from the capture. %s"
        % (report["project_dir"], data)
    )


def upgrade_messages(report, snapshot="", rollback_enabled=True):
    """The report with its one-line `summary` and, for a failed run, the `message` to fail with."""
    try:
        result = dict(report)
        result["summary"] = summary(report)
        if report["result"] not in ("upgraded", "already-current"):
            result["message"] = failure_message(report, snapshot, rollback_enabled)
    except (KeyError, TypeError) as error:
        raise AnsibleFilterError("upgrade_messages needs an upgrade report: %s is missing or wrong" % error) from error
    return result


class FilterModule:
    def filters(self):
        return {"upgrade_messages": upgrade_messages}
