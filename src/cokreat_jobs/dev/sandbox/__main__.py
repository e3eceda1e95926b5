"""`python -m cokreat_jobs.dev.sandbox --port PORT --state-dir DIR ...`: run the sandbox in the foreground.

Logs go to stderr; readiness is `GET /_sandbox/health` answering 200.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from cokreat_jobs.dev.sandbox.admin import is_loopback_host
from cokreat_jobs.dev.sandbox.server import serve


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cokreat_jobs.dev.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address or localhost (nothing else)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--state-dir", required=True, help="holds sandbox.db (and storage/ by default)")
    parser.add_argument("--storage-dir", help="local cloud-storage root served under /_files/")
    parser.add_argument("--publish-delay-ms", type=int)
    parser.add_argument("--search-index-delay-ms", type=int)
    parser.add_argument("--graph-store", help="store URL of the graph the jobs write (later phase)")
    parser.add_argument("--external-store", help="store URL of the external data (later phase)")
    parser.add_argument("--kafka", metavar="BOOTSTRAP", help="Kafka the import APIs publish to")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not is_loopback_host(args.host):
        sys.exit(f"the sandbox binds to loopback only (127.0.0.1, ::1, localhost), not {args.host!r}")
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings: dict[str, Any] = {}
    for name in (
        "storage_dir",
        "publish_delay_ms",
        "search_index_delay_ms",
        "graph_store",
        "external_store",
        "kafka",
    ):
        value = getattr(args, name)
        if value is not None:
            settings[name] = value
    serve(args.state_dir, args.host, args.port, settings, args.log_level)


if __name__ == "__main__":
    main()
