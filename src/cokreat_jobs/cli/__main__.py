"""`python -m cokreat_jobs.cli ...` is `cokreat-jobs ...`."""

from cokreat_jobs.cli.main import main

main()
