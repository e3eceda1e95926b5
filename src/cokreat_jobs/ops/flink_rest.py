"""The few calls of Flink's REST API the operator tools need: jobs, a job's counters, stop-with-savepoint."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

__all__ = ["COUNTERS", "FlinkRest"]

COUNTERS = ("total", "success", "skipped", "failed", "error")


class FlinkRest:
    """The few REST calls we need: jobs, and a job's counters summed over its subtasks."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base_url + path, timeout=5) as r:
            return json.loads(r.read())

    def post(self, path: str, body: Any) -> Any:
        req = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def jobs(self) -> list[dict[str, Any]]:
        try:
            return list(self.get("/jobs/overview").get("jobs", []))
        except OSError:
            return []

    def running_job(self, name: str | None = None) -> str | None:
        for job in self.jobs():
            if job.get("state") == "RUNNING" and (name is None or job.get("name") == name):
                return str(job["jid"])
        return None

    def counters(self, jid: str, group: str) -> dict[str, int]:
        """Sum of `<subtask>.<operator>.<group>.<name>-message-count` over every vertex and subtask."""
        totals = {k: 0 for k in COUNTERS}
        for vertex in self.get(f"/jobs/{jid}/").get("vertices", []):
            vid = vertex["id"]
            ids = [
                m["id"]
                for m in self.get(f"/jobs/{jid}/vertices/{vid}/metrics")
                if f".{group}." in m["id"] and m["id"].endswith("-count")
            ]
            if not ids:
                continue
            values = self.get(f"/jobs/{jid}/vertices/{vid}/metrics?get=" + ",".join(ids))
            for m in values:
                name = m["id"].rsplit(".", 1)[1].split("-", 1)[0]
                if name in totals:
                    totals[name] += int(float(m["value"]))
        return totals
