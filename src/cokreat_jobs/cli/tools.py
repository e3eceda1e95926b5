"""`cokreat-jobs bench|chaos|demo`: the one-machine tools of `dev/` (`make bench`, `make chaos`,
`make demo`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.argument("jobs", nargs=-1)
@click.option("--events", type=int, default=None, help="Events per run (default 10000; 1000 with --quick).")
@click.option("--api-latency-ms", type=int, default=20, show_default=True, help="Sandbox latency per call.")
@click.option(
    "--quick", is_flag=True, help="Ours against the reference, small batch (user-delete unless JOBS named)."
)
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), default="bench/results", show_default=True
)
@click.option("--profile", is_flag=True, help="py-spy the Python workers during 'ours': OUT/profile-JOB.txt.")
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Config for our runs (not the reference)."
)
def bench(
    jobs: tuple[str, ...],
    events: int | None,
    api_latency_ms: int,
    quick: bool,
    out_dir: str,
    profile: bool,
    overrides: tuple[str, ...],
) -> None:
    """Throughput and latency of each job against the reference discipline, in one run."""
    from cokreat_jobs.dev.bench import SCENARIOS, run_bench, summary

    chosen = list(jobs) or (["user-delete"] if quick else list(SCENARIOS))
    unknown = [j for j in chosen if j not in SCENARIOS]
    if unknown:
        raise click.UsageError(
            f"no benchmark scenario for {', '.join(unknown)}; have: {', '.join(SCENARIOS)}"
        )
    results = run_bench(
        chosen, events, api_latency_ms, quick, Path(out_dir), profile=profile, overrides=list(overrides)
    )
    click.echo(summary(results))


@click.command()
@click.argument("scenarios", nargs=-1)
@click.option("--events", type=int, default=None, help="Events per scenario (default: the scenario's own).")
@click.option("--short", is_flag=True, help="The CI form: small batches, one kill, a 5 s bounce, 10 s storm.")
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Results JSON (default bench/results/chaos.json, chaos-short.json with --short).",
)
@click.option("--keep", is_flag=True, help="Keep the stacks' directories (logs) after the run.")
def chaos(
    scenarios: tuple[str, ...], events: int | None, short: bool, out_file: str | None, keep: bool
) -> None:
    """Fault-injection scenarios on a standalone Flink cluster; every event accounted for."""
    from cokreat_jobs.dev.chaos.report import table, write_results
    from cokreat_jobs.dev.chaos.run import SCENARIOS, run_scenarios

    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        raise click.UsageError(f"unknown scenario {', '.join(unknown)}; have: {', '.join(SCENARIOS)}")
    results = run_scenarios(scenarios, short=short, events=events, keep=keep)
    out = Path(out_file or ("bench/results/chaos-short.json" if short else "bench/results/chaos.json"))
    write_results(results, out)
    click.echo(table(results))
    click.echo(f"results in {out}")
    sys.exit(0 if all(r.passed for r in results) else 1)


@click.command()
def demo() -> None:
    """Stack up, run the jobs on sample batches, print what happened, stack down."""
    from cokreat_jobs.dev.demo.main import run_demo

    sys.exit(run_demo())
