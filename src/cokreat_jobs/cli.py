"""The `cokreat-jobs` command."""

import click


@click.group()
def main() -> None:
    """coKreat's Flink jobs: run them, feed them, and the local stack they run against."""
